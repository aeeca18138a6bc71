"""Guarantee 9 in the logs: the app, wired from its settings on the local stack (msgraph-sdk
over httpx to the Graph emulator, Azurite), handles normal and hostile requests, Graph
errors that echo a UPN or a distinguished name, a forced sync that fails on a DN, a
poisoned message, and bugs whose exception text holds a request's identifiers; no log
record of any logger (its message, its fields, its exception) then holds a UPN,
employeeId, immutableId or distinguished name. docs/operations.md lists the records and
the identifiers each carries: requestIds and queue message ids, never personal data."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from azure.storage.queue import QueueClient

from local_stack.stack import LocalStack
from shared import telemetry
from shared.bootstrap import build_service, policy_from
from shared.names import QUEUE_PENDING, QUEUE_POISON
from shared.service import intake
from shared.settings import Settings
from tests.fakes import FakeClock

pytestmark = pytest.mark.stack
SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"

JANE = "jane.doe@contoso.com"
LEE = ("lee.emp@contoso.com", "000777")
OBRIEN = "o'brien@contoso.com"
SAM = "sam.late@contoso.com"
NOBODY_DN = "CN=Nobody Here,OU=Staff,DC=contoso,DC=com"
POISONED = {
    "requestId": "LOG-POISON",
    "userPrincipalName": "poisoned.person@contoso.com",
    "employeeId": "E-998877",
    "onPremisesImmutableId": "AAECAwQFBgcICQoLDA0ODw==",
    "onPremisesDistinguishedName": "CN=Poisoned Person,OU=Staff,DC=contoso,DC=com",
}
BUGGY = {
    "requestId": "LOG-BUG",
    "userPrincipalName": "bug.victim@contoso.com",
    "employeeId": "555444",
}
PERSONAL = {
    JANE,
    *LEE,
    OBRIEN,
    SAM,
    NOBODY_DN,
    "Nobody Here",
    "nobody.here@contoso.com",
    "hostile.sender@contoso.com",
    "Poisoned Person",
    *[v for k, v in POISONED.items() if k != "requestId"],
    *[v for k, v in BUGGY.items() if k != "requestId"],
}
# What every LogRecord has; the rest are the fields a record carries (customDimensions).
STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class Everything(logging.Handler):
    """Every record that reaches the root logger, as the Functions worker forwards them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self, record: logging.LogRecord) -> list[str]:
        fields = [str(v) for k, v in vars(record).items() if k not in STANDARD]
        exception = [self.format(record)] if record.exc_info else []
        return [record.getMessage(), *fields, *exception]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = Path(tmp_path_factory.mktemp("logs-personal"))
    with LocalStack(state, SAMPLES / "directory.json") as running:
        yield running


@pytest.fixture
def captured() -> Iterator[Everything]:
    """The app's own logger at DEBUG, every other one at INFO (the host's default level),
    after the app's start-up set its loggers (`telemetry.configure`, as function_app.py)."""
    root, ours = logging.getLogger(), logging.getLogger(telemetry.LOGGER)
    saved = (root.level, ours.level)
    telemetry.configure({})
    handler = Everything()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    ours.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(saved[0])
    ours.setLevel(saved[1])


