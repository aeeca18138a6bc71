"""Benchmark of the ledger's retention (LEDGER_RETENTION) on Azurite: how long one sweep's
batch of deletions takes and how many storage calls it makes per request, and how long a
page of the one-time scan of rows written before the index takes.

    python -m local_stack.bench.retention [--requests 1000] [--batch 100]

It fills a fresh Azurite with closed requests (request and terminal rows, one in ten with
a kept message), times `TableRetention.expire` batch after batch until every one is gone,
then fills it again the way the app wrote before the index existed and times
`index_legacy` page by page. Figures: docs/benchmarks.md, section 7.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from azure.data.tables import TableClient, TableServiceClient

from local_stack.azurite import start_azurite
from shared.adapters.ledger import TableLedger, ensure_table
from shared.adapters.retention import TableRetention
from shared.domain.codes import EventType, RequestStatus
from shared.domain.events import Event
from shared.domain.records import Decided, MessageSource, SetAside, SetAsideStatus
from shared.names import TABLE_REQUESTS

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=365)


class Counting(TableClient):
    """The table client, counting its calls by method."""

    calls: Counter[str]

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name in ("query_entities", "get_entity", "delete_entity", "upsert_entity",
                    "submit_transaction", "create_entity"):  # fmt: skip
            super().__getattribute__("calls")[name] += 1
        return attribute


async def fill(ledger: TableLedger, retention: TableRetention | None, count: int) -> None:
    """`count` closed requests, one in ten with a kept (poisoned) message."""
    for n in range(count):
        request_id = f"BENCH-{n:06d}"
        at = T0 + timedelta(seconds=n)
        event = Event(EventType.LICENSED, f"{request_id}:licensed", at, {"requestId": request_id})
        await ledger.open(request_id, f"m{n}", at)
        decided = await ledger.decide(request_id, Decided(event, f"m{n}"))
        if retention is not None:
            await retention.track_request(request_id, decided.event.time)
        await ledger.close(request_id, RequestStatus.LICENSED)
        if n % 10 == 0:
            kept = SetAside(
                MessageSource.POISON, f"p{n}", "{}", "poisoned", request_id,
                status=SetAsideStatus.REPORTED,
            )  # fmt: skip
            if retention is not None:
                await retention.track_set_aside(kept, at)
            await ledger.set_aside(kept, at)


async def expire_all(table: Counting, batch: int) -> list[tuple[float, int, int]]:
    """(seconds, requests deleted, storage calls) per batch until nothing is due."""
    retention = TableRetention(table)
    batches: list[tuple[float, int, int]] = []
    while True:
        table.calls.clear()
        started = time.perf_counter()
        done = await retention.expire(LATER, LATER, batch)
        if not done.requests and not done.rows and not done.kept:
            return batches
        batches.append((time.perf_counter() - started, done.requests, sum(table.calls.values())))


async def index_all(table: TableClient, page: int) -> list[tuple[float, int]]:
    """(seconds, rows read) per page of the one-time scan, a new adapter per sweep."""
    pages: list[tuple[float, int]] = []
    while True:
        started = time.perf_counter()
        read = await TableRetention(table).index_legacy(page)
        if read is None:
            return pages
        pages.append((time.perf_counter() - started, read))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.bench.retention")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100, help="index entries per sweep")
    parser.add_argument("--page", type=int, default=1000, help="rows per page of the scan")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as state, start_azurite(Path(state)) as azurite:
        service = TableServiceClient.from_connection_string(azurite.connection_string)
        ensure_table(service)
        table = cast(
            Counting, Counting.from_connection_string(azurite.connection_string, TABLE_REQUESTS)
        )
        table.calls = Counter()
        asyncio.run(fill(TableLedger(table), TableRetention(table), args.requests))
        batches = asyncio.run(expire_all(table, args.batch))
        asyncio.run(fill(TableLedger(table), None, args.requests))
        pages = asyncio.run(index_all(table, args.page))
        service.close()
    print(
        f"expire: {args.requests} requests (and {args.requests // 10} kept messages) in "
        f"{len(batches)} batch(es) of at most {args.batch} index entries"
    )
    for seconds, requests, calls in batches:
        print(f"  {requests} requests deleted in {seconds:.2f} s, {calls} storage calls")
    print(f"legacy scan: {len(pages)} page(s) of at most {args.page} rows")
    for seconds, read in pages:
        print(f"  {read} rows in {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
