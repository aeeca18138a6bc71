"""LEDGER_RETENTION (contract v1.2, guarantee 9) and the intake backlog, as the service uses
them: every way a request ends is indexed at its terminal event, the sweep deletes what is
older than the retention (and only what the ledger shows published), kept messages go with
their request or by their own time, and every sweep reports the age of the oldest waiting
request. Against in-memory fakes; the table adapter itself: tests/integration."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from shared.service import OnboardingService
from shared.service.housekeeping import EXPIRE_PER_SWEEP
from shared.telemetry import TelemetryEvent
from tests.fakes import FakeIntakeQueue, FakeRetention
from tests.unit.test_service import World, jane, request

RETENTION = timedelta(days=90)


class Kept(World):
    """The service with a retention index and an intake watch."""

    def __init__(self, **policy: Any) -> None:
        super().__init__(ledger_retention=RETENTION, **policy)
        self.retention = FakeRetention(self.ledger)
        self.intake = FakeIntakeQueue()
        old = self.service._ctx  # the same fakes, plus the two new ports
        self.service = OnboardingService(
            directory=old.directory,
            pending=old.pending,
            poison=old.poison,
            events=old.events,
            ledger=old.ledger,
            clock=old.clock,
            policy=old.policy,
            intake=self.intake,
            retention=self.retention,
        )

    def status(self, request_id: str) -> Any:
        """What the status query and `ops show` read: the ledger's record."""
        return asyncio.run(self.ledger.read(request_id))


def summaries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if getattr(r, "onboardingEvent", None) == TelemetryEvent.SWEEP_SUMMARY
    ]


def backlogs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if getattr(r, "onboardingEvent", None) == TelemetryEvent.INTAKE_BACKLOG
    ]


