"""Requests posted over HTTP in the request ledger, on a real Azure Table (Azurite): one
insert-if-absent decides who holds a requestId, and exactly one queue message takes a
posted request over, however many copies race for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from local_stack.azurite import Azurite, start_azurite
from shared.adapters.ledger import TableLedger, ensure_table
from shared.adapters.submissions import CARRIER_ROW, TableSubmissions
from shared.domain.codes import RequestStatus
from shared.names import TABLE_REQUESTS

pytestmark = pytest.mark.stack
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with start_azurite(Path(tmp_path_factory.mktemp("submissions"))) as running:
        yield running


@pytest.fixture
def tables(azurite: Azurite) -> Iterator[TableServiceClient]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    service.delete_table(TABLE_REQUESTS)
    ensure_table(service)
    yield service
    service.close()


def ports(tables: TableServiceClient) -> tuple[TableLedger, TableSubmissions]:
    table = tables.get_table_client(TABLE_REQUESTS)
    return TableLedger(table), TableSubmissions(table)


def test_a_post_records_the_request_queued_with_its_fingerprint_and_poster(
    tables: TableServiceClient,
) -> None:
    """The row the ledger reads back: queued, no owner yet, who posted it, its fingerprint."""
    ledger, submissions = ports(tables)

    async def use() -> object:
        assert await submissions.submit("HR/1", "sha256:aa", "app-hr", NOW) is None
        return await ledger.read("HR/1")

    record = asyncio.run(use())
    assert record.status == RequestStatus.QUEUED  # type: ignore[attr-defined]
    assert record.owner == ""  # type: ignore[attr-defined]
    assert record.fingerprint == "sha256:aa"  # type: ignore[attr-defined]
    assert record.submitted_by == "app-hr"  # type: ignore[attr-defined]
    assert record.received_at == NOW  # type: ignore[attr-defined]


def test_whoever_recorded_a_request_id_first_keeps_it(tables: TableServiceClient) -> None:
    """A second POST, or a POST after the queue opened the request, gets the record that
    stands (with the queue intake's fingerprint), and changes nothing."""
    ledger, submissions = ports(tables)

    async def use() -> tuple[object, object, object]:
        await submissions.submit("HR-1", "sha256:first", "app-a", NOW)
        again = await submissions.submit("HR-1", "sha256:second", "app-b", NOW)
        await ledger.open("HR-2", "m-queue", NOW, fingerprint="sha256:queued")
        after_queue = await submissions.submit("HR-2", "sha256:other", "app-a", NOW)
        return again, after_queue, await ledger.read("HR-1")

    again, after_queue, stored = asyncio.run(use())
    assert (again.fingerprint, again.submitted_by) == ("sha256:first", "app-a")  # type: ignore[attr-defined]
    assert (after_queue.owner, after_queue.fingerprint) == ("m-queue", "sha256:queued")  # type: ignore[attr-defined]
    assert after_queue.submitted_by is None  # type: ignore[attr-defined]
    assert stored == again


def test_of_many_copies_racing_exactly_one_takes_the_request_over(
    tables: TableServiceClient,
) -> None:
    """Eight messages at once: one wins, becomes the owner, the request is `received`;
    the winner's redelivery wins again, the others never do."""
    ledger, submissions = ports(tables)
    asyncio.run(submissions.submit("HR-3", "sha256:x", "app-hr", NOW))

    async def race() -> list[bool]:
        return await asyncio.gather(*(submissions.take_over("HR-3", f"m{n}") for n in range(8)))

    results = asyncio.run(race())
    assert results.count(True) == 1
    winner = f"m{results.index(True)}"
    record = asyncio.run(ledger.read("HR-3"))
    assert record is not None
    assert (record.owner, record.status) == (winner, RequestStatus.RECEIVED)
    assert asyncio.run(submissions.take_over("HR-3", winner)) is True
    assert asyncio.run(submissions.take_over("HR-3", "m-late")) is False
    carrier = tables.get_table_client(TABLE_REQUESTS).get_entity("HR-3", CARRIER_ROW)
    assert carrier["MessageId"] == winner
