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
    scheduled_event,
)
from shared.domain.records import Progress, RequestRecord
from shared.domain.state import PendingState


def settle(state: PendingState, outcome: Outcome, now: datetime) -> Park | Conclude:
    """The events an outcome gives, and what is kept of the request."""
    user = outcome.user if isinstance(outcome, Licensed) else None
    who = Subject(
        state.request.request_id,
        user.user_principal_name if user else state.request.identifiers.user_principal_name,
        user.id if user else None,
    )
    match outcome:
        case Licensed(plan=plan):
            return Conclude(
                licensed_event(
                    who, now, licenses=plan.outcomes, usage_location=plan.usage_location or ""
                )
            )
        case Fail(reason=reason, details=details):
            return Conclude(failed_event(who, now, reason=reason, details=details))
        case Wait() as wait:
            return _park(who, wait, now)
    raise AssertionError(f"unexpected outcome {outcome!r}")  # pragma: no cover


def _park(who: Subject, wait: Wait, now: datetime) -> Park:
    state, next_check, announce = wait.state, wait.next_check, wait.announce
    announcement = _announcement(who, wait, now) if announce is not None else None
    progress = Progress(
        status=_status_of(state, now),
        parked=True,
        deadline=state.deadline,
        next_check_at=next_check,
        last_seen=state.last_seen,
        last_error=state.last_error.to_json() if state.last_error else None,
        sent={str(announce): now} if announce else {},
        not_before=state.not_before,
        reason=wait.reason.to_json() if wait.reason else None,
    )
    return Park(tuple(filter(None, [announcement])), state, next_check, progress)


def _announcement(who: Subject, wait: Wait, now: datetime) -> Event:
    state, next_check = wait.state, wait.next_check
    match wait.announce:
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
                deadline=state.deadline,
                details=wait.details,
            )
    raise AssertionError(f"unexpected announcement {wait.announce!r}")  # pragma: no cover


def _status_of(state: PendingState, now: datetime) -> RequestStatus:
    if state.not_before is not None and now < state.not_before:
        return RequestStatus.SCHEDULED
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
    )
