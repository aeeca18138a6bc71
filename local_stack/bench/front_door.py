"""`make bench` (`--only frontdoor`): requests per second through the HTTP front door
against posting to the queue, on the same machine and the same local stack.

Each path gets a fresh stack (Azurite, the Graph emulator as Graph and as the Entra ID
issuer, the development host) with `count` synced users. `clients` threads post the
requests, each with its own connection and, over HTTP, its own token (fetched before the
clock starts, as an HR system caches one for an hour): `POST /api/onboarding-requests`
through the development host on loopback, or `send_message` to `user-onboard` with
azure-storage-queue. Measured: how fast the requests are accepted (202s, or messages
sent, per second, and each call's latency), and how fast they are then handled (first
post to last terminal event). The host handles the queue while the posts arrive, in both
paths (over HTTP, on the same event loop that answers the posts). A benchmark, not a test:
the figures depend on the machine.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
from azure.storage.queue import QueueClient

from local_stack.bench.common import (
    HOST_SETTINGS,
    NO_THROTTLE,
    SAMPLE_DIRECTORY,
    directory,
    fresh_state,
    request,
    table,
    upns,
    wait_for_host,
)
from local_stack.stack import LocalStack

ROUTE = "/api/onboarding-requests"
Post = Callable[[str], int]  # one request's JSON text -> the status it got (201: sent)


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class _HttpPoster:
    """One HR system: a keep-alive connection and a token of its own."""

    def __init__(self, stack: LocalStack) -> None:
        self.client = httpx.Client(base_url=stack.http_url(), timeout=60)
        self.headers = {
            "Authorization": f"Bearer {stack.token('hr')}",
            "Content-Type": "application/json",
        }

    def __call__(self, text: str) -> int:
        return self.client.post(ROUTE, content=text.encode(), headers=self.headers).status_code


class _QueuePoster:
    """One HR system writing the queue: a queue client (connection pool) of its own."""

    def __init__(self, stack: LocalStack) -> None:
        assert stack.azurite is not None
        self.queue = QueueClient.from_connection_string(
            stack.azurite.connection_string, "user-onboard"
        )

    def __call__(self, text: str) -> int:
        self.queue.send_message(text)
        return 201


def _post_all(posters: list[Post], texts: list[str]) -> tuple[float, list[float], Counter[int]]:
    """Every text posted, spread over the clients; wall time, latencies, statuses."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def run(n: int) -> None:
        for text in texts[n :: len(posters)]:
            started = time.perf_counter()
            status = posters[n](text)
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                statuses[status] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(len(posters)) as pool:
        list(pool.map(run, range(len(posters))))
    return time.perf_counter() - started, latencies, statuses


def run_path(
    stack: LocalStack, path: str, requests: list[dict[str, Any]], clients: int, timeout: float
) -> dict[str, Any]:
    """Post `requests` by `path` ("http" or "queue") and wait for every outcome."""
    kind: Callable[[LocalStack], Post] = _HttpPoster if path == "http" else _QueuePoster
    posters = [kind(stack) for _ in range(clients)]
    texts = [json.dumps(r) for r in requests]
    first_post = datetime.now().astimezone()
    wall, latencies, statuses = _post_all(posters, texts)
    ids = [r["requestId"] for r in requests]
    terminal = stack.wait_for_terminal(ids, timeout)
    mine = [terminal[i] for i in ids if i in terminal]
    last = max(
        (datetime.fromisoformat(str(e["time"]).replace("Z", "+00:00")) for e in mine),
        default=first_post,
    )
    handled = (last - first_post).total_seconds()
    return {
        "requests": len(requests),
        "clients": clients,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "accept_seconds": wall,
        "accepted_per_second": len(requests) / wall if wall > 0 else 0.0,
        "latency_ms_median": statistics.median(latencies) * 1000,
        "latency_ms_p95": _percentile(latencies, 0.95) * 1000,
        "terminal": len(mine),
        "outcomes": dict(Counter(e["type"].rsplit(".", 1)[-1] for e in mine)),
        "seconds_to_last_terminal": handled,
        "handled_per_second": len(mine) / handled if handled > 0 else 0.0,
    }


def front_door(count: int, clients: int, runs: int, timeout: float = 180.0) -> dict[str, Any]:
    """The same `count` requests posted over HTTP and to the queue, `runs` times each,
    alternating, each on a fresh stack (`local_stack.bench.front_door`); per path, the run
    with the median acceptance rate, and every run's rates."""
    sample = json.loads(SAMPLE_DIRECTORY.read_text())
    done: dict[str, list[dict[str, Any]]] = {"http": [], "queue": []}
    for run in range(runs):
        for path in done:
            users = upns(f"door-{path}-{run}", count)
            tenant = {**directory(users, synced=True), "identity": sample["identity"]}
            with LocalStack(
                fresh_state(f"frontdoor-{path}"),
                tenant,
                settings=HOST_SETTINGS,
                emulator_options=NO_THROTTLE,
            ) as stack:
                stack.start_host()
                wait_for_host(stack)
                requests = [request(f"DOOR-{path}-{n:05d}", u) for n, u in enumerate(users)]
                done[path].append(run_path(stack, path, requests, clients, timeout))
    result: dict[str, Any] = {}
    for path, results in done.items():
        ranked = sorted(results, key=lambda r: float(r["accepted_per_second"]))
        result[path] = {
            **ranked[len(ranked) // 2],
            "runs_accepted_per_second": [r["accepted_per_second"] for r in results],
            "runs_handled_per_second": [r["handled_per_second"] for r in results],
        }
    return result


def show_front_door(result: Mapping[str, Any]) -> None:
    http, queue = result["http"], result["queue"]

    def both(cell: Any) -> tuple[str, str]:
        return cell(http), cell(queue)

    rows = [
        ("figure", "POST /api/onboarding-requests", "send_message to user-onboard"),
        ("requests / clients", *both(lambda r: f"{r['requests']} / {r['clients']}")),
        ("answers", *both(lambda r: " ".join(f"{k}={v}" for k, v in r["statuses"].items()))),
        ("accepting all of them (s)", *both(lambda r: f"{r['accept_seconds']:.2f}")),
        ("accepted per second", *both(lambda r: f"{r['accepted_per_second']:.1f}")),
        (
            "  every run",
            *both(lambda r: ", ".join(f"{v:.1f}" for v in r["runs_accepted_per_second"])),
        ),
        (
            "latency per call, median / p95 (ms)",
            *both(lambda r: f"{r['latency_ms_median']:.1f} / {r['latency_ms_p95']:.1f}"),
        ),
        ("outcomes", *both(lambda r: " ".join(f"{k}={v}" for k, v in r["outcomes"].items()))),
        (
            "first post to last terminal event (s)",
            *both(lambda r: f"{r['seconds_to_last_terminal']:.2f}"),
        ),
        ("handled per second", *both(lambda r: f"{r['handled_per_second']:.1f}")),
        (
            "  every run",
            *both(lambda r: ", ".join(f"{v:.1f}" for v in r["runs_handled_per_second"])),
        ),
    ]
    table(
        f"10. The HTTP front door against the queue ({http['requests']} requests, "
        f"{http['clients']} clients; the median of {len(http['runs_accepted_per_second'])} "
        "runs by acceptance rate)",
        rows,
    )