def body(request_id: str, **fields: Any) -> str:
    return json.dumps(
        {"requestId": request_id, "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}], **fields}
    )


class BrokenNotes:
    """The ledger, except that noting progress of LOG-BUG fails with a message that holds
    the request's identifiers (a bug, as the sweep meets one)."""

    def __init__(self, ledger: Any) -> None:
        self._ledger = ledger
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    async def note(self, request_id: str, progress: Any) -> None:
        if self.armed and request_id == "LOG-BUG":
            raise ValueError(f"cannot note {BUGGY['userPrincipalName']} ({BUGGY['employeeId']})")
        await self._ledger.note(request_id, progress)


def test_no_log_record_holds_a_persons_identifiers(
    stack: LocalStack, captured: Everything, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Normal, hostile and failing requests through intake and the sweep; then every
    record's message, fields and exception text are free of every identifier used, in
    plain, percent-encoded and OData-quoted form."""
    assert stack.azurite is not None
    assert stack.graph is not None
    graph = stack.graph
    connection = stack.azurite.connection_string
    config = Settings.from_env(
        {
            **stack.app_environment(),
            "SYNC_TIMEOUT": "PT1H",
            "POISON_HOLD": "PT0S",
            "RECHECK_INITIAL_DELAY": "PT1S",
            "RECHECK_MAX_DELAY": "PT2S",
        }
    )
    clock = FakeClock(datetime.now(UTC))
    broken: list[BrokenNotes] = []

    def decorate(name: str, port: Any) -> Any:
        if name == "ledger":
            broken.append(BrokenNotes(port))
            return broken[-1]
        return port

    # Graph's own error messages quote what it was asked (a UPN, a filter).
    graph.add_fault(
        path="/users/jane", status=503, count=1, message=f"Backend unavailable for '{JANE}'."
    )
    graph.add_fault(
        path="assignLicense",
        status=403,
        count=1,
        code="Authorization_RequestDenied",
        message=f"Insufficient privileges to update '{OBRIEN}'.",
    )
    real_parse = intake.parse_request

    def parse_with_a_bug(raw: bytes | str) -> Any:
        if "hostile.sender" in str(raw):
            raise ValueError(f"could not read {raw!r}")
        return real_parse(raw)

    monkeypatch.setattr(intake, "parse_request", parse_with_a_bug)

    async def scenario() -> None:
        wired = build_service(config, policy=policy_from(config), clock=clock, decorate=decorate)
        service = wired.service
        try:
            await service.handle_request(body("LOG-1", userPrincipalName=JANE), "m1")
            await service.handle_request(body("LOG-2", employeeId=LEE[1]), "m2")
            await service.handle_request(body("LOG-3", userPrincipalName=OBRIEN), "m3")
            await service.handle_request(
                body(
                    "LOG-4",
                    userPrincipalName="nobody.here@contoso.com",
                    onPremisesDistinguishedName=NOBODY_DN,
                ),
                "m4",
            )
            await service.handle_request(
                json.dumps({"requestId": "LOG-5", "userPrincipleName": JANE}), "m5"
            )
            await service.handle_request(
                json.dumps({"requestId": "LOG-6", "employeeId": "0' or 1 eq 1"}), "m6"
            )
            await service.handle_request(
                body("LOG-7", userPrincipalName="hostile.sender@contoso.com"), "m7"
            )
            await service.handle_request(body("LOG-BUG", **BUGGY), "m8")
            await service.handle_request(body("LOG-8", userPrincipalName=SAM), "m9")
            for queue, text in (
                (QUEUE_POISON, json.dumps(POISONED)),
                (QUEUE_PENDING, json.dumps({"v": 99, "request": POISONED})),
            ):
                client = QueueClient.from_connection_string(connection, queue)
                client.send_message(text)
                client.close()
            broken[0].armed = True
            clock.advance(timedelta(minutes=10))
            await asyncio.sleep(1.5)  # parked messages are hidden 1 s (Azurite's own clock)
            await service.sweep()
        finally:
            await wired.aclose()

    asyncio.run(scenario())
    records = captured.records
    events = {getattr(r, "onboardingEvent", None) for r in records}
    assert {
        "graph.access_denied",
        "message.set_aside",
        "poison.reported",
        "sweep.summary",
    } <= events
    messages = [r.getMessage() for r in records]
    assert any("retrying" in m for m in messages)  # the 503 was retried inline
    assert any(m.startswith("forced sync for request LOG-4: failed") for m in messages)
    assert any("could not be read: ValueError" in m for m in messages)  # the intake bug
    assert any(getattr(r, "stack", "") for r in records)
    forms = {f for v in PERSONAL for f in (v, quote(v, safe=""), v.replace("'", "''"))}
    leaks = [
        (record.name, record.getMessage()[:200], form)
        for record in records
        for text in captured.texts(record)
        for form in forms
        if form in text
    ]
    assert leaks == []
