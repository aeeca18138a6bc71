"""What an outcome gives: the events to publish and what is kept of the request (`settle`),
and what a message gets when the ledger already knows its request (`redelivery`,
`awaiting_carrier`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from enum import StrEnum

from shared.decisions.outcomes import (
    Conclude,
    Fail,
    Ignore,
    Licensed,
    NumberAssigned,
    Outcome,
    Park,
    Republish,
    TakeOver,
    Wait,
)
from shared.domain.codes import Announcement, BlockedCode, EventType, LastSeen, RequestStatus
from shared.domain.events import (
    Event,
    Subject,
    already_assigned,
    awaiting_sync_event,
    blocked_event,
    failed_event,
    licensed_event,
    provisioning_event,
    scheduled_event,
)
from shared.domain.records import Progress, RequestRecord
from shared.domain.state import PendingState


def settle(state: PendingState, outcome: Outcome, now: datetime) -> Park | Conclude:
    """The events an outcome gives, and what is kept of the request."""
    who = _subject(state, outcome)
    match outcome:
        case Licensed(plan=plan):
            return Conclude(
                licensed_event(
                    who, now, licenses=plan.outcomes, usage_location=plan.usage_location or ""
                )
            )
        case NumberAssigned(state=done, status=status):
            return Conclude(_number_assigned(who, done, status, now))
        case Fail(reason=reason, details=details):
            return Conclude(failed_event(who, now, reason=reason, details=details))
        case Wait() as wait:
            return _park(who, wait, now)
    raise AssertionError(f"unexpected outcome {outcome!r}")  # pragma: no cover


def _subject(state: PendingState, outcome: Outcome) -> Subject:
    """Who the events are about: the user licensing found, or the Teams step's user."""
    request_id = state.request.request_id
    if isinstance(outcome, Licensed):
        return Subject(request_id, outcome.user.user_principal_name, outcome.user.id)
    decided_in = outcome.state if outcome.state is not None else state
    teams = decided_in.teams
    if teams is not None:
        return Subject(request_id, teams.user_principal_name, teams.user_id)
    return Subject(request_id, state.request.identifiers.user_principal_name)


def _number_assigned(who: Subject, state: PendingState, status: str, now: datetime) -> Event:
    """`licensed` with `data.teams` (contract v1.2): the licenses as licensing left them."""
    teams, asked = state.teams, state.request.teams
    assert teams is not None
    assert asked is not None
    number = {"phoneNumber": asked.phone_number, "numberType": str(asked.number_type)}
    return licensed_event(
        who,
        now,
        licenses=teams.licenses,
        usage_location=teams.usage_location,
        teams={**number, "status": status},
    )


def _park(who: Subject, wait: Wait, now: datetime) -> Park:
    state, next_check = wait.state, wait.next_check
    kinds = [k for k in (wait.announce, *wait.more) if k is not None]
    deadline = state.teams.deadline if state.teams is not None else state.deadline
    progress = Progress(
        status=_status_of(wait, now),
        parked=True,
        deadline=deadline,
        next_check_at=next_check,
        last_seen=state.teams.last_seen if state.teams is not None else state.last_seen,
        last_error=state.last_error.to_json() if state.last_error else None,
        sent={str(kind): now for kind in kinds},
        not_before=state.not_before,
        reason=wait.reason.to_json() if wait.reason else None,
    )
    announcements = tuple(_announcement(who, wait, kind, now) for kind in kinds)
    return Park(announcements, state, next_check, progress)


def _announcement(who: Subject, wait: Wait, kind: Announcement, now: datetime) -> Event:
    state, next_check = wait.state, wait.next_check
    deadline = state.teams.deadline if state.teams is not None else state.deadline
    match kind:
        case Announcement.AWAITING_SYNC:
            forced = None
            if state.forced_sync is not None:
                forced = {
                    "status": str(state.forced_sync),
                    "message": state.forced_sync_message or "",
                }
            return awaiting_sync_event(
                who,
                now,
                last_seen=state.last_seen or LastSeen.NOT_FOUND,
                next_check=next_check,
                deadline=state.deadline,
                forced_sync=forced,
            )
        case Announcement.SCHEDULED:
            assert state.not_before is not None
            return scheduled_event(who, now, not_before=state.not_before, deadline=state.deadline)
        case Announcement.BLOCKED:
            assert wait.reason is not None
            return blocked_event(
                who,
                now,
                reason=wait.reason,
                next_check=next_check,
                deadline=deadline,
                details=wait.details,
            )
        case Announcement.PROVISIONING:
            assert state.teams is not None
            return provisioning_event(
                who, now, licenses=state.teams.licenses, next_check=next_check, deadline=deadline
            )
    raise AssertionError(f"unexpected announcement {kind!r}")  # pragma: no cover


