"""Every log record about a request carries its requestId (and the queue message id, the
outcome, the reason code) as fields, which Application Insights stores as
customDimensions; the alerts and the workbook query those names."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from shared.domain.errors import GraphCall
from shared.telemetry import TelemetryEvent
from tests.unit.test_service import World, jane, request

Records = list[logging.LogRecord]


def events_of(records: Captured, event: TelemetryEvent) -> Records:
    return [r for r in records if getattr(r, "onboardingEvent", None) == event]


class Captured:
    """The records of the test's call phase (caplog keeps one list per phase)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog

    def __iter__(self) -> Iterator[logging.LogRecord]:
        return iter(self._caplog.records)


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> Captured:
    caplog.set_level(logging.INFO, logger="user_onboarding")
    return Captured(caplog)


def test_a_licensed_request_is_one_outcome_record_with_its_ids(records: Captured) -> None:
    """requestId, queueMessageId, outcome and trigger, as strings."""
    world = World()
    jane(world)
    world.handle(request(), message_id="q1")
    (record,) = events_of(records, TelemetryEvent.REQUEST_OUTCOME)
    assert record.requestId == "HR-1"  # type: ignore[attr-defined]
    assert record.queueMessageId == "q1"  # type: ignore[attr-defined]
    assert record.outcome == "licensed"  # type: ignore[attr-defined]
    assert record.trigger == "queue"  # type: ignore[attr-defined]
    assert not hasattr(record, "reasonCode")


def test_a_failure_carries_its_reason_code_and_the_sweep_its_summary(records: Captured) -> None:
    """failed/sync_timeout from the sweep; one sweep.summary with budget and pending."""
    world = World(sync_timeout=timedelta(minutes=5))
    world.handle(request(), message_id="q1")
    world.sweep_after(timedelta(minutes=5))
    outcomes = events_of(records, TelemetryEvent.REQUEST_OUTCOME)
    assert [(r.outcome, getattr(r, "reasonCode", None), r.trigger) for r in outcomes] == [  # type: ignore[attr-defined]
        ("waiting", None, "queue"),
        ("failed", "sync_timeout", "sweep"),
    ]
    (summary,) = events_of(records, TelemetryEvent.SWEEP_SUMMARY)
    assert summary.sweepBudgetSeconds == "240.0"  # type: ignore[attr-defined]
    assert summary.stoppedByBudget == "false"  # type: ignore[attr-defined]
    assert summary.pendingCount == "0"  # type: ignore[attr-defined]
    float(summary.sweepSeconds)  # type: ignore[attr-defined]


def test_a_missing_permission_is_an_error_record_naming_it(records: Captured) -> None:
    """graph.access_denied at ERROR with the call and the permission."""
    world = World()
    jane(world)
    world.directory.denied = {GraphCall.ASSIGN_LICENSE}
    world.handle(request())
    (record,) = events_of(records, TelemetryEvent.GRAPH_ACCESS_DENIED)
    assert record.levelno == logging.ERROR
    assert (record.requestId, record.call, record.permission, record.status) == (  # type: ignore[attr-defined]
        "HR-1",
        "assignLicense",
        "LicenseAssignment.ReadWrite.All",
        "403",
    )


def test_a_poisoned_message_is_held_then_reported_with_its_ids(records: Captured) -> None:
    """poison.held at once, poison.reported when the hold is over."""
    world = World(poison_hold=timedelta(hours=1))
    world.poison.put(json.dumps(request("HR-9")))
    world.sweep_after(timedelta(0))
    (held,) = events_of(records, TelemetryEvent.POISON_HELD)
    assert held.requestId == "HR-9"  # type: ignore[attr-defined]
    assert [e.id for e in world.events.events] == ["HR-9:blocked"]  # contract v1.2
    world.sweep_after(timedelta(hours=1))
    (reported,) = events_of(records, TelemetryEvent.POISON_REPORTED)
    assert reported.requestId == "HR-9"  # type: ignore[attr-defined]
    assert [e.id for e in world.events.events] == ["HR-9:blocked", "HR-9:rejected"]
