"""Contract v1.2, "The first check": a deadline bounds the rechecks, never the first check."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from shared.decisions import Fail, License, Wait, after_graph_error, after_lookup
from shared.domain import pending
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.domain.tenant import Found, LookupFailed, NotFound
from tests.fakes import T0
from tests.unit.test_workflow import RULES, state, user

PAST = T0 + timedelta(hours=2)  # the state's deadline is T0 + 1 h


def throttled(
    retry_after: float | None = 8, *, status: int = 0, call: GraphCall = GraphCall.LOOKUP
) -> GraphError:
    """What a call gets while Graph has asked the app to wait: not sent (status 0) or 429."""
    return GraphError(
        "not sent: Graph asked this app to wait" if status == 0 else "Please retry again later.",
        kind=GraphErrorKind.THROTTLED,
        call=call,
        status=status,
        code="TooManyRequests",
        retry_after=retry_after,
    )


def test_a_past_deadline_request_not_looked_up_because_graph_paused_the_app_waits() -> None:
    """No sync_timeout without a lookup: it waits for Graph's Retry-After instead."""
    decision = after_lookup(state(), LookupFailed(throttled(8)), PAST, RULES)
    assert isinstance(decision, Wait)
    assert decision.next_check == PAST + timedelta(seconds=8)
    assert decision.announce is None
    assert not decision.state.first_check_done


def test_a_past_deadline_request_whose_first_lookup_is_answered_429_waits_too() -> None:
    """A 429 tells nothing about the user: the first check is still to be made."""
    decision = after_lookup(state(), LookupFailed(throttled(3, status=429)), PAST, RULES)
    assert isinstance(decision, Wait)
    assert decision.next_check == PAST + timedelta(seconds=3)


def test_a_throttled_first_check_without_retry_after_waits_the_initial_backoff() -> None:
    """No Retry-After: the first recheck delay, never a failure."""
    decision = after_lookup(state(), LookupFailed(throttled(None)), PAST, RULES)
    assert isinstance(decision, Wait)
    assert decision.next_check == PAST + RULES.backoff.initial


def test_a_first_check_that_cannot_wait_its_retry_after_before_the_deadline_goes_past_it() -> None:
    """The wait is Graph's Retry-After even when it ends after the deadline."""
    near = T0 + timedelta(minutes=59, seconds=58)
    decision = after_lookup(state(), LookupFailed(throttled(8)), near, RULES)
    assert isinstance(decision, Wait)
    assert decision.next_check == near + timedelta(seconds=8)


def test_a_past_deadline_never_synced_user_fails_with_what_the_lookup_saw() -> None:
    """sync_timeout with lastSeen not_found: the check was made, and it is the last one."""
    decision = after_lookup(state(), NotFound(), PAST, RULES)
    assert isinstance(decision, Fail)
    assert decision.reason.code == "sync_timeout"
    assert decision.details["lastSeen"] == "not_found"


def test_a_past_deadline_lookup_graph_did_not_answer_is_unreachable() -> None:
    """A lookup sent and not answered (a 503) is a check: lastSeen unreachable."""
    down = GraphError("down", kind=GraphErrorKind.UNAVAILABLE, call=GraphCall.LOOKUP, status=503)
    decision = after_lookup(state(), LookupFailed(down), PAST, RULES)
    assert isinstance(decision, Fail)
    assert decision.details["lastSeen"] == "unreachable"


def test_after_the_first_check_the_deadline_bounds_throttled_rechecks() -> None:
    """Checked once (not synced), then Graph pauses the app past the deadline: sync_timeout
    with the lastSeen of the check actually made."""
    waiting = after_lookup(state(), Found(user(sync_enabled=None)), T0, RULES)
    assert isinstance(waiting, Wait)
    assert waiting.state.first_check_done
    decision = after_lookup(waiting.state, LookupFailed(throttled(8)), PAST, RULES)
    assert isinstance(decision, Fail)
    assert decision.reason.code == "sync_timeout"
    assert decision.details["lastSeen"] == "not_synced"


def test_a_past_deadline_synced_user_whose_first_write_is_throttled_waits_for_graph() -> None:
    """The first check of a synced user includes its licensing: a throttled write waits."""
    decision = after_lookup(state(), Found(user()), PAST, RULES)
    assert isinstance(decision, License)
    write = throttled(5, status=429, call=GraphCall.ASSIGN_LICENSE)
    waited = after_graph_error(decision.state, write, PAST, RULES, user=decision.user)
    assert isinstance(waited, Wait)
    assert waited.next_check == PAST + timedelta(seconds=5)


def test_a_synced_users_write_answered_by_an_outage_completes_the_first_check() -> None:
    """A 503 on the write is an answer about this request: graph_unavailable past the deadline."""
    decision = after_lookup(state(), Found(user()), PAST, RULES)
    assert isinstance(decision, License)
    down = GraphError(
        "down", kind=GraphErrorKind.UNAVAILABLE, call=GraphCall.ASSIGN_LICENSE, status=503
    )
    failed = after_graph_error(decision.state, down, PAST, RULES, user=decision.user)
    assert isinstance(failed, Fail)
    assert failed.reason.code == "graph_unavailable"


def test_the_pending_state_keeps_whether_the_first_check_was_made() -> None:
    """Round trip; a state parked before v1.2 counts as checked once it has a check."""
    done = replace(state(), first_check_done=True, checks=1)
    assert pending.from_message(pending.to_message(done)).first_check_done
    old = json.loads(pending.to_message(done))
    del old["firstCheckDone"]
    assert pending.from_message(json.dumps(old)).first_check_done
    old["checks"] = 0
    assert not pending.from_message(json.dumps(old)).first_check_done
