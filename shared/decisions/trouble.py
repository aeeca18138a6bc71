"""Everything that can stand between a request and its licenses once Graph is asked:
transient trouble, missing permissions, no seats, and the deadline.

Graph is eventually consistent and throttles the app as a whole (docs/graph-facts.md,
"Eventual consistency"): throttling, outages, and a 404 on a write to a user a lookup has
just returned are waited out until the deadline. 401/403 block the request, loudly, until
an administrator grants the permission. The deadline bounds the rechecks, never the first
check (contract v1.2, "The first check").
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

from shared.decisions.outcomes import Fail, RefreshCatalog, Wait
from shared.decisions.rules import Rules
from shared.domain.codes import Announcement, FailureCode, LastSeen
from shared.domain.errors import PERMISSIONS, GraphCall, GraphError, GraphErrorKind
from shared.domain.events import Reason
from shared.domain.state import LastError, PendingState
from shared.domain.tenant import DirectoryUser
from shared.domain.times import format_time

# assignLicense's permanent refusals, by what Graph's message said.
_REFUSALS: Final = {
    GraphErrorKind.MUTUALLY_EXCLUSIVE: FailureCode.MUTUALLY_EXCLUSIVE_PLANS,
    GraphErrorKind.MISSING_PREREQUISITE: FailureCode.MISSING_PREREQUISITE,
    GraphErrorKind.UNKNOWN_SKU: FailureCode.UNKNOWN_SKU,
    GraphErrorKind.REJECTED: FailureCode.GRAPH_REJECTED,
}


def after_graph_error(
    state: PendingState,
    error: GraphError,
    now: datetime,
    rules: Rules,
    *,
    user: DirectoryUser | None = None,
    wrote_usage_location: bool = False,
) -> Wait | Fail:
    """Every Graph failure, whatever the call: wait, block or fail. An "invalid usage
    location" answer is replication lag when a usage location exists (the app wrote one,
    or the user has one); only without any is it final."""
    if wrote_usage_location:
        state = replace(state, usage_location_written=True)
    if error.kind != GraphErrorKind.THROTTLED:  # Graph answered, or did not answer at all
        state = replace(state, first_check_done=True)
    match error.kind:
        case GraphErrorKind.THROTTLED | GraphErrorKind.UNAVAILABLE | GraphErrorKind.NOT_FOUND:
            return _retry_later(state, error, now, rules)
        case GraphErrorKind.ACCESS_DENIED:
            return _access_denied(state, error, now, rules)
        case GraphErrorKind.USAGE_LOCATION_INVALID:
            if state.usage_location_written or (user is not None and user.usage_location):
                return _retry_later(state, error, now, rules)
            return _refused(FailureCode.USAGE_LOCATION_MISSING, error)
        case GraphErrorKind.NO_SEATS:
            return after_no_seats(state, error.graph_message, now, rules)
        case kind:
            return _refused(_REFUSALS[kind], error)


def after_write_error(
    state: PendingState,
    error: GraphError,
    now: datetime,
    rules: Rules,
    *,
    user: DirectoryUser,
    wrote_usage_location: bool,
    refreshed: bool,
) -> Wait | Fail | RefreshCatalog:
    """A write Graph refused: an unknown skuId may be a stale catalog (one refresh), the
    rest is `after_graph_error`'s."""
    if error.kind == GraphErrorKind.UNKNOWN_SKU and not refreshed:
        return RefreshCatalog()
    return after_graph_error(
        state, error, now, rules, user=user, wrote_usage_location=wrote_usage_location
    )


def _refused(code: FailureCode, error: GraphError) -> Fail:
    return Fail(Reason(code, error.graph_message), {"graphError": LastError.of(error).to_json()})


def _retry_later(
    state: PendingState, error: GraphError, now: datetime, rules: Rules
) -> Wait | Fail:
    """Transient trouble: try again later (never before Graph's Retry-After), until the
    deadline. While Graph has asked the app to wait before this request was ever checked,
    it waits for Graph's Retry-After, whatever its deadline.

    Throttling is not sync: a request Graph throttled (or the app did not send because its
    turn at Graph was too far away) comes back when Graph allows it, its Retry-After, not
    after the recheck backoff meant for waiting on Active Directory."""
    state = replace(state, last_error=LastError.of(error))
    if not state.first_check_done:
        assert error.kind == GraphErrorKind.THROTTLED  # any other answer completes it
        wait = timedelta(seconds=error.retry_after) if error.retry_after else rules.backoff.initial
        if now + wait >= state.deadline:
            return Wait(state, now + wait)
    if now >= state.deadline:
        return at_deadline(state)
    if error.kind == GraphErrorKind.THROTTLED and error.retry_after is not None:
        return Wait(state, min(now + timedelta(seconds=error.retry_after), state.deadline))
    next_check = rules.next_check(state, now)
    if error.retry_after:
        next_check = min(
            max(next_check, now + timedelta(seconds=error.retry_after)), state.deadline
        )
    return Wait(state, next_check)


