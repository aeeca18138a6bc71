"""What `python -m ops show` prints for a request record (pure: no storage)."""

from __future__ import annotations

from datetime import UTC, datetime

from ops.view import RequestView
from shared.domain.codes import EventType
from shared.domain.events import Event
from shared.domain.records import Decided, Progress, RequestRecord

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
REFUSED = {
    "status": 403,
    "code": "Authorization_RequestDenied",
    "call": "assignLicense",
    "message": "Insufficient privileges to complete the operation.",
}


def record(decided_word: str | None) -> RequestRecord:
    progress = Progress("blocked", parked=True, deadline=NOW, last_error=REFUSED)
    decided = None
    if decided_word is not None:
        (kind,) = [t for t in EventType if t.word == decided_word]
        decided = Decided(Event(kind, f"HR-1:{decided_word}", NOW, {"requestId": "HR-1"}), "m1")
    return RequestRecord("HR-1", "m1", NOW, progress, decided)


def test_a_blocked_request_shows_the_error_it_is_blocked_on() -> None:
    view = RequestView("HR-1", record(None), [], NOW)
    assert view.to_json()["lastError"] == REFUSED
    assert "lastError    403 Authorization_RequestDenied on assignLicense" in view.text()


def test_a_request_licensed_after_a_grant_shows_no_stale_error() -> None:
    """The 403 it was blocked on before the grant is history, not a problem to chase."""
    view = RequestView("HR-1", record("licensed"), [], NOW)
    assert view.to_json()["lastError"] is None
    assert "lastError" not in view.text()


def test_a_failed_request_keeps_its_last_error() -> None:
    view = RequestView("HR-1", record("failed"), [], NOW)
    assert view.to_json()["lastError"] == REFUSED
