"""Intake (the queue trigger): one `user-onboard` message, whatever its body holds, gets an
answer (guarantee 6): rejected, the recorded outcome of its request again, or a first
check of its user. Only a storage failure raises, for the host to retry (then poison,
which the sweep reports)."""

from __future__ import annotations

import logging
from datetime import datetime

from shared.decisions import (
    Ignore,
    Republish,
    TakeOver,
    admit,
    before_check,
    redelivery,
    rejection,
    resume,
)
from shared.domain.errors import FieldError, InvalidRequest
from shared.domain.fingerprint import fingerprint
from shared.domain.personal import values_in
from shared.domain.records import Decided
from shared.domain.requests import parse_request
from shared.service.context import Context
from shared.service.licensing import check
from shared.service.reporting import Handled, report
from shared.service.settling import carry_out, publish_decided, track
from shared.telemetry import failure, stack

log = logging.getLogger("user_onboarding")


async def handle_message(ctx: Context, body: bytes | str, message_id: str) -> str:
    """Handle one message; returns the outcome's name for the log."""
    request_id, outcome = await _handle(ctx, body, message_id)
    report(outcome, request_id=request_id, message_id=message_id, trigger="queue")
    return outcome


async def _handle(ctx: Context, body: bytes | str, message_id: str) -> tuple[str | None, str]:
    now = ctx.clock.now()
    try:
        request = parse_request(body)
        state = admit(request, now, ctx.rules)
    except InvalidRequest as exc:
        return exc.request_id, await _reject(ctx, exc, message_id, now)
    except Exception as exc:  # a bug must not turn a message into poison: answer it
        personal = values_in(body)
        log.error(
            "user-onboard message %s could not be read: %s",
            message_id,
            failure(exc, personal),
            extra={"queueMessageId": message_id, "stack": stack(exc, personal)},
        )
        unreadable = InvalidRequest([FieldError("", "the app could not read this message")])
        return None, await _reject(ctx, unreadable, message_id, now)
    request_id = request.request_id
    mark = fingerprint(request)  # the request as sent, before admission fills it in
    known = await ctx.ledger.open(request_id, message_id, now, fingerprint=mark)
    if known is not None:
        match redelivery(known, message_id, now, fingerprint=mark):
            case Republish(event=event):
                await publish_decided(ctx, request_id, event)
                return request_id, Handled.REDELIVERED
            case Ignore(why=why):
                return request_id, _duplicate(request_id, message_id, why)
            case TakeOver() if not await _take_over(ctx, request_id, message_id):
                return request_id, _duplicate(request_id, message_id, "taken by another copy")
        state = resume(state, known)
    held = before_check(state, now)
    if held is not None:  # the start window is ahead: no Graph call before it
        return request_id, await carry_out(ctx, state, held, by=message_id)
    lookup = await ctx.directory.find_user(state.request.identifiers)
    outcome = await check(ctx, state, lookup, now)
    return request_id, await carry_out(ctx, state, outcome, by=message_id)


async def _take_over(ctx: Context, request_id: str, message_id: str) -> bool:
    """Be the one message that carries on a request posted over HTTP. A wiring without the
    front door's ledger (a test's) has no copies to race against."""
    if ctx.submissions is None:
        return True
    return await ctx.submissions.take_over(request_id, message_id)


def _duplicate(request_id: str, message_id: str, why: str) -> str:
    log.warning(
        "user-onboard message %s: request %s %s",
        message_id,
        request_id,
        why,
        extra={"requestId": request_id, "queueMessageId": message_id},
    )
    return Handled.DUPLICATE


async def _reject(ctx: Context, problem: InvalidRequest, message_id: str, now: datetime) -> str:
    """`rejected`. With a requestId, the message claims it (so the request ends with
    exactly this event), unless another message holds it already."""
    event = rejection(problem, message_id, now)
    request_id = problem.request_id
    if request_id is None:
        await ctx.events.publish(event)  # nothing recorded: nothing to keep or delete
        return Handled.REJECTED
    if await ctx.ledger.claim(request_id, Decided(event, message_id), now):
        await track(ctx, request_id, event)
        await ctx.events.publish(event)
        return Handled.REJECTED
    record = await ctx.ledger.read(request_id)
    if record is not None and record.decided is not None and record.decided.by == message_id:
        await track(ctx, request_id, record.decided.event)  # a crash may have come between
        await ctx.events.publish(record.decided.event)  # our own earlier answer
    else:
        await ctx.events.publish(rejection(problem, message_id, now, taken=True))
    return Handled.REJECTED
