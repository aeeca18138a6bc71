"""`python -m local_stack.bench.ops_list`: what `onboarding-ops list` costs over a large
backlog of parked requests, with a limit and without (docs/benchmarks.md).

Starts Azurite alone (under `.state/bench/ops-list`), writes `--parked` rows to the
ledger's `~parked` index (copies of one row the ledger itself wrote, in transactions of
100, with shuffled deadlines), then times `list_requests` and measures the peak of the
Python memory it allocated (tracemalloc) for each limit. No assertion: figures depend on
the machine.

    python -m local_stack.bench.ops_list [--parked 50000] [--limits 100,0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

from local_stack.azurite import start_azurite
from local_stack.stack import REPO
from ops.store import Store
from ops.view import list_requests
from shared.adapters.ledger import PARKED, TableLedger, ensure_table, partition
from shared.domain.codes import RequestStatus
from shared.domain.records import Progress
from shared.settings import StorageConnection

STATE = REPO / ".state" / "bench" / "ops-list"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def fill(store: Store, count: int) -> None:
    """`count` parked requests in the index: one by the ledger, the rest copies of it."""
    rng = random.Random(50_000)
    asyncio.run(
        TableLedger(store.table).note("B-0", Progress(RequestStatus.WAITING, True, deadline=T0))
    )
    template = dict(store.table.get_entity(PARKED, partition("B-0")))
    batch: list[tuple[str, dict[str, Any]]] = []
    for n in range(1, count):
        deadline = T0 + timedelta(seconds=rng.randrange(30 * 86_400))
        key = f"B-{n:06d}"
        status = ("waiting", "blocked", "scheduled")[n % 3]
        row = {"RowKey": key, "RequestId": key, "Status": status}
        batch.append(("upsert", template | row | {"Deadline": f"{deadline:%Y-%m-%dT%H:%M:%SZ}"}))
        if len(batch) == 100:
            store.table.submit_transaction(batch)
            batch = []
    if batch:
        store.table.submit_transaction(batch)


def measure(store: Store, limit: int) -> dict[str, float]:
    """Time one run untraced (tracemalloc slows allocation several times), then trace a
    second for the memory peak."""
    started = time.perf_counter()
    listing = asyncio.run(list_requests(store, {"pending"}, limit=limit))
    seconds = time.perf_counter() - started
    tracemalloc.start()
    asyncio.run(list_requests(store, {"pending"}, limit=limit))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "limit": limit,
        "shown": len(listing.parked),
        "total": listing.parked_total,
        "seconds": round(seconds, 2),
        "peak_mib": round(peak / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parked", type=int, default=50_000)
    parser.add_argument("--limits", default="100,0")
    args = parser.parse_args(argv)
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    azurite = start_azurite(STATE)
    try:
        store = Store.open(StorageConnection(connection_string=azurite.connection_string))
        try:
            ensure_table(store.tables)
            started = time.perf_counter()
            fill(store, args.parked)
            print(f"wrote {args.parked:,} index rows in {time.perf_counter() - started:.1f} s")
            for limit in (int(part) for part in args.limits.split(",")):
                print(measure(store, limit), flush=True)
        finally:
            store.close()
    finally:
        azurite.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
