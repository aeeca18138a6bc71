"""Messages the app gives up on: poisoned ones (kept, held for POISON_HOLD so that on-call
can replay them, announced blocked/poisoned, then reported rejected/poison), and pending
messages it cannot read or handle (kept, their request answered). Each is kept in the
ledger before it leaves its queue, so nothing is lost."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from shared.decisions import Ignore, Republish, after_giving_up, given_up, poison_hold
from shared.domain.errors import StorageUnavailable
from shared.domain.personal import values_in
from shared.domain.records import Decided, MessageSource, QueuedMessage, SetAside, SetAsideStatus
from shared.domain.requests import request_id_in, upn_in
from shared.domain.times import format_time
from shared.service.context import Context
from shared.service.reporting import Handled
from shared.service.settling import decide_and_publish
from shared.telemetry import TelemetryEvent, emit, failure, stack

log = logging.getLogger("user_onboarding")
POISONED_WHY = "the Functions host gave up on it (maxDequeueCount)"


async def take_poison(ctx: Context, message: QueuedMessage) -> str:
    """Off the poison queue, into the ledger. A request with an outcome gets it again; a
    copy of a request still parked is only kept; any other is **held** for `poison_hold`,
    during which an operator may fix the cause and replay it (ops replay), and reported
    `rejected`/`poison` after that (`report_held`)."""
    now = ctx.clock.now()
    request_id = request_id_in(message.content)
    record = await ctx.ledger.read(request_id) if request_id else None
    status, name, hold_until = SetAsideStatus.KEPT, Handled.POISON_OF_A_PARKED_REQUEST, None
    match after_giving_up(record, MessageSource.POISON):
        case Republish(event=event):
            await ctx.events.publish(event)
            name = Handled.POISON_OF_A_DECIDED_REQUEST
        case None:
            status, name = SetAsideStatus.HELD, Handled.POISON_HELD
            hold_until = now + ctx.policy.poison_hold
    kept = SetAside(
        MessageSource.POISON,
        message.id,
        message.content,
        POISONED_WHY,
        request_id,
        status=status,
        hold_until=hold_until,
    )
    await _keep(ctx, kept, now)
    if hold_until is not None:
        hold = poison_hold(record, request_id, upn_in(message.content), hold_until, now)
        if hold is not None:
            assert request_id is not None
            if record is None:  # poisoned before intake opened it: its row comes first
                await ctx.ledger.open(request_id, message.id, now)
            await ctx.events.publish(hold.event)
            await ctx.ledger.note(request_id, hold.progress)
        _log_held(message.id, request_id, format_time(hold_until))
    await ctx.poison.remove(message)
    return name


async def _keep(ctx: Context, item: SetAside, now: datetime) -> None:
    """Keep a message in the ledger, indexed for LEDGER_RETENTION first (so a crash never
    leaves a kept message that nothing will delete)."""
    if ctx.retention is not None:
        await ctx.retention.track_set_aside(item, now)
    await ctx.ledger.set_aside(item, now)


def _log_held(message_id: str, request_id: str | None, until: str) -> None:
    emit(
        TelemetryEvent.POISON_HELD,
        "poisoned message %s (request %s) held until %s: fix the cause and replay it, "
        "or it is reported rejected/poison then",
        message_id,
        request_id or "-",
        until,
        level=logging.WARNING,
        queueMessageId=message_id,
        requestId=request_id,
        holdUntil=until,
    )


async def report_held(ctx: Context) -> list[tuple[str, str, str | None]]:
    """Poisoned messages whose hold is over (and reports a crash left unfinished): their
    requests are answered `rejected`/`poison`. Returns (message id, outcome, problem) per
    message: one that cannot be answered is kept, with the problem."""
    now = ctx.clock.now()
    done: list[tuple[str, str, str | None]] = []
    statuses = (SetAsideStatus.HELD, SetAsideStatus.REPORTING)
    for item in await ctx.ledger.set_aside_items(statuses=statuses):
        if item.status == SetAsideStatus.HELD and item.hold_until and item.hold_until > now:
            continue
        try:
            done.append((item.message_id, await _report_given_up(ctx, item), None))
        except StorageUnavailable:
            raise
        except Exception as exc:  # it cannot be answered: kept, counted, logged
            problem = failure(exc, values_in(item.content))
            await ctx.ledger.move(replace(item, etag=None), SetAsideStatus.KEPT)
            done.append((item.message_id, Handled.SET_ASIDE, problem))
            emit(
                TelemetryEvent.MESSAGE_SET_ASIDE,
                "poisoned message %s could not be reported (kept in the ledger): %s",
                item.message_id,
                problem,
                level=logging.ERROR,
                source=MessageSource.POISON,
                queueMessageId=item.message_id,
                requestId=item.request_id,
            )
    return done


async def _report_given_up(ctx: Context, item: SetAside) -> str:
    if item.status == SetAsideStatus.HELD and not await ctx.ledger.move(
        item, SetAsideStatus.REPORTING
    ):
        return Handled.REPLAYED_MEANWHILE  # an operator took it first
    why = "the Functions host gave up on this message after repeated failures"
    answered = await _answer_given_up(
        ctx, item.content, item.message_id, item.request_id, why, MessageSource.POISON
    )
    after = SetAsideStatus.REPORTED if answered else SetAsideStatus.KEPT
    await ctx.ledger.move(replace(item, etag=None), after)
    if not answered:
        return Handled.POISON_OF_A_PARKED_REQUEST
    emit(
        TelemetryEvent.POISON_REPORTED,
        "poisoned message %s reported: request %s rejected/poison",
        item.message_id,
        item.request_id or "-",
        level=logging.WARNING,
        queueMessageId=item.message_id,
        requestId=item.request_id,
    )
    return Handled.POISON_REPORTED


async def give_up(ctx: Context, message: QueuedMessage, source: MessageSource, problem: str) -> str:
    """Set a message aside (kept in the ledger first), answer its request if it has one
    without an outcome, and take it off its queue."""
    request_id = request_id_in(message.content)
    kept = SetAside(
        source, message.id, message.content, problem, request_id, status=SetAsideStatus.REPORTED
    )
    await _keep(ctx, kept, ctx.clock.now())
    try:
        why = f"the app could not handle this request ({problem})"
        await _answer_given_up(ctx, message.content, message.id, request_id, why, source)
    except StorageUnavailable:
        raise
    except Exception as exc:
        known = values_in(message.content)
        log.error(
            "%s message %s: its request could not be answered: %s",
            source,
            message.id,
            failure(exc, known),
            extra={"queueMessageId": message.id, "stack": stack(exc, known)},
        )
    if source == MessageSource.POISON:
        await ctx.poison.remove(message)
    else:
        await ctx.pending.complete(message)
    return Handled.SET_ASIDE


async def _answer_given_up(
    ctx: Context,
    content: str,
    message_id: str,
    request_id: str | None,
    why: str,
    source: MessageSource,
) -> bool:
    """Publish what the request of a message given up on gets; False when nothing."""
    event = given_up(content, message_id, request_id, why, ctx.clock.now())
    if request_id is None:
        await ctx.events.publish(event)
        return True
    match after_giving_up(await ctx.ledger.read(request_id), source):
        case Republish(event=decided):
            await ctx.events.publish(decided)
            return True
        case Ignore():
            return False
    await decide_and_publish(ctx, request_id, Decided(event, message_id))
    return True
