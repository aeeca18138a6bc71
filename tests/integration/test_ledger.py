"""The request ledger on a real Azure Table (Azurite): the first decision stands, an
invalid message claims a requestId only when nobody holds it, and messages set aside keep
their whole text."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from local_stack.azurite import Azurite, start_azurite
from shared.adapters.ledger import DEAD_LETTERS, TableLedger, dead_letter_content, ensure_table
from shared.domain.codes import EventType
from shared.domain.events import Event
from shared.domain.records import Decided, Progress, SetAside
from shared.names import TABLE_REQUESTS

pytestmark = pytest.mark.stack
T = TypeVar("T")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with start_azurite(Path(tmp_path_factory.mktemp("ledger"))) as running:
        yield running


@pytest.fixture
def tables(azurite: Azurite) -> Iterator[TableServiceClient]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    service.delete_table(TABLE_REQUESTS)
    ensure_table(service)
    yield service
    service.close()


def run(tables: TableServiceClient, use: Callable[[TableLedger], Awaitable[T]]) -> T:
    return asyncio.run(use(TableLedger(tables.get_table_client(TABLE_REQUESTS))))


def event(request_id: str, word: str) -> Event:
    (kind,) = [t for t in EventType if t.word == word]
    return Event(kind, f"{request_id}:{word}", NOW, {"requestId": request_id})


def test_opening_twice_tells_the_second_delivery_who_opened_it(tables: TableServiceClient) -> None:
    """The first open creates the record; the next returns it (redelivery or duplicate)."""

    async def use(ledger: TableLedger) -> object:
        first = await ledger.open("HR/2026/1", "m1", NOW)
        second = await ledger.open("HR/2026/1", "m2", NOW)
        return first, second

    first, second = run(tables, use)
    assert first is None
    assert second.owner == "m1"  # type: ignore[attr-defined]
    assert second.request_id == "HR/2026/1"  # type: ignore[attr-defined]


def test_the_first_decision_stands_and_later_ones_get_it_back(tables: TableServiceClient) -> None:
    """A replay that decided otherwise publishes what was decided first."""

    async def use(ledger: TableLedger) -> tuple[Decided, Decided]:
        await ledger.open("HR-1", "m1", NOW)
        first = await ledger.decide("HR-1", Decided(event("HR-1", "failed"), "p1"))
        second = await ledger.decide("HR-1", Decided(event("HR-1", "licensed"), "p1"))
        return first, second

    first, second = run(tables, use)
    assert second == first
    assert second.event.id == "HR-1:failed"


def test_a_claim_succeeds_only_on_an_unused_request_id(tables: TableServiceClient) -> None:
    """An invalid message may not take over a request another message holds."""

    async def use(ledger: TableLedger) -> tuple[bool, bool, str | None]:
        await ledger.open("HR-1", "m1", NOW)
        taken = await ledger.claim("HR-1", Decided(event("HR-1", "rejected"), "m9"), NOW)
        free = await ledger.claim("HR-2", Decided(event("HR-2", "rejected"), "m9"), NOW)
        record = await ledger.read("HR-2")
        return taken, free, record.decided.by if record and record.decided else None

    taken, free, by = run(tables, use)
    assert (taken, free, by) == (False, True, "m9")


def test_progress_notes_merge_into_the_view(tables: TableServiceClient) -> None:
    """Status, next check, deadline and the announcements sent, as operators read them."""

    async def use(ledger: TableLedger) -> object:
        await ledger.open("HR-3", "m1", NOW)
        await ledger.note(
            "HR-3",
            Progress(
                "waiting",
                parked=True,
                deadline=NOW,
                last_seen="not_found",
                sent={"awaiting_sync": NOW},
            ),
        )
        await ledger.note("HR-3", Progress("blocked", parked=True, sent={"blocked": NOW}))
        return await ledger.read("HR-3")

    record = run(tables, use)
    assert record.status == "blocked"  # type: ignore[attr-defined]
    assert record.progress.parked  # type: ignore[attr-defined]
    assert set(record.progress.sent) == {"awaiting_sync", "blocked"}  # type: ignore[attr-defined]
    assert record.progress.deadline == NOW  # type: ignore[attr-defined]


def test_a_message_set_aside_keeps_its_whole_text_once(tables: TableServiceClient) -> None:
    """64 KiB of text spread over several properties; setting it aside twice keeps one."""
    text = "é" * 40_000 + "x" * 25_000
    item = SetAside("poison", "m-1", text, "host gave up", "HR-4", status="held")

    async def use(ledger: TableLedger) -> None:
        await ledger.set_aside(item, NOW)
        await ledger.set_aside(item, NOW)

    run(tables, use)
    rows = list(
        tables.get_table_client(TABLE_REQUESTS).query_entities(
            "PartitionKey eq @pk", parameters={"pk": DEAD_LETTERS}
        )
    )
    assert len(rows) == 1
    assert dead_letter_content(rows[0]) == text
    assert rows[0]["RequestId"] == "HR-4"


def test_a_kept_message_changes_status_only_from_what_was_read(
    tables: TableServiceClient,
) -> None:
    """held -> replayed by an operator; a sweep that read it as held cannot report it."""
    item = SetAside("poison", "m-2", "{}", "host gave up", "HR-5", status="held")

    async def use(ledger: TableLedger) -> tuple[bool, bool, str]:
        await ledger.set_aside(item, NOW)
        (read,) = await ledger.set_aside_items(statuses=("held",))
        replayed = await ledger.move(read, "replayed")
        reported = await ledger.move(read, "reporting")  # the same, stale, version
        (now,) = await ledger.set_aside_items()
        return replayed, reported, now.status

    assert run(tables, use) == (True, False, "replayed")


class DroppingTransport(RequestsTransport):
    """The real HTTP transport, but the next `drops` requests of `method` fail the way a
    pooled connection the server has just closed fails (RemoteDisconnected: "Connection
    aborted"), either before the request reaches the server or after it was processed (its
    answer lost)."""

    def __init__(self, drops: int, *, processed: bool, method: str = "POST") -> None:
        super().__init__()
        self.drops = drops
        self.processed = processed
        self.method = method
        self.dropped = 0

    def send(self, request: Any, **kwargs: Any) -> Any:
        if request.method == self.method and self.drops > 0:
            self.drops -= 1
            self.dropped += 1
            if self.processed:
                super().send(request, **kwargs)
            raise ServiceResponseError(
                "('Connection aborted.', RemoteDisconnected('Remote end closed connection "
                "without response'))"
            )
        return super().send(request, **kwargs)


@pytest.mark.parametrize("processed", [False, True], ids=["lost request", "lost answer"])
def test_an_insert_on_a_dropped_connection_is_retried_and_reads_as_ours(
    azurite: Azurite, tables: TableServiceClient, processed: bool
) -> None:
    """A stale pooled connection must not stop a sweep: the SDK does not retry a POST, the
    ledger's inserts are retried, and one that had landed reads back as our own."""
    transport = DroppingTransport(0, processed=processed)
    service = TableServiceClient.from_connection_string(
        azurite.connection_string, transport=transport, retry_backoff_factor=0.05
    )
    ledger = TableLedger(service.get_table_client(TABLE_REQUESTS))
    decision = Decided(event("HR-9", "licensed"), "p1")

    async def use() -> tuple[object, Decided]:
        transport.drops = 1
        opened = await ledger.open("HR-9", "m1", NOW)
        transport.drops = 1
        decided = await ledger.decide("HR-9", decision)
        return opened, decided

    opened, decided = asyncio.run(use())
    assert transport.dropped == 2
    if processed:
        assert opened.owner == "m1"  # type: ignore[attr-defined]  # a redelivery of ours
    else:
        assert opened is None
    assert decided == decision
    assert run(tables, lambda fresh: fresh.read("HR-9")).status == "licensed"  # type: ignore[union-attr]


