"""The sweep (the timer trigger): with an Event Grid topic, publish what the event outbox
still holds (within a quarter of the budget); report poisoned messages, then recheck every
due pending request, 100 at a time (lookups batched 20 per `$batch`; requests in the Teams
Phone step are not looked up again: their Teams configurations are read, 20 per `$batch`),
within a time budget. No item stops the others (guarantee 6): one that cannot be read,
reported or rewritten is set aside and counted, and the outbox's trouble is logged and left
for the next tick; only a storage outage (`StorageUnavailable`) stops a sweep, and what it
held comes back after its lease."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from shared.decisions import Outcome, TeamsRead, before_check, next_read
from shared.domain.errors import LeaseLost, StorageUnavailable
from shared.domain.pending import from_message
from shared.domain.personal import values_in
from shared.domain.records import MessageSource, QueuedMessage
from shared.domain.requests import request_id_in
from shared.domain.state import PendingState
from shared.domain.teams_tenant import TeamsReading
from shared.domain.tenant import Lookup
from shared.domain.times import format_time
from shared.service.context import Context
from shared.service.dead_letters import give_up, report_held, take_poison
from shared.service.housekeeping import Retained, expire, watch_intake
from shared.service.licensing import check
from shared.service.outbox import Drained
from shared.service.phone import recheck as teams_recheck
from shared.service.reporting import Handled, report
from shared.service.settling import carry_out, publish_decided
from shared.telemetry import TelemetryEvent, emit, failure, stack

log = logging.getLogger("user_onboarding")

LOOKUP_CHUNK: Final = 100  # pending messages looked up together: five full $batch requests
RECEIVE_MAX: Final = 32  # Azure Storage returns at most 32 messages per receive
# The share of the sweep's budget the event outbox may take: requests come first.
OUTBOX_SHARE: Final = 0.25


@dataclass
class SweepReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    set_aside: list[str] = field(default_factory=list)  # "<source>:<message id>: <why>"
    stopped_by_budget: bool = False
    retained: Retained | None = None  # what the ledger's retention did (None: not run)
    outbox: Drained | None = None  # with a topic: what the outbox drain did

    def summary(self) -> str:
        parts = [f"{name}={count}" for name, count in sorted(self.outcomes.items())]
        if self.retained is not None and self.retained.expired.requests:
            parts.append(f"expired={self.retained.expired.requests}")
        if self.outbox is not None and (self.outbox.published or self.outbox.kept):
            parts.append(f"outbox_published={self.outbox.published}")
            parts.append(f"outbox_kept={self.outbox.kept}")
        if self.stopped_by_budget:
            parts.append("stopped_by_budget")
        return " ".join(parts) or "nothing due"


class Sweep:
    """One run of the sweep, within the policy's budget."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.report = SweepReport()
        self._started = ctx.clock.monotonic()

    def _out_of_time(self) -> bool:
        elapsed = self._ctx.clock.monotonic() - self._started
        self.report.stopped_by_budget = elapsed >= self._ctx.policy.sweep_budget_seconds
        return self.report.stopped_by_budget

    def _outbox_out_of_time(self) -> bool:
        elapsed = self._ctx.clock.monotonic() - self._started
        return elapsed >= self._ctx.policy.sweep_budget_seconds * OUTBOX_SHARE

    async def run(self) -> SweepReport:
        ctx = self._ctx
        if ctx.fanout is not None:
            try:
                self.report.outbox = await ctx.fanout.drain(self._outbox_out_of_time)
            except StorageUnavailable:
                raise
            except Exception:  # a bug or a refused table call must not stop the requests
                log.exception("the event outbox could not be drained; the next sweep tries")
        await watch_intake(ctx)
        while not self._out_of_time():
            poisoned = await ctx.poison.receive(RECEIVE_MAX, ctx.policy.pending_lease)
            if not poisoned:
                break
            for message in poisoned:
                await self._isolated(take_poison(ctx, message), MessageSource.POISON, message)
        if not self._out_of_time():
            for message_id, outcome, problem in await report_held(ctx):
                self.report.outcomes[outcome] += 1
                if problem is not None:
                    self.report.set_aside.append(f"poison:{message_id}: {problem}")
        while not self._out_of_time():
            chunk = await self._receive_chunk()
            if not chunk:
                break
            await self._recheck(chunk)
        if not self._out_of_time():  # requests first: the retention can wait a tick
            self.report.retained = await expire(ctx)
        await _summarize(self._ctx, self.report, ctx.clock.monotonic() - self._started)
        return self.report

    async def _receive_chunk(self) -> list[QueuedMessage]:
        chunk: list[QueuedMessage] = []
        while len(chunk) < LOOKUP_CHUNK:
            wanted = min(RECEIVE_MAX, LOOKUP_CHUNK - len(chunk))
            got = await self._ctx.pending.receive_due(wanted, self._ctx.policy.pending_lease)
            chunk.extend(got)
            if len(got) < wanted:
                break
        return chunk

    async def _recheck(self, chunk: Sequence[QueuedMessage]) -> None:
        ctx = self._ctx
        now = ctx.clock.now()
        due: list[tuple[QueuedMessage, PendingState]] = []
        jobs: list[Awaitable[None]] = []
        pending = MessageSource.PENDING
        for message in chunk:
            try:
                state = from_message(message.content)
            except ValueError as exc:
                unreadable = give_up(ctx, message, pending, f"unreadable pending state: {exc}")
                await self._isolated(unreadable, pending, message)
                continue
            held = before_check(state, now)
            if held is None:
                due.append((message, state))
            else:  # a hop towards the start window: re-park, no Graph call
                hop = carry_out(ctx, state, held, by=message.id, message=message)
                jobs.append(self._isolated(hop, pending, message, state.request.request_id))
        steps = await self._read_ahead(due)
        jobs += [
            self._isolated(
                self._recheck_one(message, state, step),
                pending,
                message,
                state.request.request_id,
            )
            for (message, state), step in zip(due, steps, strict=True)
        ]
        await self._bounded(jobs)

    async def _read_ahead(
        self, due: Sequence[tuple[QueuedMessage, PendingState]]
    ) -> list[Callable[[], Awaitable[Outcome]]]:
        """What each due request's check starts from, read for all of them at once: a
        lookup of its user (in `$batch`es), or, in the Teams Phone step, the user's Teams
        configuration (in `$batch`es too) when that is what its check reads first."""
        ctx = self._ctx
        licensing = [s for _, s in due if s.teams is None]
        readiness = [
            s.teams.user_id
            for _, s in due
            if s.teams is not None and next_read(s) == TeamsRead.CONFIGURATION
        ]
        lookups = iter(
            await ctx.directory.find_users([s.request.identifiers for s in licensing])
            if licensing
            else []
        )
        teams = ctx.teams  # without one, each such check fails on its own (set aside)
        readings = iter(await teams.configurations(readiness) if teams and readiness else [])
        now = ctx.clock.now()
        steps = []
        for _, state in due:
            if state.teams is None:
                steps.append(_checking(ctx, state, next(lookups), now))
            else:
                first = next_read(state) == TeamsRead.CONFIGURATION
                reading = next(readings, None) if first else None
                steps.append(_teams_checking(ctx, state, reading))
        return steps

    async def _recheck_one(
        self,
        message: QueuedMessage,
        state: PendingState,
        step: Callable[[], Awaitable[Outcome]],
    ) -> str:
        ctx = self._ctx
        if message.dequeue_count > state.receipts + 1:
            # Received before without an outcome (a crash, an error): maybe it was decided.
            record = await ctx.ledger.read(state.request.request_id)
            if record is not None and record.decided is not None:
                if record.progress.status != record.decided.event.type.word:
                    # Not closed: maybe never published (a crash between decide and
                    # publish). Closed means published: a copy left behind (a crash before
                    # the delete, or a lease another sweep took) is only acknowledged.
                    await publish_decided(ctx, record.request_id, record.decided.event)
                await ctx.pending.complete(message)
                return Handled.REPLAYED
        outcome = await step()
        return await carry_out(ctx, state, outcome, by=message.id, message=message)

    async def _isolated(
        self,
        job: Awaitable[str],
        source: MessageSource,
        message: QueuedMessage,
        request_id: str | None = None,
    ) -> None:
        """Run one item's job; set the message aside if it fails for a reason of its own.
        Only a storage outage goes further (it stops the sweep)."""
        try:
            outcome = await job
        except StorageUnavailable:
            raise
        except LeaseLost as exc:
            _lease_lost(self.report, source, message, exc, request_id)
            return
        except Exception as exc:
            await _set_aside(self._ctx, self.report, source, message, exc, request_id)
            return
        self.report.outcomes[outcome] += 1
        if source == MessageSource.PENDING:
            report(outcome, request_id=request_id, message_id=message.id, trigger="sweep")

    async def _bounded(self, jobs: Sequence[Awaitable[None]]) -> None:
        gate = asyncio.Semaphore(self._ctx.policy.concurrency)

        async def run(job: Awaitable[None]) -> None:
            async with gate:
                await job

        results = await asyncio.gather(*(run(job) for job in jobs), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result  # StorageUnavailable: stop the sweep


async def _summarize(ctx: Context, report: SweepReport, seconds: float) -> None:
    """One `sweep.summary` record: what was done, within which budget, and what waits."""
    overview = await ctx.ledger.parked()
    now = ctx.clock.now()
    oldest = overview.oldest_deadline
    budget = ctx.policy.sweep_budget_seconds
    retained = report.retained
    expired = retained.expired if retained is not None else None
    emit(
        TelemetryEvent.SWEEP_SUMMARY,
        "sweep: %s in %.1fs (budget %.0fs); %d parked, earliest deadline %s",
        report.summary(),
        seconds,
        budget,
        overview.count,
        format_time(oldest) if oldest else "none",
        sweepSeconds=round(seconds, 3),
        sweepBudgetSeconds=budget,
        stoppedByBudget=report.stopped_by_budget,
        setAside=len(report.set_aside),
        pendingCount=overview.count,
        oldestDeadline=format_time(oldest) if oldest else None,
        oldestDeadlineInSeconds=round((oldest - now).total_seconds()) if oldest else None,
        expiredRequests=expired.requests if expired is not None else None,
        expiredRows=expired.rows if expired is not None else None,
        legacyRowsIndexed=retained.legacy_indexed if retained is not None else None,
        outboxPublished=report.outbox.published if report.outbox else None,
        outboxKept=report.outbox.kept if report.outbox else None,
    )


def _checking(
    ctx: Context, state: PendingState, lookup: Lookup, now: datetime
) -> Callable[[], Awaitable[Outcome]]:
    return lambda: check(ctx, state, lookup, now)


def _teams_checking(
    ctx: Context, state: PendingState, reading: TeamsReading | None
) -> Callable[[], Awaitable[Outcome]]:
    return lambda: teams_recheck(ctx, state, reading)


def _lease_lost(
    report: SweepReport,
    source: MessageSource,
    message: QueuedMessage,
    exc: LeaseLost,
    request_id: str | None,
) -> None:
    """Another sweep received this message after our lease ended: it is that sweep's
    now. What was decided here is in the ledger (a terminal outcome is recorded before
    the message is touched), so the other sweep finds it there (and publishes it unless
    the ledger shows it published); a re-park simply did not happen here. Nothing to
    set aside, nothing decided."""
    report.outcomes[Handled.LEASE_LOST] += 1
    log.warning(
        "%s message %s was received by another sweep meanwhile; left to it (%s)",
        source,
        message.id,
        exc,
        extra={"requestId": request_id, "queueMessageId": message.id},
    )


async def _set_aside(
    ctx: Context,
    report: SweepReport,
    source: MessageSource,
    message: QueuedMessage,
    exc: Exception,
    request_id: str | None,
) -> None:
    problem = f"{type(exc).__name__}: {str(exc)[:500]}"  # kept in the ledger, for ops
    known = values_in(message.content)
    log.error(
        "%s message %s could not be handled: %s",
        source,
        message.id,
        failure(exc, known),
        extra={"requestId": request_id, "queueMessageId": message.id, "stack": stack(exc, known)},
    )
    report.outcomes[Handled.SET_ASIDE] += 1
    report.set_aside.append(f"{source}:{message.id}: {failure(exc, known)}")
    emit(
        TelemetryEvent.MESSAGE_SET_ASIDE,
        "%s message %s set aside (kept in the ledger): %s",
        source,
        message.id,
        failure(exc, known),
        level=logging.ERROR,
        source=source,
        queueMessageId=message.id,
        requestId=request_id or request_id_in(message.content),
    )
    try:
        await give_up(ctx, message, source, problem)
    except StorageUnavailable:
        raise
    except Exception as again:
        log.error(
            "%s message %s could not even be set aside: %s",
            source,
            message.id,
            failure(again, known),
            extra={"queueMessageId": message.id, "stack": stack(again, known)},
        )
