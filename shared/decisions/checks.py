"""A check of the request's user: what Graph's lookup said (or a forced sync's answer)
decides whether to license, wait for the sync, or fail."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from shared.decisions.outcomes import Decision, Fail, ForceSync, License, Wait
from shared.decisions.rules import Rules
from shared.decisions.trouble import after_graph_error, at_deadline
from shared.domain.codes import Announcement, FailureCode, ForcedSyncStatus, LastSeen
from shared.domain.events import Reason
from shared.domain.state import PendingState
from shared.domain.tenant import Ambiguous, ForcedSyncResult, Found, Lookup, LookupFailed, NotFound


def after_lookup(state: PendingState, lookup: Lookup, now: datetime, rules: Rules) -> Decision:
    """What to do once Graph answered (or failed to answer) a lookup of the request's user."""
    checked = replace(state, checks=state.checks + 1)
    match lookup:
        case Found(user=user) if user.synced:
            seen = replace(checked, last_seen=LastSeen.SYNCED, seen_synced=True, last_error=None)
            return License(seen, user)
        case Found():
            waiting = replace(checked, last_seen=LastSeen.NOT_SYNCED, last_error=None)
            return _not_yet(waiting, now, rules)
        case NotFound():
            waiting = replace(checked, last_seen=LastSeen.NOT_FOUND, last_error=None)
            return _not_yet(waiting, now, rules)
        case Ambiguous(field=name, count=count):
            return Fail(
                Reason(
                    FailureCode.USER_AMBIGUOUS,
                    f"{name} matches {count} users; the request must name exactly one",
                )
            )
        case LookupFailed(error=error):
            return after_graph_error(checked, error, now, rules)
    raise AssertionError(f"unexpected lookup {lookup!r}")  # pragma: no cover


def _not_yet(state: PendingState, now: datetime, rules: Rules) -> Wait | Fail | ForceSync:
    state = replace(state, first_check_done=True)
    if now >= state.deadline:
        return at_deadline(state)
    if (
        rules.can_force_sync
        and state.request.distinguished_name is not None
        and state.forced_sync in (None, ForcedSyncStatus.THROTTLED)
    ):
        return ForceSync(state)
    return _awaiting_sync(state, rules.next_check(state, now))


def _awaiting_sync(state: PendingState, next_check: datetime) -> Wait:
    announce = None if state.awaiting_sync_sent else Announcement.AWAITING_SYNC
    return Wait(replace(state, awaiting_sync_sent=True), next_check, announce=announce)


def after_forced_sync(
    state: PendingState, result: ForcedSyncResult, now: datetime, rules: Rules
) -> Wait:
    """After asking Cloud Sync for this user: check again soon (the user should appear
    within seconds) unless the call failed, then wait for the regular sync as before. A
    throttled call (not sent) is tried again at the next check; one that was sent is never
    sent again. The first attempt's outcome goes with `awaiting_sync`."""
    state = replace(state, forced_sync=result.status, forced_sync_message=result.message)
    if result.status == ForcedSyncStatus.FAILED:
        next_check = rules.next_check(state, now)
    else:
        next_check = rules.soon(state, now, rules.forced_sync_recheck)
    return _awaiting_sync(state, next_check)
