"""LEDGER_RETENTION on a real Azure Table (Azurite): a request's rows, its `~parked` row,
the messages kept for it and any row another feature keeps in its partition are deleted
once its terminal event is older than the cut-off, by range queries on the `~expiry`
index (never a scan of the table); rows written before the index are indexed by the
one-time scan; nothing still in use, or not yet published, is deleted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.data.tables import TableClient, TableServiceClient

from local_stack.azurite import Azurite, start_azurite
from shared.adapters.ledger import DEAD_LETTERS, PARKED, TableLedger, ensure_table
from shared.adapters.retention import (
    EXPIRY,
    LEGACY_MARK,
    TableRetention,
    reference,
    row_entry,
)
from shared.domain.codes import EventType, RequestStatus
from shared.domain.events import Event
from shared.domain.records import (
    Decided,
    Expired,
    MessageSource,
    Progress,
    SetAside,
    SetAsideStatus,
)
from shared.names import TABLE_REQUESTS

pytestmark = pytest.mark.stack
T = TypeVar("T")
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
RETENTION = timedelta(days=90)
LATER = T0 + RETENTION + timedelta(minutes=1)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with start_azurite(Path(tmp_path_factory.mktemp("retention"))) as running:
        yield running


@pytest.fixture
def table(azurite: Azurite) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    service.delete_table(TABLE_REQUESTS)
    ensure_table(service)
    yield service.get_table_client(TABLE_REQUESTS)
    service.close()


class Recording(TableClient):
    """The table client, noting every query filter it sends."""

    filters: list[str]

    def query_entities(self, query_filter: str, **kwargs: Any) -> Any:
        self.filters.append(query_filter)
        return super().query_entities(query_filter, **kwargs)


def recording(azurite: Azurite) -> Recording:
    client = Recording.from_connection_string(azurite.connection_string, TABLE_REQUESTS)
    client.filters = []
    return client


def run(use: Awaitable[T]) -> T:
    async def main() -> T:
        return await use

    return asyncio.run(main())


def event(request_id: str, word: str, at: datetime = T0) -> Event:
    (kind,) = [t for t in EventType if t.word == word]
    return Event(kind, f"{request_id}:{word}", at, {"requestId": request_id})


def rows(table: TableClient) -> set[tuple[str, str]]:
    return {(str(r["PartitionKey"]), str(r["RowKey"])) for r in table.list_entities()}


async def finished(
    ledger: TableLedger,
    retention: TableRetention | None,
    request_id: str,
    *,
    at: datetime = T0,
    word: str = "licensed",
    close: bool = True,
) -> None:
    """A request as the service leaves it: opened, parked once, decided, indexed (when
    there is a retention), published (closed)."""
    await ledger.open(request_id, "m-" + request_id, at)
    await ledger.note(request_id, Progress(RequestStatus.WAITING, parked=True, deadline=at))
    decided = await ledger.decide(request_id, Decided(event(request_id, word, at), "m1"))
    if retention is not None:
        await retention.track_request(request_id, decided.event.time)
    if close:
        await ledger.close(request_id, RequestStatus(word))


def kept(message_id: str, request_id: str | None, status: SetAsideStatus) -> SetAside:
    body = json.dumps({"requestId": request_id, "userPrincipalName": "jane@contoso.com"})
    return SetAside(MessageSource.POISON, message_id, body, "poisoned", request_id, status=status)


def test_everything_about_a_request_goes_once_its_terminal_event_is_older_than_the_retention(
    table: TableClient,
) -> None:
    """Request and terminal rows, its ~parked row, the message kept for it, a row another
    feature keeps in its partition: all deleted, and the ledger then knows no such
    request."""
    ledger, retention = TableLedger(table), TableRetention(table)

    async def scenario() -> Any:
        await finished(ledger, retention, "HR/2026/1")
        item = kept("p1", "HR/2026/1", SetAsideStatus.REPORTED)
        await retention.track_set_aside(item, T0)
        await ledger.set_aside(item, T0)
        table.upsert_entity({"PartitionKey": "HR|2026|1", "RowKey": "teams", "Phone": "+33"})
        table.upsert_entity({"PartitionKey": PARKED, "RowKey": "HR|2026|1"})  # left behind
        early = await retention.expire(T0 - timedelta(minutes=1), LATER, 100)
        kept_early = rows(table)
        done = await retention.expire(LATER - RETENTION, LATER, 100)
        return early, kept_early, done, await ledger.read("HR/2026/1")

    early, kept_early, done, record = run(scenario())
    assert early == Expired()
    assert ("HR|2026|1", "terminal") in kept_early
    assert done.requests == 1
    assert record is None
    assert rows(table) == set()  # the index entries too


def test_finding_what_expired_never_scans_the_table(azurite: Azurite, table: TableClient) -> None:
    """Every query names a partition: the index's range, then each due request's own."""
    ledger, seeding = TableLedger(table), TableRetention(table)
    client = recording(azurite)
    retention = TableRetention(client)

    async def scenario() -> Any:
        for n in range(30):  # ten old enough, twenty not
            await finished(ledger, seeding, f"R-{n}", at=T0 + timedelta(days=n * 3))
        return await retention.expire(T0 + timedelta(days=28), LATER, 100)

    done = run(scenario())
    assert done.requests == 10
    assert all(f.startswith("PartitionKey eq @pk") for f in client.filters)
    assert len(client.filters) == 1 + 10
    assert {pk for pk, _ in rows(table) if pk.startswith("R-")} == {f"R-{n}" for n in range(10, 30)}
    client.close()


def test_at_most_the_limit_oldest_first(table: TableClient) -> None:
    """A backlog is worked off in batches, the oldest terminal events first."""
    ledger, retention = TableLedger(table), TableRetention(table)

    async def scenario() -> Any:
        for n in range(5):
            await finished(ledger, retention, f"B-{n}", at=T0 + timedelta(hours=5 - n))
        return await retention.expire(LATER + timedelta(days=1), LATER, 2)

    assert run(scenario()).requests == 2
    assert {pk for pk, row in rows(table) if row == "request"} == {"B-0", "B-1", "B-2"}


def test_a_decision_the_ledger_does_not_show_published_is_kept(table: TableClient) -> None:
    """Decided and indexed, then a crash before the ledger was closed: kept (a replay
    publishes and indexes it again), its index entry dropped."""
    ledger, retention = TableLedger(table), TableRetention(table)

    async def scenario() -> Any:
        await finished(ledger, retention, "U-1", close=False)
        done = await retention.expire(LATER, LATER, 100)
        return done, await ledger.read("U-1")

    done, record = run(scenario())
    assert (done.requests, done.kept) == (0, 1)
    assert record is not None
    assert record.decided is not None
    assert not [key for key in rows(table) if key[0] == EXPIRY]


def test_a_later_request_under_the_same_id_is_not_deleted_by_the_old_entry(
    table: TableClient,
) -> None:
    """The old request was deleted; a new one reuses its requestId and is in progress."""
    ledger, retention = TableLedger(table), TableRetention(table)

    async def scenario() -> Any:
        await finished(ledger, retention, "N-1")
        await retention.track_request("N-1", T0)  # a duplicate entry of the old request
        await retention.expire(LATER, LATER, 1)
        await ledger.open("N-1", "m-new", LATER)
        await retention.expire(LATER, LATER, 100)
        return await ledger.read("N-1")

    record = run(scenario())
    assert record is not None
    assert record.owner == "m-new"


def test_a_deletion_cut_short_is_finished_by_the_next_pass(table: TableClient) -> None:
    """A crash after the terminal row went and before the request row did: the closed
    request row left alone is deleted next time (its index entry is still there)."""
    ledger, retention = TableLedger(table), TableRetention(table)

    async def scenario() -> Any:
        await finished(ledger, retention, "C-1")
        table.delete_entity("C-1", "terminal")
        return await retention.expire(LATER, LATER, 100)

    assert run(scenario()).requests == 1
    assert rows(table) == set()


def test_kept_messages_go_by_their_own_time_unless_held_or_their_request_is_recorded(
    table: TableClient,
) -> None:
    """A reported message of no request is deleted; a held one is looked at again a
    retention later; one whose request is still recorded is left to that request."""
    ledger, retention = TableLedger(table), TableRetention(table)
    items = [
        kept("gone", None, SetAsideStatus.REPORTED),
        kept("held", None, SetAsideStatus.HELD),
        kept("alive", "A-1", SetAsideStatus.KEPT),
    ]

    async def scenario() -> Any:
        await ledger.open("A-1", "m-a", T0)  # still in progress
        for item in items:
            await retention.track_set_aside(item, T0)
            await ledger.set_aside(item, T0)
        return await retention.expire(LATER - RETENTION, LATER, 100)

    done = run(scenario())
    assert (done.rows, done.kept) == (1, 1)
    left = {row for pk, row in rows(table) if pk == DEAD_LETTERS}
    assert left == {"poison-held", "poison-alive"}
    later = {row.split("|", 1)[0] for pk, row in rows(table) if pk == EXPIRY}
    assert later == {LATER.strftime("%Y-%m-%dT%H:%M:%S.000000Z")}


def test_rows_written_before_the_index_are_indexed_page_by_page_then_expire(
    table: TableClient,
) -> None:
    """The one-time scan reads a page per call (here 3 rows), remembers where it is, says
    when it is done; then the old requests and kept messages expire like new ones."""
    ledger = TableLedger(table)

    async def scenario() -> list[int | None]:
        for n in range(4):
            await finished(ledger, None, f"OLD/{n}")
        await ledger.set_aside(kept("k1", "OLD/0", SetAsideStatus.REPORTED), T0)
        await ledger.set_aside(kept("k2", None, SetAsideStatus.REPORTED), T0)
        counts = []
        for _ in range(5):  # a fresh adapter each sweep (a new process): the mark is read
            counts.append(await TableRetention(table).index_legacy(3))
        return counts

    counts = run(scenario())
    assert counts[:2] == [3, 3]
    assert counts[-1] is None
    mark = table.get_entity(EXPIRY, LEGACY_MARK)
    assert mark["Done"] is True
    done = run(TableRetention(table).expire(LATER - RETENTION, LATER, 100))
    assert (done.requests, done.rows) == (4, 4 * 2 + 1 + 1 + 1)  # + the reference
    assert rows(table) == {(EXPIRY, LEGACY_MARK)}


def test_other_features_hook_in_with_a_reference_or_an_entry_of_their_own(
    table: TableClient,
) -> None:
    """An outbox row about a request (named by a reference) goes with it; a row about no
    request (an entry of its own) goes by its time."""
    ledger, retention = TableLedger(table), TableRetention(table)

    async def scenario() -> Any:
        table.upsert_entity(reference("O-1", "~outbox", "O-1:licensed"))
        table.upsert_entity({"PartitionKey": "~outbox", "RowKey": "O-1:licensed", "Body": "x"})
        table.upsert_entity(row_entry("~outbox", "orphan", T0))
        table.upsert_entity({"PartitionKey": "~outbox", "RowKey": "orphan", "Body": "y"})
        await finished(ledger, retention, "O-1")
        return await retention.expire(LATER - RETENTION, LATER, 100)

    done = run(scenario())
    assert done.requests == 1
    assert rows(table) == set()