@pytest.mark.parametrize("processed", [False, True], ids=["lost request", "lost answer"])
def test_a_merge_on_a_dropped_connection_is_retried(
    azurite: Azurite, tables: TableServiceClient, processed: bool
) -> None:
    """Progress notes and the close after a publish are merges (PATCH), which the SDK does
    not retry either: one dropped connection must not stop a sweep."""
    transport = DroppingTransport(0, processed=processed, method="PATCH")
    service = TableServiceClient.from_connection_string(
        azurite.connection_string, transport=transport, retry_backoff_factor=0.05
    )
    ledger = TableLedger(service.get_table_client(TABLE_REQUESTS))
    waiting = Progress("waiting", parked=True, deadline=NOW, next_check_at=NOW)

    async def use() -> None:
        await ledger.open("HR-10", "m1", NOW)
        transport.drops = 1
        await ledger.note("HR-10", waiting)
        await ledger.decide("HR-10", Decided(event("HR-10", "licensed"), "p1"))
        transport.drops = 1
        await ledger.close("HR-10", "licensed")

    asyncio.run(use())
    assert transport.dropped == 2
    record = run(tables, lambda fresh: fresh.read("HR-10"))
    assert record is not None
    assert record.progress.status == "licensed"
    assert record.progress.parked is False
    assert run(tables, lambda fresh: fresh.parked()).count == 0
