"""The two use cases: `handle_request` (queue trigger) and `sweep` (timer trigger).

They carry out `shared.decisions.workflow`'s decisions through the ports, in an order that makes a
crash at any line safe:

- a message is acknowledged (deleted, or rescheduled with its new state) only after its
  outcome is durable (event published, next state written);
- a terminal outcome is recorded in the ledger *before* it is published, and the first
  one recorded stands: a replay after a crash publishes that same event instead of
  deciding again, even if the world changed in between (guarantee 7);
- no message stops the others (guarantee 6): whatever a body holds, intake answers it; in
  the sweep, a message that cannot be read, reported or rewritten is set aside (kept in
  the ledger's dead letters, counted, logged) and the sweep goes on. Only a storage
  outage (`StorageUnavailable`) stops a sweep.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter, deque
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final, TypeVar

from shared.decisions.workflow import (
    Backoff,
    Conclude,
    Decision,
    Fail,
    ForceSync,
    GroupPlan,
    Ignore,
    License,
    Licensed,
    LicensePlan,
    Outcome,
    Park,
    RefreshCatalog,
    Republish,
    Wait,
    access_denied_message,
    admit,
    after_forced_sync,
    after_giving_up,
    after_graph_error,
    after_group_writes,
    after_lookup,
    after_write_error,
    before_check,
    given_up,
    plan_group_licensing,
    plan_licensing,
    poisoned_announcement,
    redelivery,
    rejection,
    resume,
    settle,
)
from shared.domain import pending
from shared.domain.codes import ForcedSyncStatus
from shared.domain.errors import (
    FieldError,
    GraphError,
    GraphErrorKind,
    InvalidRequest,
    LeaseLost,
    StorageUnavailable,
)
from shared.domain.events import Event
from shared.domain.records import Decided, Progress, QueuedMessage, RequestRecord, SetAside
from shared.domain.requests import LicenseRequest, decode_body, parse_request, request_id_of
from shared.domain.state import PendingState
from shared.domain.tenant import (
    CloudSyncJob,
    DirectoryUser,
    ForcedSyncResult,
    Lookup,
    LookupFailed,
    SkuCatalog,
)
from shared.domain.times import format_time, parse_time
from shared.service.ports import (
    Clock,
    Directory,
    EventSink,
    PendingQueue,
    PoisonQueue,
    RequestLedger,
)
from shared.telemetry import TelemetryEvent, emit

log = logging.getLogger("user_onboarding")

LOOKUP_CHUNK: Final = 100  # pending messages looked up together: five full $batch requests
RECEIVE_MAX: Final = 32  # Azure Storage returns at most 32 messages per receive

T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    """What the settings decide, plus operational bounds."""

    backoff: Backoff
    sync_timeout: timedelta
    default_licenses: tuple[LicenseRequest, ...] | None = None
    default_usage_location: str | None = None
    set_usage_location: bool = True
    sku_cache_ttl: timedelta = timedelta(minutes=5)
    # A sweep stops taking new messages after this long (well inside functionTimeout).
    sweep_budget_seconds: float = 240.0
    # How long a received pending message stays hidden while the sweep works on it.
    pending_lease: timedelta = timedelta(minutes=5)
    # How long a poisoned message waits, kept, before its request is reported
    # rejected/poison: the time an operator has to fix the cause and replay it.
    poison_hold: timedelta = timedelta(hours=1)
    # Cloud Sync on demand (CLOUD_SYNC_JOB), and how soon to look again after asking it.
    cloud_sync_job: CloudSyncJob | None = None
    forced_sync_recheck: timedelta = timedelta(seconds=30)
    # How long before startDate the start window opens (LICENSE_LEAD_TIME).
    license_lead_time: timedelta = timedelta(days=1)
    # Group mode (LICENSING_MODE=group): SKUPARTNUMBER -> licensing group; None: direct.
    license_groups: Mapping[str, str] | None = None
    # How soon to look again while Entra processes group licenses.
    group_recheck: timedelta = timedelta(seconds=30)
    concurrency: int = 8


class SkuCache:
    """`subscribedSkus`, kept per process for `ttl` and refreshed on demand when stale."""

    def __init__(self, directory: Directory, clock: Clock, ttl: timedelta) -> None:
        self._directory = directory
        self._clock = clock
        self._ttl = ttl.total_seconds()
        self._catalog: SkuCatalog | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, *, refresh: bool = False) -> SkuCatalog:
        async with self._lock:
            age = self._clock.monotonic() - self._fetched_at
            if refresh or self._catalog is None or age >= self._ttl:
                self._catalog = await self._directory.subscribed_skus()
                self._fetched_at = self._clock.monotonic()
            return self._catalog

    def forget_if_contradicted(self, error: GraphError) -> None:
        """Graph says there are no seats where the catalog counted some: read it anew."""
        if error.kind == GraphErrorKind.NO_SEATS:
            self._catalog = None


class CloudSync:
    """Forced syncs through one Cloud Sync job, shared by every invocation of the process:
    its AD-to-Entra rule id read once, and at most `limit` calls per `window` (the API
    allows 5 per 10 s per job); a call over the limit is not sent but reported throttled.
    Several instances of the app are not coordinated here: Graph's own 429 then says
    throttled the same way."""

    def __init__(
        self,
        directory: Directory,
        job: CloudSyncJob,
        clock: Clock,
        *,
        limit: int = 5,
        window: float = 10.0,
    ) -> None:
        self._directory = directory
        self._job = job
        self._clock = clock
        self._limit = limit
        self._window = window
        self._sent: deque[float] = deque()
        self._rule_id: str | None = None
        self._lock = asyncio.Lock()

    async def force(self, distinguished_name: str) -> ForcedSyncResult:
        try:
            rule_id = await self._rule()
        except GraphError as exc:
            return _forced_sync_refused(exc)
        if not self._admit():
            return ForcedSyncResult(
                ForcedSyncStatus.THROTTLED,
                f"not sent: {self._limit} forced syncs in {self._window:g} s is the job's limit",
            )
        try:
            return await self._directory.provision_on_demand(self._job, rule_id, distinguished_name)
        except GraphError as exc:
            return _forced_sync_refused(exc)

    async def _rule(self) -> str:
        async with self._lock:
            if self._rule_id is None:
                self._rule_id = await self._directory.sync_rule_id(self._job)
            return self._rule_id

    def _admit(self) -> bool:
        now = self._clock.monotonic()
        while self._sent and now - self._sent[0] >= self._window:
            self._sent.popleft()
        if len(self._sent) >= self._limit:
            return False
        self._sent.append(now)
        return True


def _forced_sync_refused(error: GraphError) -> ForcedSyncResult:
    if error.kind == GraphErrorKind.THROTTLED:
        return ForcedSyncResult(ForcedSyncStatus.THROTTLED, f"Graph answered 429: {error}")
    if error.kind == GraphErrorKind.ACCESS_DENIED:
        log.error("forced sync refused: %s (the app needs %s)", error, error.call.permission)
    return ForcedSyncResult(
        ForcedSyncStatus.FAILED,
        f"Graph refused {error.call} ({error.status or 'no answer'} {error.code}): "
        f"{error.graph_message}"[:500],
    )


@dataclass
class SweepReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    set_aside: list[str] = field(default_factory=list)  # "<source>:<message id>: <why>"
    stopped_by_budget: bool = False

    def summary(self) -> str:
        parts = [f"{name}={count}" for name, count in sorted(self.outcomes.items())]
        if self.stopped_by_budget:
            parts.append("stopped_by_budget")
        return " ".join(parts) or "nothing due"


class OnboardingService:
    def __init__(
        self,
        *,
        directory: Directory,
        pending: PendingQueue,
        poison: PoisonQueue,
        events: EventSink,
        ledger: RequestLedger,
        clock: Clock,
        policy: Policy,
        skus: SkuCache | None = None,
    ) -> None:
        self._directory = directory
        self._pending = pending
        self._poison = poison
        self._events = events
        self._ledger = ledger
        self._clock = clock
        self._policy = policy
        self._skus = skus or SkuCache(directory, clock, policy.sku_cache_ttl)
        self._cloud_sync = (
            CloudSync(directory, policy.cloud_sync_job, clock) if policy.cloud_sync_job else None
        )

    # --- queue trigger ---------------------------------------------------------------

    async def handle_request(self, body: bytes | str, message_id: str) -> str:
        """Handle one `user-onboard` message; returns the outcome's name for the log.

        Never raises for what the body holds (guarantee 6); a storage failure raises, for
        the host to retry (then poison, which the sweep reports)."""
        request_id, outcome = await self._handle(body, message_id)
        _report(outcome, request_id=request_id, message_id=message_id, trigger="queue")
        return outcome

    async def _handle(self, body: bytes | str, message_id: str) -> tuple[str | None, str]:
        now = self._clock.now()
        try:
            state = admit(
                parse_request(body),
                now,
                default_licenses=self._policy.default_licenses,
                sync_timeout=self._policy.sync_timeout,
                lead_time=self._policy.license_lead_time,
                group_mode=self._policy.license_groups is not None,
            )
        except InvalidRequest as exc:
            return exc.request_id, await self._reject(exc, message_id, now)
        except Exception:  # a bug must not turn a message into poison: answer it
            log.exception("user-onboard message %s could not be read", message_id)
            unreadable = InvalidRequest([FieldError("", "the app could not read this message")])
            return None, await self._reject(unreadable, message_id, now)
        request_id = state.request.request_id
        known = await self._ledger.open(request_id, message_id, now)
        if known is not None:
            match redelivery(known, message_id, now):
                case Republish(event=event):
                    await self._events.publish(event)
                    await self._ledger.close(request_id, event.type.word)
                    return request_id, "redelivered"
                case Ignore(why=why):
                    log.warning(
                        "user-onboard message %s: request %s %s",
                        message_id,
                        request_id,
                        why,
                        extra={"requestId": request_id, "queueMessageId": message_id},
                    )
                    return request_id, "duplicate"
            state = resume(state, known)
        held = before_check(state, now)
        if held is not None:  # the start window is ahead: no Graph call before it
            return request_id, await self._settle(state, held, by=message_id)
        lookup = await self._directory.find_user(state.request.identifiers)
        outcome = await self._check(state, self._after_lookup(state, lookup, now))
        return request_id, await self._settle(state, outcome, by=message_id)

    async def _reject(self, problem: InvalidRequest, message_id: str, now: datetime) -> str:
        """`rejected`. With a requestId, the message claims it (so the request ends with
        exactly this event), unless another message holds it already."""
        event = rejection(problem, message_id, now)
        request_id = problem.request_id
        if request_id is None or await self._ledger.claim(
            request_id, Decided(event, message_id), now
        ):
            await self._events.publish(event)
            return "rejected"
        record = await self._ledger.read(request_id)
        if record is not None and record.decided is not None and record.decided.by == message_id:
            await self._events.publish(record.decided.event)  # our own earlier answer
        else:
            await self._events.publish(rejection(problem, message_id, now, taken=True))
        return "rejected"

    # --- timer trigger ---------------------------------------------------------------

    async def sweep(self) -> SweepReport:
        """Report poisoned messages, then recheck every due pending request, within budget.

        Raises only StorageUnavailable (what was received comes back after its lease)."""
        report = SweepReport()
        started = self._clock.monotonic()

        def out_of_time() -> bool:
            report.stopped_by_budget = (
                self._clock.monotonic() - started >= self._policy.sweep_budget_seconds
            )
            return report.stopped_by_budget

        while not out_of_time():
            poisoned = await self._poison.receive(RECEIVE_MAX, self._policy.pending_lease)
            if not poisoned:
                break
            for message in poisoned:
                await self._isolated(self._take_poison(message), "poison", message, report)
        if not out_of_time():
            await self._report_held(report)

        while not out_of_time():
            chunk = await self._receive_chunk()
            if not chunk:
                break
            await self._recheck(chunk, report)
        await self._summarize(report, self._clock.monotonic() - started)
        return report

    async def _summarize(self, report: SweepReport, seconds: float) -> None:
        """One `sweep.summary` record: what was done, within which budget, and what waits."""
        overview = await self._ledger.parked()
        now = self._clock.now()
        oldest = overview.oldest_deadline
        emit(
            TelemetryEvent.SWEEP_SUMMARY,
            "sweep: %s in %.1fs (budget %.0fs); %d parked, earliest deadline %s",
            report.summary(),
            seconds,
            self._policy.sweep_budget_seconds,
            overview.count,
            format_time(oldest) if oldest else "none",
            sweepSeconds=round(seconds, 3),
            sweepBudgetSeconds=self._policy.sweep_budget_seconds,
            stoppedByBudget=report.stopped_by_budget,
            setAside=len(report.set_aside),
            pendingCount=overview.count,
            oldestDeadline=format_time(oldest) if oldest else None,
            oldestDeadlineInSeconds=round((oldest - now).total_seconds()) if oldest else None,
        )

    async def _receive_chunk(self) -> list[QueuedMessage]:
        chunk: list[QueuedMessage] = []
        while len(chunk) < LOOKUP_CHUNK:
            wanted = min(RECEIVE_MAX, LOOKUP_CHUNK - len(chunk))
            got = await self._pending.receive_due(wanted, self._policy.pending_lease)
            chunk.extend(got)
            if len(got) < wanted:
                break
        return chunk

    async def _recheck(self, chunk: Sequence[QueuedMessage], report: SweepReport) -> None:
        now = self._clock.now()
        due: list[tuple[QueuedMessage, PendingState]] = []
        jobs: list[Awaitable[None]] = []
        for message in chunk:
            try:
                state = pending.from_message(message.content)
            except ValueError as exc:
                unreadable = self._give_up(message, "pending", f"unreadable pending state: {exc}")
                await self._isolated(unreadable, "pending", message, report)
                continue
            held = before_check(state, now)
            if held is None:
                due.append((message, state))
            else:  # a hop towards the start window: re-park, no Graph call
                hop = self._settle(state, held, by=message.id, message=message)
                jobs.append(
                    self._isolated(hop, "pending", message, report, state.request.request_id)
                )
        identifiers = [s.request.identifiers for _, s in due]
        lookups = await self._directory.find_users(identifiers) if due else []
        now = self._clock.now()
        jobs += [
            self._isolated(
                self._recheck_one(message, state, lookup, now),
                "pending",
                message,
                report,
                state.request.request_id,
            )
            for (message, state), lookup in zip(due, lookups, strict=True)
        ]
        await self._bounded(jobs)

    async def _recheck_one(
        self, message: QueuedMessage, state: PendingState, lookup: Lookup, now: datetime
    ) -> str:
        if message.dequeue_count > state.receipts + 1:
            # Received before without an outcome (a crash, an error): maybe it was decided.
            record = await self._ledger.read(state.request.request_id)
            if record is not None and record.decided is not None:
                word = record.decided.event.type.word
                if record.progress.status != word:
                    # Not closed: maybe never published (a crash between decide and
                    # publish). Closed means published: a copy left behind (a crash before
                    # the delete, or a lease another sweep took) is only acknowledged.
                    await self._events.publish(record.decided.event)
                    await self._ledger.close(record.request_id, word)
                await self._pending.complete(message)
                return "replayed"
        outcome = await self._check(state, self._after_lookup(state, lookup, now))
        return await self._settle(state, outcome, by=message.id, message=message)

    async def _isolated(
        self,
        job: Awaitable[str],
        source: str,
        message: QueuedMessage,
        report: SweepReport,
        request_id: str | None = None,
    ) -> None:
        """Run one item's job; set the message aside if it fails for a reason of its own.
        Only a storage outage goes further (it stops the sweep)."""
        try:
            outcome = await job
            report.outcomes[outcome] += 1
            if source == "pending":
                _report(outcome, request_id=request_id, message_id=message.id, trigger="sweep")
            return
        except StorageUnavailable:
            raise
        except LeaseLost as exc:
            # Another sweep received this message after our lease ended: it is that
            # sweep's now. What was decided here is in the ledger (a terminal outcome is
            # recorded before the message is touched), so the other sweep finds it there
            # (and publishes it unless the ledger shows it published); a re-park simply
            # did not happen here. Nothing to set aside, nothing decided.
            report.outcomes["lease_lost"] += 1
            log.warning(
                "%s message %s was received by another sweep meanwhile; left to it (%s)",
                source,
                message.id,
                exc,
                extra={"requestId": request_id, "queueMessageId": message.id},
            )
            return
        except Exception as exc:
            problem = f"{type(exc).__name__}: {str(exc)[:500]}"
            log.exception(
                "%s message %s could not be handled: %s",
                source,
                message.id,
                problem,
                extra={"requestId": request_id, "queueMessageId": message.id},
            )
        report.outcomes["set_aside"] += 1
        report.set_aside.append(f"{source}:{message.id}: {problem}")
        emit(
            TelemetryEvent.MESSAGE_SET_ASIDE,
            "%s message %s set aside (kept in the ledger): %s",
            source,
            message.id,
            problem,
            level=logging.ERROR,
            source=source,
            queueMessageId=message.id,
            requestId=request_id or _request_id_in(message.content),
        )
        try:
            await self._give_up(message, source, problem)
        except StorageUnavailable:
            raise
        except Exception:
            log.exception("%s message %s could not even be set aside", source, message.id)

    async def _bounded(self, jobs: Sequence[Awaitable[None]]) -> None:
        gate = asyncio.Semaphore(self._policy.concurrency)

        async def run(job: Awaitable[None]) -> None:
            async with gate:
                await job

        results = await asyncio.gather(*(run(job) for job in jobs), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result  # StorageUnavailable: stop the sweep

    # --- deciding: fetch, ask the workflow, write --------------------------------------

    def _after_lookup(self, state: PendingState, lookup: Lookup, now: datetime) -> Decision:
        if isinstance(lookup, LookupFailed) and lookup.error.kind == GraphErrorKind.ACCESS_DENIED:
            log_access_denied(state.request.request_id, lookup.error)
        return after_lookup(
            state, lookup, now, self._policy.backoff, can_force_sync=self._cloud_sync is not None
        )

    async def _check(self, state: PendingState, decision: Decision) -> Outcome:
        if isinstance(decision, ForceSync):
            return await self._force_sync(decision.state)
        if isinstance(decision, License):
            return await self._license(decision.state, decision.user)
        return decision

    async def _force_sync(self, state: PendingState) -> Wait:
        assert self._cloud_sync is not None
        assert state.request.distinguished_name is not None
        result = await self._cloud_sync.force(state.request.distinguished_name)
        log.info(
            "forced sync for request %s: %s (%s)",
            state.request.request_id,
            result.status,
            result.message,
            extra={"requestId": state.request.request_id, "forcedSync": str(result.status)},
        )
        return after_forced_sync(
            state,
            result,
            self._clock.now(),
            self._policy.backoff,
            recheck=self._policy.forced_sync_recheck,
        )

    async def _license(self, state: PendingState, user: DirectoryUser) -> Outcome:
        """Plan against the catalog, then write; a stale catalog is read again once."""
        refreshed = False
        while True:
            step: Outcome | RefreshCatalog
            match await self._plan(state, user, refreshed=refreshed):
                case LicensePlan() as plan:
                    step = await self._write(state, user, plan, refreshed=refreshed)
                case GroupPlan() as plan:
                    step = await self._join_groups(state, user, plan, refreshed=refreshed)
                case other:
                    step = other
            if not isinstance(step, RefreshCatalog):
                return step
            refreshed = True

    async def _plan(
        self, state: PendingState, user: DirectoryUser, *, refreshed: bool
    ) -> LicensePlan | GroupPlan | RefreshCatalog | Licensed | Wait | Fail:
        try:
            catalog = await self._skus.get(refresh=refreshed)
        except GraphError as exc:
            return self._graph_trouble(state, exc)
        if self._policy.license_groups is not None:
            return plan_group_licensing(
                state,
                user,
                catalog,
                self._policy.license_groups,
                self._clock.now(),
                self._policy.backoff,
                refreshed=refreshed,
                default_location=self._policy.default_usage_location,
                may_write_location=self._policy.set_usage_location,
                recheck=self._policy.group_recheck,
            )
        return plan_licensing(
            state,
            user,
            catalog,
            self._clock.now(),
            self._policy.backoff,
            refreshed=refreshed,
            default_location=self._policy.default_usage_location,
            may_write_location=self._policy.set_usage_location,
        )

    async def _write(
        self, state: PendingState, user: DirectoryUser, plan: LicensePlan, *, refreshed: bool
    ) -> Licensed | RefreshCatalog | Wait | Fail:
        wrote = False
        try:
            if plan.write_usage_location:
                assert plan.usage_location is not None
                await self._directory.set_usage_location(user.id, plan.usage_location)
                wrote = True
            if plan.to_assign:
                await self._directory.assign_licenses(
                    user.id,
                    plan.to_assign,
                    usage_location_written=wrote or state.usage_location_written,
                )
        except GraphError as exc:
            return self._write_failed(state, user, exc, wrote=wrote, refreshed=refreshed)
        return Licensed(user, plan)

    async def _join_groups(
        self, state: PendingState, user: DirectoryUser, plan: GroupPlan, *, refreshed: bool
    ) -> Wait | Fail | RefreshCatalog:
        wrote = False
        try:
            if plan.write_usage_location:
                assert plan.usage_location is not None
                await self._directory.set_usage_location(user.id, plan.usage_location)
                wrote = True
            for _, group in plan.add_to_groups:
                await self._directory.add_group_member(group, user.id)
            if plan.reprocess:
                await self._directory.reprocess_licenses(user.id)
        except GraphError as exc:
            return self._write_failed(state, user, exc, wrote=wrote, refreshed=refreshed)
        return after_group_writes(
            state, plan, self._clock.now(), self._policy.backoff, recheck=self._policy.group_recheck
        )

    def _write_failed(
        self,
        state: PendingState,
        user: DirectoryUser,
        error: GraphError,
        *,
        wrote: bool,
        refreshed: bool,
    ) -> Wait | Fail | RefreshCatalog:
        self._skus.forget_if_contradicted(error)
        self._log_if_denied(state, error)
        return after_write_error(
            state,
            error,
            self._clock.now(),
            self._policy.backoff,
            user=user,
            wrote_usage_location=wrote,
            refreshed=refreshed,
        )

    def _graph_trouble(self, state: PendingState, error: GraphError) -> Wait | Fail:
        self._log_if_denied(state, error)
        return after_graph_error(state, error, self._clock.now(), self._policy.backoff)

    def _log_if_denied(self, state: PendingState, error: GraphError) -> None:
        if error.kind == GraphErrorKind.ACCESS_DENIED:
            log_access_denied(state.request.request_id, error)

    # --- carrying outcomes out: publish, then acknowledge --------------------------------

    async def _settle(
        self,
        state: PendingState,
        outcome: Outcome,
        *,
        by: str,
        message: QueuedMessage | None = None,
    ) -> str:
        """Record, publish, acknowledge: never the other way round."""
        now = self._clock.now()
        match settle(state, outcome, now):
            case Conclude(event=event):
                return await self._finish(state.request.request_id, event, by=by, message=message)
            case Park() as park:
                for announcement in park.announcements:
                    await self._events.publish(announcement)
                delay = _visibility_delay(park.next_check, now)
                next_state = park.state
                if message is None:
                    await self._pending.park(pending.to_message(next_state), delay)
                else:
                    # Count the rewrite: a later receive of this message that outnumbers
                    # it was not followed by an outcome (see _recheck_one).
                    rewritten = replace(next_state, receipts=state.receipts + 1)
                    await self._pending.reschedule(message, pending.to_message(rewritten), delay)
                await self._ledger.note(state.request.request_id, park.progress)
                return park.progress.status
        raise AssertionError("unreachable")  # pragma: no cover

    async def _finish(
        self, request_id: str, event: Event, *, by: str, message: QueuedMessage | None
    ) -> str:
        """A terminal outcome: recorded first (the first one recorded stands), published,
        then the pending message (if any) acknowledged."""
        decided = await self._ledger.decide(request_id, Decided(event, by))
        await self._events.publish(decided.event)
        await self._ledger.close(request_id, decided.event.type.word)
        if message is not None:
            await self._pending.complete(message)
        return _outcome_name(decided.event)

    # --- poison and messages set aside -----------------------------------------------

    async def _take_poison(self, message: QueuedMessage) -> str:
        """Off the poison queue, into the ledger. A request with an outcome gets it again; a
        copy of a request still parked is only kept; any other is **held** for
        `poison_hold`, during which an operator may fix the cause and replay it (ops
        replay), and reported `rejected`/`poison` after that (`_report_held`)."""
        now = self._clock.now()
        request_id = _request_id_in(message.content)
        record = await self._ledger.read(request_id) if request_id else None
        status, name, hold_until = "kept", "poison_of_a_parked_request", None
        match after_giving_up(record, "poison"):
            case Republish(event=event):
                await self._events.publish(event)
                name = "poison_of_a_decided_request"
            case None:
                status, name, hold_until = "held", "poison_held", now + self._policy.poison_hold
        await self._ledger.set_aside(
            SetAside(
                "poison",
                message.id,
                message.content,
                "the Functions host gave up on it (maxDequeueCount)",
                request_id,
                status=status,
                hold_until=hold_until,
            ),
            now,
        )
        if hold_until is not None:
            announcement = poisoned_announcement(
                record, request_id, _upn_in(message.content), hold_until, now
            )
            if announcement is not None:
                assert request_id is not None
                await self._announce_poisoned(request_id, record, message.id, announcement)
            emit(
                TelemetryEvent.POISON_HELD,
                "poisoned message %s (request %s) held until %s: fix the cause and replay it, "
                "or it is reported rejected/poison then",
                message.id,
                request_id or "-",
                format_time(hold_until),
                level=logging.WARNING,
                queueMessageId=message.id,
                requestId=request_id,
                holdUntil=format_time(hold_until),
            )
        await self._poison.remove(message)
        return name

    async def _announce_poisoned(
        self, request_id: str, record: RequestRecord | None, message_id: str, event: Event
    ) -> None:
        """`blocked`/`poisoned` for a held request: its row exists first (a message poisoned
        before intake could open it), then the event, then the operators' view."""
        now = self._clock.now()
        if record is None:
            await self._ledger.open(request_id, message_id, now)
        await self._events.publish(event)
        hold_until = parse_time(str(event.data["deadline"]))
        await self._ledger.note(
            request_id,
            Progress(
                status="blocked",
                parked=False,
                deadline=hold_until,
                next_check_at=hold_until,
                reason=event.data["reason"],
                sent={event.type.word: now},
            ),
        )

    async def _report_held(self, report: SweepReport) -> None:
        """Poisoned messages whose hold is over (and reports a crash left unfinished): their
        requests are answered `rejected`/`poison`."""
        now = self._clock.now()
        for item in await self._ledger.set_aside_items(statuses=("held", "reporting")):
            if item.status == "held" and item.hold_until is not None and item.hold_until > now:
                continue
            try:
                report.outcomes[await self._report_given_up(item)] += 1
            except StorageUnavailable:
                raise
            except Exception as exc:  # it cannot be answered: kept, counted, logged
                problem = f"{type(exc).__name__}: {str(exc)[:500]}"
                await self._ledger.move(replace(item, etag=None), "kept")
                report.outcomes["set_aside"] += 1
                report.set_aside.append(f"poison:{item.message_id}: {problem}")
                emit(
                    TelemetryEvent.MESSAGE_SET_ASIDE,
                    "poisoned message %s could not be reported (kept in the ledger): %s",
                    item.message_id,
                    problem,
                    level=logging.ERROR,
                    source="poison",
                    queueMessageId=item.message_id,
                    requestId=item.request_id,
                )

    async def _report_given_up(self, item: SetAside) -> str:
        if item.status == "held" and not await self._ledger.move(item, "reporting"):
            return "replayed_meanwhile"  # an operator took it first
        why = "the Functions host gave up on this message after repeated failures"
        answered = await self._answer_given_up(
            item.content, item.message_id, item.request_id, why, "poison"
        )
        await self._ledger.move(replace(item, etag=None), "reported" if answered else "kept")
        if answered:
            emit(
                TelemetryEvent.POISON_REPORTED,
                "poisoned message %s reported: request %s rejected/poison",
                item.message_id,
                item.request_id or "-",
                level=logging.WARNING,
                queueMessageId=item.message_id,
                requestId=item.request_id,
            )
        return "poison_reported" if answered else "poison_of_a_parked_request"

    async def _give_up(self, message: QueuedMessage, source: str, problem: str) -> str:
        """Set a message aside (kept in the ledger first), answer its request if it has one
        without an outcome, and take it off its queue."""
        request_id = _request_id_in(message.content)
        await self._ledger.set_aside(
            SetAside(source, message.id, message.content, problem, request_id, status="reported"),
            self._clock.now(),
        )
        try:
            why = f"the app could not handle this request ({problem})"
            await self._answer_given_up(message.content, message.id, request_id, why, source)
        except StorageUnavailable:
            raise
        except Exception:
            log.exception("%s message %s: its request could not be answered", source, message.id)
        if source == "poison":
            await self._poison.remove(message)
        else:
            await self._pending.complete(message)
        return "set_aside"

    async def _answer_given_up(
        self, content: str, message_id: str, request_id: str | None, why: str, source: str
    ) -> bool:
        """Publish what the request of a message given up on gets; False when nothing."""
        event = given_up(content, message_id, request_id, why, self._clock.now())
        if request_id is None:
            await self._events.publish(event)
            return True
        match after_giving_up(await self._ledger.read(request_id), source):
            case Republish(event=decided):
                await self._events.publish(decided)
                return True
            case Ignore():
                return False
        winner = await self._ledger.decide(request_id, Decided(event, message_id))
        await self._events.publish(winner.event)
        await self._ledger.close(request_id, winner.event.type.word)
        return True


