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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
from azure.storage.queue import QueueClient

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
