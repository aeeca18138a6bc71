"""`list --limit` on Azurite with more parked requests than one Table query page: the
earliest deadlines first, the count of all, and only the limit kept in the answer."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableClient

from local_stack.stack import LocalStack
from ops.__main__ import main as ops_main
from shared.adapters.ledger import PARKED, TableLedger, ensure_table, partition
from shared.adapters.storage import table_service
from shared.domain.records import Progress, SetAside
from shared.names import TABLE_REQUESTS
from shared.settings import StorageConnection

pytestmark = pytest.mark.stack
SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PARKED_COUNT = 1_250  # more than the 1,000 entities of one query page
STATUSES = ("waiting", "blocked", "scheduled")


@pytest.fixture(scope="module")
def backlog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stack whose ledger has PARKED_COUNT parked requests and four kept messages."""
    with LocalStack(tmp_path_factory.mktemp("ops-limit"), SAMPLES / "directory.json") as stack:
        assert stack.azurite is not None
        connection = stack.azurite.connection_string
        service = table_service(StorageConnection(connection_string=connection))
        try:
            ensure_table(service)
            expected = park_many(service.get_table_client(TABLE_REQUESTS))
        finally:
            service.close()
        yield connection, expected


def park_many(table: TableClient) -> list[dict[str, Any]]:
    """Ten requests through the ledger's own writer, the rest as copies of their index
    rows (in transactions of 100), with shuffled deadlines and a few with none."""
    rng = random.Random(21)
    wanted = []
    for n in range(PARKED_COUNT):
        deadline = None if n % 400 == 7 else T0 + timedelta(minutes=rng.randrange(100_000))
        wanted.append({"requestId": f"LIM-{n:05d}", "status": STATUSES[n % 3], "at": deadline})

    ledger = TableLedger(table)

    async def write() -> None:
        for row in wanted[:10]:
            progress = Progress(row["status"], parked=True, deadline=row["at"])
            await ledger.note(row["requestId"], progress)
        kept = [("p1", "held"), ("p2", "held"), ("p3", "reported"), ("p0", "held")]
        for n, (message_id, status) in enumerate(kept):  # each older than the one before
            item = SetAside("poison", message_id, "{}", "failed 5 times", f"K-{n}", status)
            await ledger.set_aside(item, T0 + timedelta(minutes=10 - n))

    asyncio.run(write())
    template = dict(table.get_entity(PARKED, partition(wanted[0]["requestId"])))
    batch: list[tuple[str, dict[str, Any]]] = []
    for row in wanted[10:]:
        deadline = row["at"].strftime("%Y-%m-%dT%H:%M:%SZ") if row["at"] else ""
        entity = template | {"RowKey": row["requestId"], "RequestId": row["requestId"]}
        batch.append(("upsert", entity | {"Status": row["status"], "Deadline": deadline}))
        if len(batch) == 100:
            table.submit_transaction(batch)
            batch = []
    if batch:
        table.submit_transaction(batch)
    last = datetime.max.replace(tzinfo=UTC)
    return sorted(wanted, key=lambda row: (row["at"] or last, row["requestId"]))


def listing(capsys: pytest.CaptureFixture[str], connection: str, *args: str) -> dict[str, Any]:
    assert ops_main(["list", *args, "--json", "--connection-string", connection]) == 0
    answer: dict[str, Any] = json.loads(capsys.readouterr().out)
    return answer


def test_a_limit_shows_the_earliest_deadlines_of_all_and_counts_the_rest(
    backlog: tuple[str, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Across query pages: the five earliest of 1,250, and 1,250 counted."""
    connection, expected = backlog
    answer = listing(capsys, connection, "pending", "--limit", "5")
    assert [r["requestId"] for r in answer["parked"]] == [r["requestId"] for r in expected[:5]]
    assert answer["parkedTotal"] == PARKED_COUNT


def test_the_text_says_how_many_more_there_are(
    backlog: tuple[str, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator sees that the list is cut, by how much, and how to see all."""
    connection, _ = backlog
    assert ops_main(["list", "pending", "--limit", "5", "--connection-string", connection]) == 0
    text = capsys.readouterr().out
    assert "1,250 parked request(s) (1,245 more than these 5: --limit 0 for all)" in text
    assert len([line for line in text.splitlines() if line.startswith("  LIM-")]) == 5


def test_the_default_limit_is_a_hundred_and_zero_means_all(
    backlog: tuple[str, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --limit: 100; --limit 0: every one, in deadline order, none missing."""
    connection, expected = backlog
    assert len(listing(capsys, connection, "pending")["parked"]) == 100
    every = listing(capsys, connection, "pending", "--limit", "0")["parked"]
    assert [r["requestId"] for r in every] == [r["requestId"] for r in expected]
    assert every[-1]["deadline"] == ""  # requests without a deadline come last


def test_a_state_narrows_what_is_read_and_counted(
    backlog: tuple[str, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    """`list blocked`: only blocked requests, their own count, earliest first."""
    connection, expected = backlog
    blocked = [r["requestId"] for r in expected if r["status"] == "blocked"]
    answer = listing(capsys, connection, "blocked", "--limit", "3")
    assert [r["requestId"] for r in answer["parked"]] == blocked[:3]
    assert answer["parkedTotal"] == len(blocked)
    assert answer["kept"] == []


def test_kept_messages_are_limited_and_counted_too(
    backlog: tuple[str, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Held messages, oldest first (the first to be reported), limited, all counted."""
    connection, _ = backlog
    held = listing(capsys, connection, "held", "--limit", "2")
    assert [k["messageId"] for k in held["kept"]] == ["p0", "p2"]
    assert (held["keptTotal"], held["parkedTotal"]) == (3, 0)
    aside = listing(capsys, connection, "set-aside")
    assert [(k["messageId"], k["status"]) for k in aside["kept"]] == [("p3", "reported")]
