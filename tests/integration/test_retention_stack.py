"""The app as wired from its settings, on the local stack (Azurite, the Graph emulator):
requests answered today are gone from the ledger LEDGER_RETENTION later, and `ops show`
then answers not found; every sweep reports the intake backlog, and while nobody takes
requests off `user-onboard` (intake paused, trigger stopped) the age it reports grows."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from local_stack.stack import LocalStack
from ops.__main__ import main as ops_main
from shared.bootstrap import build_service, policy_from
from shared.names import QUEUE_REQUESTS
from shared.settings import Settings
from shared.telemetry import TelemetryEvent
from tests.fakes import FakeClock

pytestmark = pytest.mark.stack
SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = Path(tmp_path_factory.mktemp("retention-stack"))
    with LocalStack(state, SAMPLES / "directory.json") as running:
        yield running


def onboard(request_id: str, upn: str) -> str:
    return json.dumps(
        {
            "requestId": request_id,
            "userPrincipalName": upn,
            "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}],
        }
    )


def records_of(caplog: pytest.LogCaptureFixture, event: TelemetryEvent) -> list[Any]:
    return [r for r in caplog.records if getattr(r, "onboardingEvent", None) == event]


def test_answered_requests_are_not_found_a_retention_later(
    stack: LocalStack, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Licensed and rejected today; a sweep 30 days on keeps them, one 30 days + a minute
    on (LEDGER_RETENTION=P30D) deletes them: `ops show` exits 1, the summary counts 2."""
    caplog.set_level(logging.INFO, logger="user_onboarding")
    clock = FakeClock(datetime.now(UTC))
    config = Settings.from_env({**stack.app_environment(), "LEDGER_RETENTION": "P30D"})

    async def scenario() -> None:
        wired = build_service(config, policy=policy_from(config), clock=clock)
        try:
            service = wired.service
            assert await service.handle_request(onboard("RET-1", "jane.doe@contoso.com"), "m1") == (
                "licensed"
            )
            await service.handle_request('{"requestId": "RET-2"}', "m2")
            clock.advance(timedelta(days=30))
            await service.sweep()
            show = ["show", "RET-1", "--connection-string", connection]
            assert await asyncio.to_thread(ops_main, show) == 0
            clock.advance(timedelta(minutes=1))
            await service.sweep()
        finally:
            await wired.aclose()

    assert stack.azurite is not None
    connection = stack.azurite.connection_string
    asyncio.run(scenario())
    capsys.readouterr()
    assert ops_main(["show", "RET-1", "--connection-string", connection]) == 1
    assert "LEDGER_RETENTION" in capsys.readouterr().out
    assert ops_main(["show", "RET-2", "--connection-string", connection]) == 1
    summaries = records_of(caplog, TelemetryEvent.SWEEP_SUMMARY)
    assert [s.expiredRequests for s in summaries] == ["0", "2"]


def test_a_paused_intake_is_reported_older_at_every_sweep(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    """Three requests wait on user-onboard with no trigger to take them: each sweep peeks
    (taking nothing) and reports the oldest one's age from its insertion time."""
    caplog.set_level(logging.INFO, logger="user_onboarding")
    assert stack.azurite is not None
    queue = QueueClient.from_connection_string(stack.azurite.connection_string, QUEUE_REQUESTS)
    config = Settings.from_env(stack.app_environment())
    clock = FakeClock(datetime.now(UTC))

    async def scenario() -> None:
        wired = build_service(config, policy=policy_from(config), clock=clock)
        try:
            await wired.service.sweep()  # nothing waits yet
            for n in range(3):
                queue.send_message(onboard(f"PAUSED-{n}", "jane.doe@contoso.com"))
            for _ in range(2):
                clock.advance(timedelta(minutes=20))
                await wired.service.sweep()
        finally:
            await wired.aclose()

    try:
        asyncio.run(scenario())
        waiting = queue.get_queue_properties().approximate_message_count
    finally:
        queue.clear_messages()
        queue.close()
    backlog = records_of(caplog, TelemetryEvent.INTAKE_BACKLOG)
    ages = [float(r.oldestMessageAgeSeconds) for r in backlog]
    assert ages[0] == 0.0
    assert 20 * 60 - 60 < ages[1] < 20 * 60 + 60
    assert 40 * 60 - 60 < ages[2] < 40 * 60 + 60
    assert [r.approximateMessageCount for r in backlog] == ["0", "3", "3"]
    assert waiting == 3
