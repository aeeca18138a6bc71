"""3. One sweep over parked requests in a fresh worker (`sweep_child`), and 11. the same over
a backlog with Graph's throttling on and the write budget spent."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from local_stack.bench.common import (
    GRAPH_THROTTLE,
    GRAPH_WRITES_PER_SECOND,
    HOST_SETTINGS,
    NO_THROTTLE,
    directory,
    fresh_state,
    graph_calls,
    mib,
    request,
    run_child,
    table,
    upns,
)
from local_stack.stack import LocalStack


async def park(stack: LocalStack, users: Sequence[str], concurrency: int = 16) -> float:
    """Admit every request through `handle_request` (users not synced yet): each lands on
    user-onboard-pending, due one second later."""
    from shared.bootstrap import build_service
    from shared.decisions import Backoff
    from shared.service import Policy
    from shared.settings import Settings

    wiring = build_service(
        Settings.from_env(stack.app_environment()),
        policy=Policy(
            backoff=Backoff(timedelta(seconds=1), timedelta(seconds=2)),
            sync_timeout=timedelta(hours=1),
        ),
    )
    service = wiring.service
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int, upn: str) -> str:
        async with gate:
            body = json.dumps(request(f"SWEEP-{n:05d}", upn))
            return await service.handle_request(body, f"bench-{n}")

    started = time.monotonic()
    try:
        outcomes = await asyncio.gather(*(one(n, upn) for n, upn in enumerate(users)))
    finally:
        await wiring.aclose()
    if set(outcomes) != {"waiting"}:
        raise RuntimeError(f"parking gave {Counter(outcomes)}")
    return time.monotonic() - started


def sweep(count: int, *, throttled: bool = False) -> dict[str, Any]:
    """Park `count` requests, sync their users, then time one sweep in a fresh worker.
    `throttled`: Graph's throttling on at its own rates, and the app's write budget spent
    just before the sweep (a backlog after a busy day)."""
    users = upns("backlog" if throttled else "sweep", count)
    with LocalStack(
        fresh_state("backlog" if throttled else "sweep"),
        directory(users, synced=False),
        settings=HOST_SETTINGS,
        emulator_options=GRAPH_THROTTLE if throttled else NO_THROTTLE,
    ) as stack:
        assert stack.graph is not None
        park_seconds = asyncio.run(park(stack, users))
        for upn in users:
            stack.graph.sync_user(upn)
        time.sleep(2.0)  # every parked message is visible one second after it was parked
        pending_before = stack.count("user-onboard-pending")
        stack.graph.clear_requests()
        if throttled:
            stack.graph.service.throttle.configure()
            stack.graph.service.throttle.admit(f"Bearer {stack.graph.token}", 1, 3000)
        result, wall = run_child(
            ["local_stack.bench.sweep_child"],
            stack.app_environment(),
            timeout=300,
            what="the sweep process",
        )
        log = stack.graph.requests()
        result.update(
            users=count,
            park_seconds=park_seconds,
            process_wall_seconds=wall,
            pending_before=pending_before,
            pending_after=stack.count("user-onboard-pending"),
            graph=dict(graph_calls(log)),
            batch_items_max=max(
                (len(e["body"]["requests"]) for e in log if e["path"].endswith("/$batch")),
                default=0,
            ),
            throttled=sum(1 for e in log if e.get("status") == 429),
            floor_seconds=count / GRAPH_WRITES_PER_SECOND if throttled else None,
        )
    return result


def show_sweep(result: Mapping[str, Any]) -> None:
    graph = result["graph"]
    rows = [
        ("figure", "value"),
        ("pending requests parked (due)", f"{result['pending_before']}"),
        ("one sweep(), wall (s)", f"{result['sweep_seconds']:.2f}"),
        ("sweep report", str(result["summary"])),
        ("left on user-onboard-pending", str(result["pending_after"])),
        (
            "$batch requests (max items each)",
            f"{graph.get('$batch', 0)} ({result['batch_items_max']})",
        ),
        ("Graph HTTP requests in all", str(graph.get("total", 0))),
        (
            "  assignLicense / subscribedSkus / other",
            f"{graph.get('assignLicense', 0)} / {graph.get('subscribedSkus', 0)} / "
            f"{graph.get('user lookup', 0) + graph.get('other', 0)}",
        ),
        (
            "peak RSS before / after sweep (MiB)",
            f"{mib(result['max_rss_kib_before']):.0f} / {mib(result['max_rss_kib_after']):.0f}",
        ),
        ("worker process, spawn to exit (s)", f"{result['process_wall_seconds']:.2f}"),
        ("(setup) parking via handle_request (s)", f"{result['park_seconds']:.2f}"),
    ]
    table(f"3. One sweep over {result['users']} due pending requests (users now synced)", rows)


def show_backlog(result: Mapping[str, Any]) -> None:
    graph = result["graph"]
    seconds, floor = result["sweep_seconds"], result["floor_seconds"]
    writes = graph.get("assignLicense", 0)
    rows = [
        ("figure", "value"),
        ("pending requests parked (due), write budget spent", f"{result['pending_before']}"),
        ("one sweep(), wall (s)", f"{seconds:.2f}"),
        ("floor: the writes at 20 writes/s (s)", f"{floor:.1f}"),
        ("x floor", f"{seconds / floor:.2f}"),
        ("writes per second", f"{result['users'] / seconds:.1f}"),
        ("sweep report", str(result["summary"])),
        ("left on user-onboard-pending", str(result["pending_after"])),
        ("assignLicense sent (429s among all calls)", f"{writes} ({result['throttled']})"),
    ]
    table(
        f"11. One sweep over a backlog of {result['users']} synced users, Graph's write budget "
        "spent, throttling on at Graph's rates",
        rows,
    )
