"""The event outbox on a real Azure Table (Azurite): held events read back byte for byte,
due by instant, versions that keep a newer hold from being released, an update that never
brings a released row back, and keys for every event id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from azure.data.tables import TableClient, TableServiceClient

from local_stack.azurite import Azurite, start_azurite
from shared.adapters.ledger import TableLedger, ensure_table
from shared.adapters.outbox import OUTBOX, TableOutbox, row_key
from shared.domain.codes import EventType, RejectionCode
from shared.domain.errors import FieldError
from shared.domain.events import MAX_EVENT_BYTES, Event, Reason, rejected_event
from shared.domain.outbox import Sink
from shared.names import TABLE_REQUESTS

pytestmark = pytest.mark.stack
T = TypeVar("T")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with start_azurite(Path(tmp_path_factory.mktemp("outbox"))) as running:
        yield running


@pytest.fixture
def table(azurite: Azurite) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    service.delete_table(TABLE_REQUESTS)
    ensure_table(service)
    client = service.get_table_client(TABLE_REQUESTS)
    yield client
    service.close()


def run(table: TableClient, use: Callable[[TableOutbox], Awaitable[T]]) -> T:
    return asyncio.run(use(TableOutbox(table)))


def event(request_id: str, word: str = "licensed", at: datetime = NOW) -> Event:
    (kind,) = [t for t in EventType if t.word == word]
    return Event(kind, f"{request_id}:{word}", at, {"requestId": request_id}, request_id)


def test_a_held_event_is_due_at_its_instant_and_reads_back_byte_for_byte(
    table: TableClient,
) -> None:
    """Not before `due_at` (compared as instants, sub-second ones included), then the same
    serialized JSON, sent nowhere yet."""
    held = event("HR/2026/1", at=NOW.replace(microsecond=250_000))

    async def use(outbox: TableOutbox) -> tuple[object, ...]:
        await outbox.hold(held, NOW, NOW + timedelta(seconds=30, milliseconds=500))
        early = await outbox.due(NOW + timedelta(seconds=30), 10)
        late = await outbox.due(NOW + timedelta(seconds=31), 10)
        return early, late

    early, late = run(table, use)
    assert early == []
    assert isinstance(late, list)
    (found,) = late
    assert found.event.serialize() == held.serialize()
    assert found.sent == frozenset()
    assert found.held_at == NOW
    assert found.version is not None


def test_an_event_of_the_largest_size_with_hostile_text_survives_the_table(
    table: TableClient,
) -> None:
    """A rejected event echoing 48 KiB of hostile text spans several table strings and
    comes back the same bytes."""
    hostile = "\x00\u2028\ud800 é 日本 </x>" * 1_050
    rejected = rejected_event(
        NOW,
        reason=Reason(RejectionCode.INVALID_MESSAGE, "unknown field"),
        request_id="HR-BIG",
        message_id="m1",
        errors=[FieldError("x\x00", "unknown field")],
        details={"originalMessage": hostile},
    )
    text = rejected.serialize()
    assert len(text) > 40_000
    assert len(text.encode()) <= MAX_EVENT_BYTES

    async def use(outbox: TableOutbox) -> str:
        await outbox.hold(rejected, NOW, NOW)
        (found,) = await outbox.due(NOW, 10)
        return found.event.serialize()

    assert run(table, use) == text


def test_keep_notes_the_sinks_and_the_next_try_and_never_revives_a_released_event(
    table: TableClient,
) -> None:
    """After keep: sent to the queue, due later, with the problem; keep after release
    leaves nothing behind."""

    async def use(outbox: TableOutbox) -> tuple[object, ...]:
        await outbox.hold(event("HR-1"), NOW, NOW)
        await outbox.keep("HR-1:licensed", frozenset({Sink.QUEUE}), NOW + timedelta(hours=1), "503")
        not_yet = await outbox.due(NOW + timedelta(minutes=59), 10)
        (kept,) = await outbox.due(NOW + timedelta(hours=1), 10)
        await outbox.release("HR-1:licensed", kept.version)
        await outbox.keep("HR-1:licensed", frozenset({Sink.QUEUE}), NOW, "late")
        return not_yet, kept.sent, kept.problem, await outbox.due(NOW + timedelta(days=1), 10)

    not_yet, sent, problem, after = run(table, use)
    assert not_yet == []
    assert sent == {Sink.QUEUE}
    assert problem == "503"
    assert after == []
    assert list(table.query_entities("PartitionKey eq @pk", parameters={"pk": OUTBOX})) == []


def test_releasing_an_old_version_leaves_a_newer_hold_of_the_same_event(
    table: TableClient,
) -> None:
    """A redelivery held the event again while an older copy was released: the newer hold
    stays until its own release."""

    async def use(outbox: TableOutbox) -> tuple[int, int]:
        first = await outbox.hold(event("HR-1"), NOW, NOW)
        second = await outbox.hold(event("HR-1"), NOW, NOW)
        await outbox.release("HR-1:licensed", first)
        left = len(await outbox.due(NOW, 10))
        await outbox.release("HR-1:licensed", second)
        return left, len(await outbox.due(NOW, 10))

    assert run(table, use) == (1, 0)


def test_due_returns_at_most_the_limit(table: TableClient) -> None:
    """A page at a time: the drain asks for a bounded number."""

    async def use(outbox: TableOutbox) -> int:
        for n in range(7):
            await outbox.hold(event(f"HR-{n}"), NOW, NOW)
        return len(await outbox.due(NOW, 5))

    assert run(table, use) == 5


def test_every_event_id_shape_makes_a_valid_key_and_the_ledger_never_sees_the_outbox(
    table: TableClient,
) -> None:
    """requestIds with `/`, `.`, `:` and a message-level id are stored and read back; the
    ledger's reads of a request never meet an outbox row."""
    ids = ["HR/2026/1", "a.b:c-d_e", "HR-Z"]
    events = [event(rid) for rid in ids] + [
        Event(EventType.REJECTED, "message:3f2a-9c:rejected", NOW, {"requestId": None})
    ]

    async def use(outbox: TableOutbox) -> list[str]:
        for one in events:
            await outbox.hold(one, NOW, NOW)
        return sorted(h.event.id for h in await outbox.due(NOW, 10))

    assert run(table, use) == sorted(e.id for e in events)
    assert row_key("HR/2026/1:licensed") == "HR|2026|1:licensed"
    assert row_key("a#b?c\\d~e\x01") == "a~23b~3Fc~5Cd~7Ee~01"
    ledger = TableLedger(table)
    assert asyncio.run(ledger.read("HR/2026/1")) is None


def test_an_unreadable_row_is_left_alone_and_the_others_are_drained(table: TableClient) -> None:
    """One row that does not parse (a hand edit, a bug) stops nothing."""
    table.upsert_entity(
        {
            "PartitionKey": OUTBOX,
            "RowKey": "AAA-broken",
            "EventId": "AAA-broken",
            "Event0": "{not json",
            "Sent": "",
            "HeldAt": NOW,
            "DueAt": NOW,
        }
    )

    async def use(outbox: TableOutbox) -> list[str]:
        await outbox.hold(event("HR-1"), NOW, NOW)
        return [h.event.id for h in await outbox.due(NOW, 10)]

    assert run(table, use) == ["HR-1:licensed"]
    rows = table.query_entities("PartitionKey eq @pk", parameters={"pk": OUTBOX})
    assert {json.dumps(r["RowKey"]) for r in rows} == {'"AAA-broken"', '"HR-1:licensed"'}
