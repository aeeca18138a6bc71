"""Messages the app cannot take further: invalid ones (`rejected`/`invalid_message`),
poisoned ones (held for replay, then `rejected`/`poison`), and pending messages it could
not handle."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from shared.decisions.outcomes import Hold, Ignore, Republish
from shared.domain.codes import Announcement, BlockedCode, RejectionCode, RequestStatus
from shared.domain.errors import InvalidRequest
from shared.domain.events import Event, Reason, Subject, blocked_event, rejected_event
from shared.domain.records import MessageSource, Progress, RequestRecord
from shared.domain.times import format_time

MAX_ORIGINAL_CHARS: Final = 16_384


def rejection(
    problem: InvalidRequest, message_id: str, now: datetime, *, taken: bool = False
) -> Event:
    """`rejected`/`invalid_message`. `taken`: the requestId belongs to another message, so
    this one is rejected under its own id and the request it named is not touched."""
    reason = Reason(RejectionCode.INVALID_MESSAGE, str(problem))
    if not taken:
        return rejected_event(
            now,
            reason=reason,
            request_id=problem.request_id,
            message_id=message_id,
            errors=problem.errors,
        )
    return rejected_event(
        now,
        reason=Reason(
            RejectionCode.INVALID_MESSAGE,
            f"{reason.message}; the requestId {problem.request_id} belongs to another "
            "message, whose request is not affected",
        ),
        request_id=None,
        message_id=message_id,
        errors=problem.errors,
        details={"requestId": problem.request_id},
    )


def given_up(
    content: str, message_id: str, request_id: str | None, why: str, now: datetime
) -> Event:
    """`rejected`/`poison`: the app gave up on a message (the host poisoned it, or the app
    could not handle it); the original text goes with it."""
    return rejected_event(
        now,
        reason=Reason(RejectionCode.POISON, why),
        request_id=request_id,
        message_id=message_id,
        details={"originalMessage": content[:MAX_ORIGINAL_CHARS]},
    )


def after_giving_up(
    record: RequestRecord | None, source: MessageSource
) -> Republish | Ignore | None:
    """What the request of a message given up on gets; None: it ends `rejected`/`poison`.
    Decided already: that outcome, again. A poisoned copy of a request that is parked: it
    lives on the pending queue, so nothing ends (the copy is kept all the same)."""
    if record is not None and record.decided is not None:
        return Republish(record.decided.event)
    if source == MessageSource.POISON and record is not None and record.progress.parked:
        return Ignore("the request is parked and goes on")
    return None


def poison_hold(
    record: RequestRecord | None,
    request_id: str | None,
    upn: str | None,
    hold_until: datetime,
    now: datetime,
) -> Hold | None:
    """Contract v1.2, "Poison hold": a held message whose requestId is readable and whose
    request has no terminal event yet is announced at once, `blocked`/`poisoned` (once per
    request: not when the request was announced blocked before). Its next step, and its
    deadline unless an operator replays it first, is the end of the hold."""
    if request_id is None or hold_until <= now:
        return None
    if record is not None and (
        record.decided is not None or Announcement.BLOCKED in record.progress.sent
    ):
        return None
    reason = Reason(
        BlockedCode.POISONED,
        "the Functions host gave up on this request's message after repeated failures; it "
        f"is held until {format_time(hold_until)} for an operator to fix the cause and "
        "replay it, else the request ends rejected/poison then",
    )
    event = blocked_event(
        Subject(request_id, upn), now, reason=reason, next_check=hold_until, deadline=hold_until
    )
    progress = Progress(
        status=RequestStatus.BLOCKED,
        parked=False,
        deadline=hold_until,
        next_check_at=hold_until,
        reason=reason.to_json(),
        sent={Announcement.BLOCKED: now},
    )
    return Hold(event, progress)
