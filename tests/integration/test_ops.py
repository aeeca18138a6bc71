"""`python -m ops` against Azurite and the Graph emulator: where is a request, what waits,
and replay of a poisoned message that never gives a request a second outcome."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local_stack.stack import LocalStack
from ops.__main__ import main as ops_main
from ops.store import Store
from ops.view import describe, list_requests, replay
from shared.bootstrap import Wiring, build_service, policy_from
from shared.settings import Settings, StorageConnection

pytestmark = pytest.mark.stack
SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack(tmp_path, SAMPLES / "directory.json") as running:
        yield running


def wiring(stack: LocalStack, **settings: str) -> Wiring:
    config = Settings.from_env({**stack.app_environment(), **settings})
    return build_service(config, policy=policy_from(config))


def onboard(request_id: str, upn: str, **extra: Any) -> str:
    body = {"requestId": request_id, "userPrincipalName": upn, **extra}
    body.setdefault("licenses", [{"skuPartNumber": "ENTERPRISEPACK"}])
    return json.dumps(body)


def store_of(stack: LocalStack) -> Store:
    assert stack.azurite is not None
    return Store.open(StorageConnection(connection_string=stack.azurite.connection_string))


def test_show_tells_where_each_request_is(stack: LocalStack) -> None:
    """Licensed, waiting for sync, and rejected: state, events sent, deadline, outcome."""

    async def run() -> None:
        wired = wiring(stack, SYNC_TIMEOUT="PT1H")
        try:
            service = wired.service
            await service.handle_request(onboard("OPS-1", "jane.doe@contoso.com"), "m1")
            await service.handle_request(onboard("OPS-2", "never.synced@contoso.com"), "m2")
            await service.handle_request('{"requestId": "OPS-3"}', "m3")
        finally:
            await wired.aclose()

    asyncio.run(run())
    store = store_of(stack)
    try:
        now = datetime.now(UTC)
        licensed = asyncio.run(describe(store, "OPS-1", now=now)).to_json()
        waiting = asyncio.run(describe(store, "OPS-2", now=now)).to_json()
        rejected = asyncio.run(describe(store, "OPS-3", now=now)).to_json()
        unknown = asyncio.run(describe(store, "OPS-404", now=now))
        listing = asyncio.run(list_requests(store, {"pending"})).to_json()
    finally:
        store.close()
    assert licensed["state"] == "licensed"
    assert licensed["outcome"]["id"] == "OPS-1:licensed"
    assert licensed["parked"] is False
    assert waiting["state"] == "waiting"
    assert waiting["lastSeen"] == "not_synced"
    assert set(waiting["eventsSent"]) == {"awaiting_sync"}
    assert waiting["nextCheckAt"] < waiting["deadline"]
    assert rejected["state"] == "rejected"
    assert rejected["outcome"]["reason"]["code"] == "invalid_message"
    assert unknown.exit_code == 1
    assert [r["requestId"] for r in listing["parked"]] == ["OPS-2"]


def test_a_held_poisoned_message_is_replayed_once_and_ends_licensed(stack: LocalStack) -> None:
    """Held (not answered yet), replayed by the operator, licensed: one terminal event."""
    stack.queue("user-onboard-poison").send_message(onboard("OPS-P", "jane.doe@contoso.com"))

    async def sweep_then_replay_then_handle() -> list[str]:
        wired = wiring(stack, POISON_HOLD="PT1H")
        store = store_of(stack)
        try:
            await wired.service.sweep()
            held = (await list_requests(store, {"held"})).to_json()["kept"]
            assert [h["requestId"] for h in held] == ["OPS-P"]
            result = await replay(store, [held[0]["messageId"]])
            assert result.exit_code == 0, result.text()
            again = await replay(store, [held[0]["messageId"]])  # nothing left to replay
            assert again.exit_code == 1
            (message,) = stack.queue("user-onboard").receive_messages(visibility_timeout=30)
            outcome = await wired.service.handle_request(message.content, message.id)
            await wired.service.sweep()  # the hold is over in an hour: nothing reported now
            return [outcome]
        finally:
            store.close()
            await wired.aclose()

    assert asyncio.run(sweep_then_replay_then_handle()) == ["licensed"]
    ids = [e["id"] for e in stack.drain_events()]
    assert ids == ["OPS-P:blocked", "OPS-P:licensed"]  # blocked/poisoned while held (v1.2)


def test_a_message_poisoned_after_its_request_was_answered_is_not_replayed(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command refuses, says why, and offers a new requestId instead."""

    async def run() -> str:
        wired = wiring(stack, POISON_HOLD="PT0S")
        try:
            await wired.service.handle_request(onboard("OPS-D", "jane.doe@contoso.com"), "m1")
            stack.queue("user-onboard-poison").send_message(
                onboard("OPS-D", "jane.doe@contoso.com")
            )
            await wired.service.sweep()
        finally:
            await wired.aclose()
        store = store_of(stack)
        try:
            (kept,) = (await list_requests(store, {"set-aside"})).kept
            return kept.message_id
        finally:
            store.close()

    message_id = asyncio.run(run())
    assert stack.azurite is not None
    cs = stack.azurite.connection_string
    assert ops_main(["--connection-string", cs, "replay", message_id]) == 1
    assert "already reached its terminal event OPS-D:licensed" in capsys.readouterr().out
    code = ops_main(["--connection-string", cs, "replay", message_id, "--new-request-id", "OPS-D2"])
    assert code == 0
    (posted,) = stack.queue("user-onboard").receive_messages()
    assert json.loads(posted.content)["requestId"] == "OPS-D2"
    terminal_ids = {e["id"] for e in stack.drain_events()}
    assert terminal_ids == {"OPS-D:licensed"}  # published twice at most, one id


def test_the_hold_ends_in_a_poison_report_when_nobody_replays(stack: LocalStack) -> None:
    """After POISON_HOLD the request is answered rejected/poison, and the copy says so."""

    async def run() -> None:
        wired = wiring(stack, POISON_HOLD="PT1S")
        try:
            await wired.service.sweep()
            await asyncio.sleep(1.5)
            await wired.service.sweep()
        finally:
            await wired.aclose()

    stack.queue("user-onboard-poison").send_message(onboard("OPS-R", "x@contoso.com"))
    asyncio.run(run())
    blocked, event = stack.drain_events()
    assert (blocked["id"], blocked["data"]["reason"]["code"]) == ("OPS-R:blocked", "poisoned")
    assert (event["id"], event["data"]["reason"]["code"]) == ("OPS-R:rejected", "poison")
    store = store_of(stack)
    try:
        (kept,) = asyncio.run(list_requests(store, {"set-aside"})).kept
    finally:
        store.close()
    assert kept.status == "reported"
    assert timedelta(0) < datetime.now(UTC) - (kept.set_aside_at or datetime.now(UTC))