def _access_denied(
    state: PendingState, error: GraphError, now: datetime, rules: Rules
) -> Wait | Fail:
    """401/403: `blocked` once (graph_access_denied), retried until the deadline."""
    state = replace(state, last_error=LastError.of(error))
    if now >= state.deadline:
        return at_deadline(state)
    reason = Reason(FailureCode.GRAPH_ACCESS_DENIED, access_denied_message(error))
    announce = None if state.blocked_sent else Announcement.BLOCKED
    return Wait(
        replace(state, blocked_sent=True),
        rules.next_check(state, now),
        announce=announce,
        reason=reason,
        details=_permission_details(state.last_error),
    )


def access_denied_message(error: GraphError | LastError) -> str:
    """What an administrator must do, in one sentence."""
    call = error.call
    if error.status == 401:
        return (
            f"Graph refused the app's token on {call} (401 {error.code}); check the app's "
            f"identity and that it holds {call.permission}"
        )
    message = (
        f"Graph refused {call} ({error.status} {error.code}): grant the app's identity the "
        f"application permission {call.permission}"
    )
    if call.teams_budget and call.permission != PERMISSIONS[GraphCall.ASSIGN_NUMBER]:
        # The least privileged for a read; the step goes on to assign the number.
        message += f" (the Teams Phone step also needs {PERMISSIONS[GraphCall.ASSIGN_NUMBER]})"
    return message


def _permission_details(error: LastError | None) -> dict[str, Any]:
    """`data.permission` for a 403: the permission that covers the refused call."""
    if error is None or error.status != 403:
        return {}
    return {"permission": error.call.permission}


def after_no_seats(state: PendingState, message: str, now: datetime, rules: Rules) -> Wait | Fail:
    """No free seat for a SKU: `blocked` once, retried until the deadline, then `no_seats`."""
    reason = Reason(FailureCode.NO_SEATS, message)
    state = replace(state, first_check_done=True)
    if now >= state.deadline:
        return Fail(reason)
    announce = None if state.blocked_sent else Announcement.BLOCKED
    blocked = replace(state, last_seen=LastSeen.SYNCED, blocked_sent=True, last_error=None)
    return Wait(blocked, rules.next_check(state, now), announce=announce, reason=reason)


def at_deadline(state: PendingState) -> Fail:
    """The deadline has passed: say honestly why the request could not be done.

    - `graph_access_denied`: the last attempt was refused with 401/403;
    - `graph_unavailable`: the user was seen synced, but Graph kept failing (throttling,
      outages, replication lag) until the deadline;
    - `sync_timeout`: the user was never seen synced (`lastSeen`: not_found, not_synced,
      or unreachable when a lookup was sent and Graph never answered it).
    """
    deadline = format_time(state.deadline)
    error = state.last_error
    details: dict[str, Any] = {"lastError": error.to_json()} if error is not None else {}
    if error is not None and error.kind == GraphErrorKind.ACCESS_DENIED:
        message = f"the deadline {deadline} passed while {access_denied_message(error)}"
        return Fail(
            Reason(FailureCode.GRAPH_ACCESS_DENIED, message),
            {**details, **_permission_details(error)},
        )
    if state.seen_synced:
        message = f"the user is synced, but Graph did not complete the licensing by {deadline}"
        if error is not None:
            message += f" (last answer: {error.status or 'no answer'} {error.code} on {error.call})"
        return Fail(Reason(FailureCode.GRAPH_UNAVAILABLE, message), details)
    last_seen = state.last_seen or LastSeen.UNREACHABLE
    if last_seen == LastSeen.UNREACHABLE:
        message = f"Graph never answered a lookup of the user before the deadline {deadline}"
    else:
        message = f"the user was not synced from Active Directory by {deadline}"
    return Fail(Reason(FailureCode.SYNC_TIMEOUT, message), {"lastSeen": last_seen, **details})
