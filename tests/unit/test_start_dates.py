"""Start dates (contract v1.1): nothing is looked up or assigned before the start window
(startDate - LICENSE_LEAD_TIME); a long wait is a chain of hops of at most 7 days."""

from __future__ import annotations

import inspect
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.decisions import Backoff, Rules, admit, before_check
from shared.domain.errors import InvalidRequest, SettingsError
from shared.domain.requests import parse_request
from shared.settings import Settings
from tests.fakes import T0
from tests.unit.test_service import World, jane, request

DAY = timedelta(days=1)


def admitted(**fields: Any) -> Any:
    rules = Rules(Backoff(timedelta(minutes=5), timedelta(minutes=30)), lead_time=DAY)
    return admit(parse_request(json.dumps(request(**fields))), T0, rules)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T08:30:00+02:00", datetime(2026, 12, 1, 6, 30, tzinfo=UTC)),
        ("2026-12-01T08:30:00Z", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
    ],
)
def test_a_start_date_is_a_date_at_midnight_utc_or_a_timestamp(text: str, moment: datetime) -> None:
    """YYYY-MM-DD reads as 00:00 UTC."""
    assert parse_request(json.dumps(request(startDate=text))).start_date == moment


@pytest.mark.parametrize("text", ["2026-13-01", "01/12/2026", "2026-12-01T08:30:00", "tomorrow"])
def test_a_malformed_start_date_is_rejected_by_field(text: str) -> None:
    """A timestamp must carry its offset."""
    with pytest.raises(InvalidRequest) as caught:
        parse_request(json.dumps(request(startDate=text)))
    assert [e.field for e in caught.value.errors] == ["startDate"]


def test_a_start_date_more_than_400_days_ahead_is_rejected() -> None:
    """The contract's bound."""
    with pytest.raises(InvalidRequest) as caught:
        admitted(startDate="2027-12-31")
    assert [e.field for e in caught.value.errors] == ["startDate"]


def test_a_sync_deadline_before_the_start_window_is_rejected() -> None:
    """Nothing would be done before the window, so such a deadline cannot be met."""
    with pytest.raises(InvalidRequest) as caught:
        admitted(startDate="2026-12-10", syncDeadline="2026-12-08T00:00:00Z")
    (error,) = caught.value.errors
    assert error.field == "syncDeadline"
    assert "2026-12-09T00:00:00Z" in error.problem


def test_the_window_opens_a_lead_time_before_the_start_and_the_deadline_counts_from_it() -> None:
    """startDate 10 Dec, lead 1 day: window 9 Dec 00:00, deadline 10 Dec 00:00 (+24 h)."""
    state = admitted(startDate="2026-12-10")
    assert state.not_before == datetime(2026, 12, 9, tzinfo=UTC)
    assert state.deadline == datetime(2026, 12, 10, tzinfo=UTC)


def test_a_start_date_already_past_behaves_as_if_absent() -> None:
    """The window is open: work starts now, the deadline counts from receipt."""
    state = admitted(startDate="2026-11-01")
    assert state.not_before is None
    assert state.deadline == T0 + timedelta(hours=24)


@pytest.mark.parametrize(
    ("now", "hop"),
    [
        (T0, T0 + timedelta(days=7) - timedelta(minutes=1)),  # 30 days ahead: a 7-day hop
        (datetime(2026, 12, 22, 9, tzinfo=UTC), datetime(2026, 12, 23, tzinfo=UTC)),  # last hop
    ],
)
def test_the_wait_for_the_window_goes_in_hops_of_at_most_seven_days(
    now: datetime, hop: datetime
) -> None:
    """A queue message hides for at most 7 days."""
    state = admitted(startDate="2026-12-24")
    waiting = before_check(state, now)
    assert waiting is not None
    assert waiting.next_check == hop
    assert before_check(state, datetime(2026, 12, 23, tzinfo=UTC)) is None


def test_a_lead_time_setting_of_zero_is_allowed_and_a_malformed_one_is_not() -> None:
    """PT0S: the window is the start date itself."""
    base = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    assert Settings.from_env({**base, "LICENSE_LEAD_TIME": "PT0S"}).license_lead_time == timedelta(
        0
    )
    assert Settings.from_env(base).license_lead_time == DAY
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**base, "LICENSE_LEAD_TIME": "one day"})
    assert caught.value.setting == "LICENSE_LEAD_TIME"


def count_calls(world: World) -> Counter[str]:
    """Count every call the service makes on its storage ports (each port method is one
    storage request, except `ledger.note` of a parked request: two, the row and the
    index)."""
    calls: Counter[str] = Counter()
    for name in ("pending", "poison", "events", "ledger"):
        port = getattr(world, name)
        for attribute in dir(port):
            method = getattr(port, attribute)
            if attribute.startswith("_") or not inspect.iscoroutinefunction(method):
                continue

            def counted(
                *args: Any, _m: Any = method, _n: str = f"{name}.{attribute}", **kw: Any
            ) -> Any:
                calls[_n] += 1
                return _m(*args, **kw)

            setattr(port, attribute, counted)
    return calls


def test_a_request_thirty_days_ahead_costs_no_graph_call_before_its_window() -> None:
    """scheduled once, four cheap hops, then licensed like a fresh request; the storage
    and Graph calls before the window, counted."""
    world = World(license_lead_time=DAY)
    jane(world)
    calls = count_calls(world)
    start = T0 + timedelta(days=30)
    assert world.handle(request(startDate=start.date().isoformat())) == "scheduled"
    scheduled = world.data("scheduled")
    assert scheduled["notBefore"] == "2026-12-23T00:00:00Z"
    assert scheduled["deadline"] == "2026-12-23T02:00:00Z"  # window + SYNC_TIMEOUT (2 h here)
    # Intake: the ledger row, the scheduled event, the parked message, its progress note.
    assert dict(calls) == {
        "ledger.open": 1,
        "events.publish": 1,
        "pending.park": 1,
        "ledger.note": 1,
    }
    calls.clear()
    hops = 0
    while world.pending.stored[0].visible_at < datetime(2026, 12, 23, tzinfo=UTC):
        world.sweep_after(world.pending.stored[0].visible_at - world.clock.now())
        hops += 1
    assert world.directory.lookup_calls == []
    assert world.directory.writes == []
    assert hops == 4
    # Each hop's sweep: for this request, one rewrite of the parked message and its
    # progress note; for the sweep, whatever is due: a receive of the poison queue, the
    # held poisoned messages, two receives of the pending queue (the second finds it
    # empty) and the report's count of parked requests.
    assert dict(calls) == {
        "poison.receive": hops,
        "ledger.set_aside_items": hops,
        "pending.receive_due": 2 * hops,
        "pending.reschedule": hops,
        "ledger.note": hops,
        "ledger.parked": hops,
    }
    assert [e.id for e in world.events.events] == ["HR-1:scheduled"]
    world.sweep_after(world.pending.stored[0].visible_at - world.clock.now())
    assert world.events.terminal_ids() == {"HR-1:licensed"}
    assert world.directory.lookup_calls == [1]
