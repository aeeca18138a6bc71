"""How the Teams Phone step waits, blocks and gives up (contract v1.2, "Teams Phone"): the
step has its own deadline (`TEAMS_READY_TIMEOUT` from the moment every license was on),
announces `provisioning` once when it has to wait, `blocked` once per request (with the
first reason: `sfb_onprem_user`, or `graph_access_denied` for a 401/403), and every
failure of the step lists the licenses, which stay on the user.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared.decisions.outcomes import Fail, Wait
from shared.decisions.rules import Rules
from shared.decisions.trouble import access_denied_message
from shared.domain.codes import Announcement, BlockedCode, FailureCode, TeamsSeen
from shared.domain.errors import GraphError, GraphErrorKind
from shared.domain.events import Reason
from shared.domain.state import LastError, PendingState, TeamsProgress
from shared.domain.times import format_time


def progress(state: PendingState) -> TeamsProgress:
    """The step's progress (the step has begun)."""
    assert state.teams is not None
    return state.teams


def checked(state: PendingState) -> PendingState:
    """One more look at Teams' readiness: the backoff counts those (not the quick looks at
    an order)."""
    teams = progress(state)
    return replace(state, teams=replace(teams, checks=teams.checks + 1))


def seen(state: PendingState, what: TeamsSeen | None) -> PendingState:
    """What Teams said (None: ready), Graph having answered."""
    return replace(state, teams=replace(progress(state), last_seen=what), last_error=None)


def later(state: PendingState, now: datetime, rules: Rules) -> datetime:
    """The usual backoff after the step's checks so far, never past its deadline."""
    teams = progress(state)
    return min(now + rules.backoff.delay(max(teams.checks, 1)), teams.deadline)


def soon(state: PendingState, now: datetime, rules: Rules) -> datetime:
    """A quick look again (an order to send, an order running): within the first backoff
    step and the deadline."""
    step = min(rules.teams_recheck, rules.backoff.delay(1))
    return min(now + step, progress(state).deadline)


def wait(
    state: PendingState,
    next_check: datetime,
    now: datetime,
    *,
    blocked_by: Reason | None = None,
    details: dict[str, Any] | None = None,
) -> Wait | Fail:
    """Wait for Teams until `next_check`, or give up at the step's deadline. `provisioning`
    is announced at the step's first wait; `blocked_by` is announced once per request."""
    if now >= progress(state).deadline:
        return give_up(state)
    announce: list[Announcement] = []
    if not state.provisioning_sent:
        announce.append(Announcement.PROVISIONING)
    if blocked_by is not None and not state.blocked_sent:
        announce.append(Announcement.BLOCKED)
    state = replace(
        state,
        provisioning_sent=True,
        blocked_sent=state.blocked_sent or blocked_by is not None,
    )
    return Wait(
        state,
        next_check,
        announce=announce[0] if announce else None,
        reason=blocked_by,
        details=details or {},
        more=tuple(announce[1:]),
    )


def on_premises(state: PendingState, now: datetime, rules: Rules) -> Wait | Fail:
    """Teams shows the user as `sfbOnPremUser`: blocked until moved to Teams."""
    state = seen(state, TeamsSeen.SFB_ONPREM_USER)
    reason = Reason(
        BlockedCode.SFB_ONPREM_USER,
        "Teams shows the user as sfbOnPremUser: still homed in Skype for Business Server; "
        "move the user to Teams (Move-CsUser) and the Teams Phone step goes on",
    )
    return wait(state, later(state, now, rules), now, blocked_by=reason)


def after_teams_error(
    state: PendingState, error: GraphError, now: datetime, rules: Rules
) -> Wait | Fail:
    """A Teams call Graph did not answer as asked: throttling and outages wait (never
    before Retry-After), 401/403 block (`graph_access_denied`, with the permission), a
    read Graph refuses as malformed fails `graph_rejected` (waiting would not change it)."""
    state = replace(state, last_error=LastError.of(error))
    if error.kind == GraphErrorKind.REJECTED:
        return fail(
            state,
            Reason(FailureCode.GRAPH_REJECTED, error.graph_message),
            graphError=LastError.of(error).to_json(),
        )
    next_check = later(state, now, rules)
    if error.retry_after:
        next_check = min(
            max(next_check, now + timedelta(seconds=error.retry_after)), progress(state).deadline
        )
    if error.kind != GraphErrorKind.ACCESS_DENIED:
        return wait(state, next_check, now)
    reason = Reason(FailureCode.GRAPH_ACCESS_DENIED, access_denied_message(error))
    return wait(state, next_check, now, blocked_by=reason, details=_permission(error))


def give_up(state: PendingState) -> Fail:
    """The step's deadline has passed: `graph_access_denied` when Graph refused the app
    its last call, else `teams_not_ready` with what Teams last said."""
    teams = progress(state)
    deadline = format_time(teams.deadline)
    error = state.last_error
    details: dict[str, Any] = {"lastError": error.to_json()} if error is not None else {}
    if error is not None and error.kind == GraphErrorKind.ACCESS_DENIED:
        message = f"the Teams deadline {deadline} passed while {access_denied_message(error)}"
        reason = Reason(FailureCode.GRAPH_ACCESS_DENIED, message)
        return fail(state, reason, **details, **_permission(error))
    last_seen = teams.last_seen or TeamsSeen.UNREACHABLE
    number = state.request.teams.phone_number if state.request.teams else "the number"
    if teams.order is not None:
        message = (
            f"the assignment of {number} ordered from Teams had not completed by {deadline} "
            f"(TEAMS_READY_TIMEOUT; last seen: {last_seen})"
        )
    else:
        message = (
            f"Teams did not show the user ready for a phone number by {deadline} "
            f"(TEAMS_READY_TIMEOUT; last seen: {last_seen})"
        )
    return fail(state, Reason(FailureCode.TEAMS_NOT_READY, message), lastSeen=last_seen, **details)


def fail(state: PendingState, reason: Reason, **details: Any) -> Fail:
    """A failure of the step: the licenses stay on the user, so the event lists them."""
    licenses = [lic.to_json() for lic in progress(state).licenses]
    return Fail(reason, {**details, "licenses": licenses}, state)


def _permission(error: GraphError | LastError) -> dict[str, Any]:
    return {"permission": error.call.permission} if error.status == 403 else {}