def _status_of(wait: Wait, now: datetime) -> RequestStatus:
    state = wait.state
    if state.not_before is not None and now < state.not_before:
        return RequestStatus.SCHEDULED
    if state.teams is not None:  # blocked while a reason blocks it, else provisioning
        return RequestStatus.BLOCKED if wait.reason else RequestStatus.PROVISIONING
    return RequestStatus.BLOCKED if state.blocked_sent else RequestStatus.WAITING


def redelivery(
    record: RequestRecord, message_id: str, now: datetime, *, fingerprint: str | None = None
) -> Republish | Ignore | TakeOver | None:
    """What a valid message (its request's `fingerprint`) gets when the ledger already
    knows its request; None: handle it (a redelivery of the message that opened it,
    before it was parked; or a replay of a poisoned one); TakeOver: it may be the message
    a request posted over HTTP waits for.

    A new delivery of a licensed request reports its licenses `already_assigned` (they
    are, and no second seat is used); a replay of the deciding message repeats its event
    word for word."""
    if record.decided is not None:
        event = record.decided.event
        if record.decided.by == message_id or event.type != EventType.LICENSED:
            return Republish(event)
        return Republish(already_assigned(event, now))
    if record.owner != message_id:
        match awaiting_carrier(record, fingerprint):
            case Carrier.POISONED:
                return None  # a replay (or a new delivery) carries the held request on
            case Carrier.POSTED:
                return TakeOver()
        return Ignore(f"already in progress, opened by {_opener(record)}")
    if record.progress.parked:
        return Ignore("already parked by this same message")
    return None


class Carrier(StrEnum):
    """Why a request recorded by someone else is waiting for a message to carry it on."""

    POISONED = "poisoned"  # its message was poisoned and is held: a replay carries it on
    POSTED = "posted"  # posted over HTTP: the message with the same request takes it over


def awaiting_carrier(record: RequestRecord, fingerprint: str | None) -> Carrier | None:
    """Whether a message other than the request's opener may carry the request on, and
    why; None: it is in another message's hands (the message is a duplicate).

    A request posted over HTTP is carried on only by a message holding the same request
    (fingerprint): a message with another body under its requestId is a duplicate, as on
    the queue, where the first message owns a requestId."""
    if record.decided is not None or record.progress.parked:
        return None
    if is_poisoned(record):
        return Carrier.POISONED
    if (
        record.progress.status == RequestStatus.QUEUED
        and fingerprint is not None
        and record.fingerprint == fingerprint
    ):
        return Carrier.POSTED
    return None


def _opener(record: RequestRecord) -> str:
    if record.owner:
        return f"message {record.owner}"
    return "an HTTP caller, with another body"


def is_poisoned(record: RequestRecord) -> bool:
    """The request's message was poisoned and is held (announced blocked/poisoned), and no
    other delivery has taken the request further since."""
    reason = record.progress.reason or {}
    return (
        record.decided is None
        and not record.progress.parked
        and record.progress.status == RequestStatus.BLOCKED
        and reason.get("code") == BlockedCode.POISONED
    )


def resume(state: PendingState, record: RequestRecord) -> PendingState:
    """A request handled again after its message was given up on (a replay): the
    announcements already sent are not sent again (each is sent once per request)."""
    sent = record.progress.sent
    return replace(
        state,
        scheduled_sent=state.scheduled_sent or Announcement.SCHEDULED in sent,
        awaiting_sync_sent=state.awaiting_sync_sent or Announcement.AWAITING_SYNC in sent,
        blocked_sent=state.blocked_sent or Announcement.BLOCKED in sent,
        provisioning_sent=state.provisioning_sent or Announcement.PROVISIONING in sent,
    )
