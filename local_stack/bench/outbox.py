"""`python -m local_stack.bench.outbox`: what publishing every event to Event Grid too costs
in storage calls, per request, without the topic and with it (docs/benchmarks.md).

Starts Azurite, the Graph emulator and the Event Grid stand-in (no development host: the
service runs in this process, wired by `bootstrap.build_service` from the same settings as
the app, once without `EVENT_GRID_TOPIC_ENDPOINT` and once with it). Every storage call
the adapters make (`storage_call` in the ledger, queue and outbox adapters: one REST call
each, a query being one page) is counted, by storage service, along with the publishes the
topic took. Three kinds of request, `--requests` of each:

- `licensed`: a synced user, licensed at intake (one event);
- `waiting → licensed`: a user not yet synced, parked with `awaiting_sync`, licensed by
  the next sweep once synced (two events);
- `rejected`: an invalid message (one event).

A sweep's own calls, paid once per tick whatever it finds (poison and pending receives,
the parked overview, and with a topic the outbox query), are measured on an empty sweep
and taken out of the `waiting → licensed` figures. No assertion: the figures are counts.

    python -m local_stack.bench.outbox [--requests 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from local_stack.stack import REPO, LocalStack
from shared import bootstrap
from shared.adapters import ledger, outbox, queues
from shared.names import QUEUE_EVENTS
from shared.settings import Settings

STATE: Final = REPO / ".state" / "bench" / "outbox"
DIRECTORY: Final = REPO / "local_stack" / "samples" / "directory.json"
KINDS: Final = ("licensed", "waiting → licensed", "rejected")
FAST: Final = {"RECHECK_INITIAL_DELAY": "PT1S", "RECHECK_MAX_DELAY": "PT2S"}
# Graph's throttling off in the emulator, as in `make bench`: the figures are the app's.
NO_THROTTLE: Final = {"units_per_10s": 0, "writes_per_150s": 0}


@contextmanager
def counting_storage() -> Iterator[Counter[str]]:
    """Count every storage call of the ledger, queue and outbox adapters, as
    `table`, `events queue` or `other queues`."""
    counts: Counter[str] = Counter()
    patched = (ledger, queues, outbox)
    originals = {module: module.storage_call for module in patched}

    def counted(module: Any, original: Callable[..., Awaitable[Any]]) -> Any:
        async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            counts[_service(module, function)] += 1
            return await original(function, *args, **kwargs)

        return call

    for module, original in originals.items():
        module.storage_call = counted(module, original)  # type: ignore[attr-defined]
    try:
        yield counts
    finally:
        for module, original in originals.items():
            module.storage_call = original  # type: ignore[attr-defined]


def _service(module: Any, function: Callable[..., Any]) -> str:
    if module is not queues:
        return "table"
    owner = getattr(function, "__self__", None)
    name = getattr(owner, "queue_name", None) or getattr(
        getattr(owner, "_queue", None), "queue_name", None
    )
    return "events queue" if name == QUEUE_EVENTS else "other queues"


def _users(stack: LocalStack, prefix: str, count: int, *, synced: bool) -> list[str]:
    assert stack.graph is not None
    upns = [f"{prefix}{n}@contoso.com" for n in range(count)]
    for upn in upns:
        stack.graph.add_user(
            {
                "userPrincipalName": upn,
                "usageLocation": "FR",
                "onPremisesSyncEnabled": synced or None,
            }
        )
    return upns


def _body(request_id: str, upn: str) -> str:
    return json.dumps(
        {
            "requestId": request_id,
            "userPrincipalName": upn,
            "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}],
        }
    )


async def _one_mode(stack: LocalStack, settings: Settings, tag: str, n: int) -> dict[str, Any]:
    """Each kind's counts for `n` requests, and an empty sweep's."""
    wiring = bootstrap.build_service(settings)
    service = wiring.service
    out: dict[str, Any] = {}
    outcomes: Counter[str] = Counter()
    try:
        await service.sweep()  # tables, queues and caches warm; leftovers gone
        with counting_storage() as counts:
            await service.sweep()
        out["empty sweep"] = dict(counts)
        now = _users(stack, f"{tag}-now-", n, synced=True)
        late = _users(stack, f"{tag}-late-", n, synced=False)
        with counting_storage() as counts:
            for i, upn in enumerate(now):
                got = await service.handle_request(_body(f"{tag}-L-{i}", upn), f"{tag}-mL-{i}")
                outcomes[f"licensed: {got}"] += 1
        out["licensed"] = dict(counts)
        with counting_storage() as counts:
            for i, upn in enumerate(late):
                got = await service.handle_request(_body(f"{tag}-W-{i}", upn), f"{tag}-mW-{i}")
                outcomes[f"waiting: {got}"] += 1
            for upn in late:
                assert stack.graph is not None
                stack.graph.sync_user(upn)
            await asyncio.sleep(1.5)  # RECHECK_INITIAL_DELAY: the parked requests are due
            report = await service.sweep()
        outcomes.update(f"sweep: {name}" for name in report.outcomes.elements())
        out["waiting → licensed"] = dict(counts - Counter(out["empty sweep"]))
        with counting_storage() as counts:
            for i in range(n):
                body = json.dumps({"requestId": f"{tag}-R-{i}"})
                outcomes[f"rejected: {await service.handle_request(body, f'{tag}-mR-{i}')}"] += 1
        out["rejected"] = dict(counts)
        out["outcomes"] = dict(outcomes)
    finally:
        await wiring.aclose()
    return out


def measure(stack: LocalStack, requests: int) -> dict[str, Any]:
    """Counts per request of each kind, without the topic and with it."""
    env = {**stack.app_environment(), **FAST}
    assert stack.event_grid is not None
    results: dict[str, Any] = {"requests per kind": requests}
    for mode, endpoint in (("queue only", ""), ("queue + topic", stack.event_grid.endpoint)):
        settings = Settings.from_env({**env, "EVENT_GRID_TOPIC_ENDPOINT": endpoint})
        before = len(stack.event_grid.publishes())
        counts = asyncio.run(_one_mode(stack, settings, mode.split()[-1], requests))
        published = stack.event_grid.publishes()[before:]
        per_request = {
            kind: {what: round(c / requests, 2) for what, c in sorted(counts[kind].items())}
            for kind in KINDS
        }
        results[mode] = {
            "outcomes": counts["outcomes"],
            "per request": per_request,
            "empty sweep": counts["empty sweep"],
            "topic publishes": sum(len(p["eventIds"]) for p in published if p["status"] == 200),
        }
    return results


def show(results: Mapping[str, Any]) -> None:
    without, with_topic = results["queue only"], results["queue + topic"]
    for mode in ("queue only", "queue + topic"):
        print(f"{mode}: {results[mode]['outcomes']}")
    print(f"\nStorage calls per request ({results['requests per kind']} of each kind):")
    print(f"{'request':<20} {'table':>14} {'events queue':>14} {'other queues':>14}")
    for kind in KINDS:
        cells = []
        for what in ("table", "events queue", "other queues"):
            a = without["per request"][kind].get(what, 0)
            b = with_topic["per request"][kind].get(what, 0)
            cells.append(f"{a:g} → {b:g}")
        print(f"{kind:<20} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14}")
    empty = (without["empty sweep"], with_topic["empty sweep"])
    print(
        f"{'empty sweep (tick)':<20} {empty[0].get('table', 0):>6} → {empty[1].get('table', 0):<6}"
    )
    print(
        f"topic publishes: {without['topic publishes']} without the topic, "
        f"{with_topic['topic publishes']} with it"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.bench.outbox", description=__doc__)
    parser.add_argument("--requests", type=int, default=20, help="requests of each kind")
    args = parser.parse_args(argv)
    shutil.rmtree(STATE, ignore_errors=True)
    started = time.monotonic()
    directory = json.loads(DIRECTORY.read_text())
    directory["users"] = []
    directory["skus"] = [dict(sku, enabled=100_000) for sku in directory["skus"]]
    with LocalStack(Path(STATE), directory, event_grid=True, emulator_options=NO_THROTTLE) as stack:
        results = measure(stack, args.requests)
    show(results)
    (STATE / "results.json").write_text(json.dumps(results, indent=2))
    print(
        f"\nDone in {time.monotonic() - started:.0f} s; raw figures in "
        f"{(STATE / 'results.json').relative_to(REPO)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
