"""Carrying an outcome out, in the one order that makes a crash at any line safe: record,
publish, acknowledge. A terminal outcome is recorded in the ledger before it is published,
and the first one recorded stands (guarantee 7); a parked request's announcements are
published before its next state is written."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta

from shared.decisions import Conclude, Outcome, Park, settle
from shared.domain.codes import RequestStatus
from shared.domain.events import Event
from shared.domain.pending import to_message
from shared.domain.records import Decided, QueuedMessage
from shared.domain.state import PendingState
from shared.service.context import Context
from shared.service.reporting import outcome_name


async def carry_out(
    ctx: Context,
    state: PendingState,
    outcome: Outcome,
    *,
    by: str,
    message: QueuedMessage | None = None,
) -> str:
    """Record, publish, acknowledge: never the other way round. Returns the outcome's
    name (the request's status, or the terminal event's `outcome_name`)."""
    now = ctx.clock.now()
    match settle(state, outcome, now):
        case Conclude(event=event):
            return await finish(ctx, state.request.request_id, event, by=by, message=message)
        case Park() as park:
            for announcement in park.announcements:
                await ctx.events.publish(announcement)
            delay = visibility_delay(park.next_check, now)
            if message is None:
                await ctx.pending.park(to_message(park.state), delay)
            else:
                # Count the rewrite: a later receive of this message that outnumbers
                # it was not followed by an outcome (see the sweep's recheck).
                rewritten = replace(park.state, receipts=state.receipts + 1)
                await ctx.pending.reschedule(message, to_message(rewritten), delay)
            await ctx.ledger.note(state.request.request_id, park.progress)
            return park.progress.status
    raise AssertionError("unreachable")  # pragma: no cover


async def finish(
    ctx: Context, request_id: str, event: Event, *, by: str, message: QueuedMessage | None
) -> str:
    """A terminal outcome: recorded first (the first one recorded stands), published,
    then the pending message (if any) acknowledged."""
    decided = await decide_and_publish(ctx, request_id, Decided(event, by))
    if message is not None:
        await ctx.pending.complete(message)
    return outcome_name(decided.event)


async def decide_and_publish(ctx: Context, request_id: str, decided: Decided) -> Decided:
    """Record `decided` unless something is recorded already, then publish what stands."""
    winner = await ctx.ledger.decide(request_id, decided)
    await publish_decided(ctx, request_id, winner.event)
    return winner


async def publish_decided(ctx: Context, request_id: str, event: Event) -> None:
    """Publish a request's recorded terminal event, then mark it published in the ledger
    (it is no longer parked). Indexed for LEDGER_RETENTION first: every path to a
    published outcome passes here (or replays it here after a crash), so a request the
    ledger shows closed is always indexed."""
    await track(ctx, request_id, event)
    await ctx.events.publish(event)
    await ctx.ledger.close(request_id, RequestStatus(event.type.word))


async def track(ctx: Context, request_id: str, event: Event) -> None:
    """Index a decided request by its terminal event's time (LEDGER_RETENTION)."""
    if ctx.retention is not None:
        await ctx.retention.track_request(request_id, event.time)


def visibility_delay(next_check: datetime, now: datetime) -> timedelta:
    """Whole seconds (what the queue takes), at least one."""
    return timedelta(seconds=max(1, math.ceil((next_check - now).total_seconds())))