def test_a_licensed_request_is_forgotten_once_its_terminal_event_is_older_than_the_retention(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Kept for 90 days to the minute, then gone: the status query answers not found, and
    the sweep summary counts it."""
    caplog.set_level(logging.INFO, logger="user_onboarding")
    world = Kept()
    jane(world)
    assert world.handle(request("HR-1")) == "licensed"
    assert world.retention.requests["HR-1"] == world.clock.now()
    world.sweep_after(RETENTION - timedelta(minutes=1))
    assert world.status("HR-1") is not None
    world.sweep_after(timedelta(minutes=2))
    assert world.status("HR-1") is None
    first, second = summaries(caplog)
    assert first.expiredRequests == "0"  # type: ignore[attr-defined]
    assert second.expiredRequests == "1"  # type: ignore[attr-defined]
    assert int(second.expiredRows) >= 2  # type: ignore[attr-defined]
    assert "expired=1" in second.getMessage()


def test_a_request_still_in_progress_is_never_deleted_however_old() -> None:
    """Retention counts from the terminal event: a request waiting for its user is kept."""
    world = Kept(sync_timeout=timedelta(days=200))
    jane(world, sync_enabled=None)
    assert world.handle(request("HR-2")) == "waiting"
    world.sweep_after(RETENTION + timedelta(days=1))
    assert world.status("HR-2") is not None
    assert "HR-2" not in world.retention.requests


def test_every_kind_of_end_is_indexed_at_its_terminal_event() -> None:
    """licensed, failed (from the sweep), rejected with a requestId, rejected/poison."""
    world = Kept(sync_timeout=timedelta(minutes=5))
    jane(world)
    world.handle(request("LIC"), message_id="q1")
    world.handle(request("FAIL", upn="nobody@contoso.com"), message_id="q2")
    world.handle({"requestId": "BAD", "userPrincipleName": "x@contoso.com"}, message_id="q3")
    world.poison.put(json.dumps(request("POISON", upn="p@contoso.com")))
    world.sweep_after(timedelta(minutes=5))
    assert set(world.retention.requests) == {"LIC", "FAIL", "BAD", "POISON"}
    world.sweep_after(RETENTION + timedelta(minutes=1))
    assert world.ledger.records == {}
    assert world.ledger.set_aside_items_kept == []


def test_a_message_kept_for_a_request_goes_with_that_request() -> None:
    """The poisoned copy of a request is deleted when its request is, not before."""
    world = Kept(poison_hold=timedelta(hours=1))
    jane(world)
    world.poison.put(json.dumps(request("HR-3")))
    world.sweep_after(timedelta(0))  # held, announced blocked
    world.sweep_after(timedelta(hours=2))  # the hold is over: rejected/poison
    (kept,) = world.ledger.set_aside_items_kept
    assert (kept.request_id, kept.status) == ("HR-3", "reported")
    world.sweep_after(RETENTION - timedelta(hours=1))
    assert world.ledger.set_aside_items_kept != []
    world.sweep_after(timedelta(hours=2))
    assert world.ledger.set_aside_items_kept == []
    assert world.status("HR-3") is None


def test_a_kept_message_without_a_request_expires_by_its_own_time_but_not_while_held() -> None:
    """A poisoned body with no requestId is held like any other; once reported it is
    deleted a retention after it was kept, and a held one waits for its report."""
    world = Kept(poison_hold=RETENTION + timedelta(days=10))
    world.poison.put("not json at all")
    world.sweep_after(timedelta(0))
    (held,) = world.ledger.set_aside_items_kept
    assert held.status == "held"
    world.sweep_after(RETENTION + timedelta(days=1))
    assert [i.status for i in world.ledger.set_aside_items_kept] == ["held"]
    world.sweep_after(timedelta(days=10))  # reported now; looked at again a retention later
    assert [i.status for i in world.ledger.set_aside_items_kept] == ["reported"]
    world.sweep_after(RETENTION + timedelta(minutes=1))
    assert world.ledger.set_aside_items_kept == []


def test_an_outcome_the_ledger_does_not_show_published_is_not_deleted() -> None:
    """A crash after publishing and before the ledger was closed: deleting the decision
    would let a replay decide again, so it stays until the replay closes it."""
    world = Kept()
    jane(world)
    world.ledger.crash_on_close = 1
    with pytest.raises(BaseException, match="before the ledger was closed"):
        world.handle(request("HR-4"))
    world.sweep_after(RETENTION + timedelta(days=1))
    assert world.status("HR-4") is not None
    assert world.status("HR-4").decided.event.id == "HR-4:licensed"


def test_after_the_retention_the_same_request_id_is_a_new_request() -> None:
    """Nothing is remembered: a message reusing the requestId is handled anew (its user
    already holds the licenses: already_assigned, no second seat)."""
    world = Kept()
    jane(world)
    world.handle(request("HR-5"), message_id="q1")
    world.sweep_after(RETENTION + timedelta(minutes=1))
    assert world.handle(request("HR-5"), message_id="q2") == "licensed"
    statuses = {lic["status"] for lic in world.events.events[-1].data["licenses"]}
    assert statuses == {"already_assigned"}


def test_at_most_a_batch_of_requests_is_deleted_per_sweep() -> None:
    """A backlog (a shorter retention, old rows) is worked off over several sweeps."""
    world = Kept()
    jane(world)
    for n in range(EXPIRE_PER_SWEEP + 5):
        world.handle(request(f"HR-{n}"), message_id=f"q{n}")
    world.sweep_after(RETENTION + timedelta(minutes=1))
    assert len(world.ledger.records) == 5
    world.sweep_after(timedelta(minutes=5))
    assert world.ledger.records == {}


def test_a_sweep_out_of_budget_leaves_the_retention_for_the_next_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Requests come first; the summary then carries no retention counts."""
    caplog.set_level(logging.INFO, logger="user_onboarding")
    world = Kept(sweep_budget_seconds=0.0)
    jane(world)
    world.handle(request("HR-6"))
    world.sweep_after(RETENTION + timedelta(minutes=1))
    assert world.status("HR-6") is not None
    (summary,) = summaries(caplog)
    assert not hasattr(summary, "expiredRequests")


def test_the_one_time_scan_of_older_rows_is_reported_until_it_is_done(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """legacyRowsIndexed while rows written before the index are being indexed, then not."""
    caplog.set_level(logging.INFO, logger="user_onboarding")
    world = Kept()
    world.retention.legacy_pages = 1
    world.sweep_after(timedelta(minutes=5))
    world.sweep_after(timedelta(minutes=5))
    first, second = summaries(caplog)
    assert first.legacyRowsIndexed == "1000"  # type: ignore[attr-defined]
    assert not hasattr(second, "legacyRowsIndexed")


def test_every_sweep_reports_the_intake_backlog_even_when_nothing_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """intake.backlog with 0 seconds and 0 messages for an empty queue."""
    caplog.set_level(logging.INFO, logger="user_onboarding")
    world = Kept()
    world.sweep_after(timedelta(minutes=5))
    (record,) = backlogs(caplog)
    assert record.oldestMessageAgeSeconds == "0.0"  # type: ignore[attr-defined]
    assert record.approximateMessageCount == "0"  # type: ignore[attr-defined]


def test_a_paused_intake_shows_as_an_age_that_grows_sweep_after_sweep(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nobody takes the messages (intake paused, trigger stopped): each sweep reports the
    oldest one older, which is what the intake-backlog alert fires on."""
    caplog.set_level(logging.INFO, logger="user_onboarding")
    world = Kept()
    world.intake.inserted = [world.clock.now(), world.clock.now() + timedelta(minutes=1)]
    for _ in range(3):
        world.sweep_after(timedelta(minutes=15))
    ages = [float(r.oldestMessageAgeSeconds) for r in backlogs(caplog)]  # type: ignore[attr-defined]
    assert ages == [900.0, 1800.0, 2700.0]
    assert {r.approximateMessageCount for r in backlogs(caplog)} == {"2"}  # type: ignore[attr-defined]


def test_a_storage_outage_while_peeking_the_intake_stops_the_sweep_like_any_other() -> None:
    """Only an outage stops a sweep; what it would have received comes back."""
    world = Kept()
    world.intake.fail_next = 1
    with pytest.raises(Exception, match="storage is down"):
        world.sweep_after(timedelta(minutes=5))


def test_without_the_two_ports_the_sweep_works_as_before() -> None:
    """A harness that brings its own queues and ledger gets neither (no record, nothing
    deleted)."""
    world = World(ledger_retention=RETENTION)
    jane(world)
    world.handle(request("HR-7"))
    world.sweep_after(RETENTION + timedelta(days=1))
    assert "HR-7" in world.ledger.records
