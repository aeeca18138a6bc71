"""2. Intake throughput through the development host, and 4. the same under a 503 storm."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from local_stack.bench.common import (
    HOST_SETTINGS,
    NO_THROTTLE,
    directory,
    event_time,
    fresh_state,
    graph_calls,
    request,
    table,
    upns,
    wait_for_host,
)
from local_stack.stack import LocalStack


def intake(count: int, timeout: float = 120.0) -> dict[str, Any]:
    """`count` synced users posted to user-onboard on a freshly started host."""
    users = upns("intake", count)
    with LocalStack(
        fresh_state("intake"),
        directory(users, synced=True),
        settings=HOST_SETTINGS,
        emulator_options=NO_THROTTLE,
    ) as stack:
        assert stack.graph is not None
        stack.start_host()
        wait_for_host(stack)
        stack.graph.clear_requests()
        return run_batch(stack, users, "INTAKE", timeout)


def run_batch(
    stack: LocalStack, users: Sequence[str], prefix: str, timeout: float
) -> dict[str, Any]:
    """Post one request per user, wait for every terminal event, count what happened."""
    assert stack.graph is not None
    ids = [f"{prefix}-{n:05d}" for n in range(len(users))]
    first_post = datetime.now().astimezone()
    started = time.monotonic()
    for request_id, upn in zip(ids, users, strict=True):
        stack.post(request(request_id, upn))
    posted = time.monotonic() - started
    terminal = stack.wait_for_terminal(ids, timeout)
    observed = time.monotonic() - started
    mine = {rid: terminal[rid] for rid in ids if rid in terminal}
    last = max((event_time(e) for e in mine.values()), default=first_post)
    seconds = (last - first_post).total_seconds()
    calls = graph_calls(stack.graph.requests())
    outcomes = Counter(e["type"].rsplit(".", 1)[-1] for e in mine.values())
    progress = Counter(
        e["type"].rsplit(".", 1)[-1] for e in stack.events_seen if e.get("subject") in set(ids)
    )
    return {
        "requests": len(ids),
        "terminal": len(mine),
        "outcomes": dict(outcomes),
        "events": dict(progress),
        "post_seconds": posted,
        "seconds_to_last_terminal": seconds,
        "seconds_observed": observed,
        "requests_per_second": len(mine) / seconds if seconds > 0 else 0.0,
        "graph": dict(calls),
        "graph_per_request": {k: v / len(ids) for k, v in calls.items()},
        "poison": stack.count("user-onboard-poison"),
    }


def storm(count: int, timeout: float = 120.0) -> dict[str, Any]:
    """Intake while half of all /users calls (lookups, $batch items, assignLicense) answer
    503: everything should still end licensed, nothing poisoned."""
    users = upns("storm", count)
    with LocalStack(
        fresh_state("storm"),
        directory(users, synced=True),
        settings=HOST_SETTINGS,
        emulator_options={**NO_THROTTLE, "fault_seed": 7},
    ) as stack:
        assert stack.graph is not None
        stack.start_host()
        wait_for_host(stack)
        stack.graph.clear_requests()
        stack.graph.add_fault(path="^/users", status=503, rate=0.5)
        result = run_batch(stack, users, "STORM", timeout)
        result["graph_503_items"] = sum(
            1 for e in stack.graph.requests() if e.get("batchItem") and e.get("status") == 503
        )
    return result


def show_batch(title: str, result: Mapping[str, Any]) -> None:
    per = result["graph_per_request"]
    rows = [
        ("figure", "value"),
        ("requests / reached a terminal event", f"{result['requests']} / {result['terminal']}"),
        ("outcomes", " ".join(f"{k}={v}" for k, v in sorted(result["outcomes"].items()))),
        ("events seen", " ".join(f"{k}={v}" for k, v in sorted(result["events"].items()))),
        ("posting all messages (s)", f"{result['post_seconds']:.2f}"),
        ("first post to last terminal event (s)", f"{result['seconds_to_last_terminal']:.2f}"),
        ("requests/s", f"{result['requests_per_second']:.1f}"),
        ("Graph HTTP requests", str(result["graph"].get("total", 0))),
        (
            "  per request: lookup / assignLicense",
            f"{per.get('user lookup', 0):.2f} / {per.get('assignLicense', 0):.2f}",
        ),
        (
            "  subscribedSkus / $batch (total)",
            f"{result['graph'].get('subscribedSkus', 0)} / {result['graph'].get('$batch', 0)}",
        ),
        (
            "  answered 5xx (+ $batch items)",
            f"{result['graph'].get('5xx answers', 0)}"
            + (f" (+{result['graph_503_items']})" if "graph_503_items" in result else ""),
        ),
        ("messages on user-onboard-poison", str(result["poison"])),
    ]
    table(title, rows)
