"""Pacing as one app across processes (guarantee 8), on a real table (Azurite) and the
Graph emulator: the record's conditional writes, one app process's 429 holding another's
write, and a process killed while it holds write turns."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from azure.data.tables import TableServiceClient

from local_stack.graph_emulator.throttle import Admitted
from local_stack.stack import REPO, LocalStack
from shared.adapters.ledger import TableLedger, ensure_table
from shared.adapters.pacing import TablePacingStore
from shared.decisions.pacing import Pacing
from shared.domain.errors import GraphCall
from shared.domain.pacing import PacingRecord
from shared.domain.records import Progress
from shared.names import TABLE_REQUESTS
from shared.service.pacing import SharedPacer
from tests.support.graph import SAMPLE_DIRECTORY

pytestmark = pytest.mark.stack
ALICE = "alice.pace@contoso.com"
BOB = "bob.pace@contoso.com"


def synced(upn: str) -> dict[str, Any]:
    return {
        "userPrincipalName": upn,
        "displayName": upn.split("@")[0],
        "onPremisesSyncEnabled": True,
        "usageLocation": "FR",
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Azurite and the emulator (no host: the tests run app processes of their own), with
    Graph's write budget metered in fixed windows, on a clock at half speed: a spent
    budget asks for up to 300 s, longer than any call waits in its invocation (150 s)."""
    tenant = {**SAMPLE_DIRECTORY, "users": [synced(ALICE), synced(BOB)]}
    running = LocalStack(
        Path(tmp_path_factory.mktemp("pacing")),
        tenant,
        emulator_options={"units_per_10s": 0, "writes_per_150s": 3000, "time_scale": 0.5},
    )
    running.start()
    yield running
    running.stop()


def app_process(stack: LocalStack, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tests.support.app_process", *args],
        cwd=REPO,
        env={**stack.app_environment(), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def handled(stack: LocalStack, request_id: str, upn: str) -> str:
    licenses = [{"skuPartNumber": "ENTERPRISEPACK"}]
    body = json.dumps({"requestId": request_id, "userPrincipalName": upn, "licenses": licenses})
    process = app_process(stack, "handle", body, f"message-{request_id}")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    return str(json.loads(out.splitlines()[-1])["outcome"])


def store(stack: LocalStack) -> TablePacingStore:
    assert stack.azurite is not None
    tables = TableServiceClient.from_connection_string(stack.azurite.connection_string)
    ensure_table(tables)
    return TablePacingStore(tables.get_table_client(TABLE_REQUESTS))


def progress(stack: LocalStack, request_id: str) -> Progress:
    assert stack.azurite is not None
    tables = TableServiceClient.from_connection_string(stack.azurite.connection_string)
    record = asyncio.run(TableLedger(tables.get_table_client(TABLE_REQUESTS)).read(request_id))
    assert record is not None
    return record.progress


def test_the_record_is_created_once_and_a_write_from_a_stale_copy_is_refused(
    stack: LocalStack,
) -> None:
    """Create-if-absent, then If-Match: whoever read an older copy must read again."""
    shared = store(stack)

    async def main() -> None:
        blank = await shared.load()
        first = await shared.save(PacingRecord(next_write=10.0, cause="a"), blank.version)
        assert first is not None
        assert await shared.save(PacingRecord(next_write=20.0), blank.version) is None
        second = await shared.save(PacingRecord(next_write=30.0, cause="b"), first)
        assert second is not None
        assert await shared.save(PacingRecord(next_write=40.0), first) is None
        now = await shared.load()
        assert now.record == PacingRecord(next_write=30.0, cause="b")
        assert now.version == second

    asyncio.run(main())


def test_one_app_processs_429_holds_the_write_of_another_that_never_met_one(
    stack: LocalStack,
) -> None:
    """App process A meets Graph's 429 (the write budget is spent, Retry-After ~300 s);
    app process B, started after it, looks its user up but does not send its write: it
    parks the request until A's Retry-After, and Graph sees one assignLicense in all."""
    graph = stack.graph
    assert graph is not None
    graph.service.throttle.configure()  # a fresh window, then spend it all
    spent = graph.service.throttle.admit(f"Bearer {graph.token}", 1, 3000)
    assert isinstance(spent, Admitted)
    before = time.time()

    assert handled(stack, "PACE-A", ALICE) == "waiting"
    assert handled(stack, "PACE-B", BOB) == "waiting"

    writes = [e for e in graph.requests() if e["path"].endswith("/assignLicense")]
    assert [e["status"] for e in writes] == [429]
    assert [e for e in graph.requests() if BOB in unquote(str(e["path"]))], "B's lookup went out"
    a, b = progress(stack, "PACE-A"), progress(stack, "PACE-B")
    assert a.last_error is not None
    assert b.last_error is not None
    assert a.last_error["status"] == 429
    assert b.last_error["message"].startswith("not sent")
    assert a.last_error["message"] in b.last_error["message"]  # Graph's words, as A met them
    assert a.next_check_at is not None
    assert b.next_check_at is not None
    assert abs((b.next_check_at - a.next_check_at).total_seconds()) < 5  # A's Retry-After
    assert b.next_check_at.timestamp() > before + 150  # Graph's window, not a short retry


def test_a_process_killed_while_holding_turns_stalls_the_others_no_longer_than_its_lease(
    stack: LocalStack,
) -> None:
    """A process takes a block of turns (20 at 1 write/s: a lease of 20 s) and is killed
    with SIGKILL while waiting on them. The record it leaves is whole: another process
    writes it at once, and its first turn comes right after the dead process's block,
    never later than the lease after it was taken."""
    pacing = Pacing(writes_per_second=1.0)
    shared = store(stack)

    async def spend_the_burst() -> None:
        copy = await shared.load()
        busy = PacingRecord(next_write=time.time() + pacing.tolerance)
        assert await shared.save(busy, copy.version) is not None

    asyncio.run(spend_the_burst())
    holder = app_process(stack, "hold", "1")
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        assert line, holder.stderr.read() if holder.stderr else ""
        held = json.loads(line)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.communicate(timeout=30)
    assert holder.returncode == -signal.SIGKILL

    turns: list[float] = []

    async def record_the_wait(seconds: float) -> None:
        turns.append(time.time() + seconds)

    async def take_a_turn() -> None:
        other = SharedPacer(shared, pacing, sleep=record_the_wait)
        await other.wait_turn(GraphCall.ASSIGN_LICENSE)

    asyncio.run(take_a_turn())
    (turn,) = turns
    stall = turn - held["reserved_at"]
    assert held["block"] * pacing.interval == pacing.lease == 20.0
    assert pacing.lease - 2.0 < stall <= pacing.lease + 2.0