def _outcome_name(event: Event) -> str:
    reason = event.data.get("reason")
    code = reason.get("code") if isinstance(reason, dict) else None
    return f"{event.type.word}:{code}" if event.type.word == "failed" and code else event.type.word


def log_access_denied(request_id: str, error: GraphError) -> None:
    """An ERROR naming the refused call and the permission it needs: someone must act."""
    emit(
        TelemetryEvent.GRAPH_ACCESS_DENIED,
        "Graph access denied for request %s: %s (Graph said: %s %s %s)",
        request_id,
        access_denied_message(error),
        error.status,
        error.code,
        error.graph_message,
        level=logging.ERROR,
        requestId=request_id,
        call=error.call,
        permission=error.call.permission,
        status=error.status,
        kind=error.kind,
    )


def _report(outcome: str, *, request_id: str | None, message_id: str, trigger: str) -> None:
    """One `request.outcome` record per message handled (and per sweep item)."""
    word, _, code = outcome.partition(":")
    emit(
        TelemetryEvent.REQUEST_OUTCOME,
        "request %s (message %s): %s",
        request_id or "-",
        message_id,
        outcome,
        requestId=request_id,
        queueMessageId=message_id,
        outcome=word,
        reasonCode=code or None,
        trigger=trigger,
    )


def _visibility_delay(next_check: datetime, now: datetime) -> timedelta:
    """Whole seconds (what the queue takes), at least one."""
    seconds = max(1, math.ceil((next_check - now).total_seconds()))
    return timedelta(seconds=seconds)


def _upn_in(content: str) -> str | None:
    """The userPrincipalName of a valid request message, for the events about it."""
    try:
        return parse_request(content).identifiers.user_principal_name
    except Exception:  # a poisoned message may hold anything
        return None


def _request_id_in(content: str) -> str | None:
    """The requestId of a request message, or of the request inside a pending state."""
    try:
        document = decode_body(content)
    except InvalidRequest:
        return None
    inner = document.get("request") if isinstance(document, dict) else None
    return request_id_of(document) or request_id_of(inner)
