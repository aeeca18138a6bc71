"""The two use cases: `handle_request` (queue trigger) and `sweep` (timer trigger).

They carry out `shared.workflow`'s decisions through the ports, in an order that makes a
crash at any line safe: a message is acknowledged (deleted, or rescheduled with its new
state) only after its outcome is durable (event published or next state written). A
replay after a crash repeats events with the same deterministic ids, which consumers
deduplicate on.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, TypeVar

from shared.contract import (
    FailureCode,
    LicenseRequest,
    Reason,
    RejectionCode,
    Subject,
    awaiting_sync_event,
    blocked_event,
    decode_body,
    failed_event,
    licensed_event,
    parse_request,
    rejected_event,
    request_id_of,
)
from shared.errors import GraphError, GraphErrorKind, InvalidRequest
from shared.ports import (
    Clock,
    Directory,
    DirectoryUser,
    EventSink,
    Lookup,
    LookupFailed,
    PendingQueue,
    PoisonQueue,
    QueuedMessage,
    SkuCatalog,
)
from shared.workflow import (
    Backoff,
    Decision,
    Fail,
    LastSeen,
    License,
    LicensePlan,
    PendingState,
    Wait,
    access_denied_message,
    admit,
    after_graph_error,
    after_lookup,
    after_no_seats,
    plan_licenses,
)

log = logging.getLogger("user_onboarding")

LOOKUP_CHUNK: Final = 100  # pending messages looked up together: five full $batch requests
RECEIVE_MAX: Final = 32  # Azure Storage returns at most 32 messages per receive
MAX_ORIGINAL_CHARS: Final = 16_384

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

    def invalidate(self) -> None:
        self._catalog = None


@dataclass(frozen=True)
class Licensed:
    user: DirectoryUser
    plan: LicensePlan


Outcome = Decision | Licensed


@dataclass
class SweepReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[BaseException] = field(default_factory=list)
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
        clock: Clock,
        policy: Policy,
        skus: SkuCache | None = None,
    ) -> None:
        self._directory = directory
        self._pending = pending
        self._poison = poison
        self._events = events
        self._clock = clock
        self._policy = policy
        self._skus = skus or SkuCache(directory, clock, policy.sku_cache_ttl)

    # --- queue trigger ---------------------------------------------------------------

    async def handle_request(self, body: bytes | str, message_id: str) -> str:
        """Handle one `user-onboard` message; returns the outcome's name for the log."""
        now = self._clock.now()
        try:
            state = admit(
                parse_request(body),
                now,
                default_licenses=self._policy.default_licenses,
                sync_timeout=self._policy.sync_timeout,
            )
        except InvalidRequest as exc:
            await self._events.publish(
                rejected_event(
                    now,
                    reason=Reason(RejectionCode.INVALID_MESSAGE, str(exc)),
                    request_id=exc.request_id,
                    message_id=message_id,
                    errors=exc.errors,
                )
            )
            return "rejected"
        lookup = await self._directory.find_user(state.request.identifiers)
        return await self._advance(state, self._after_lookup(state, lookup, now))

    # --- timer trigger ---------------------------------------------------------------

    async def sweep(self) -> SweepReport:
        """Report poisoned messages, then recheck every due pending request, within budget."""
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
                await self._report_poison(message)
                report.outcomes["poison_reported"] += 1

        while not out_of_time():
            chunk = await self._receive_chunk()
            if not chunk:
                break
            await self._recheck(chunk, report)
        return report

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
        parked: list[tuple[QueuedMessage, PendingState]] = []
        for message in chunk:
            try:
                parked.append((message, PendingState.deserialize(message.content)))
            except ValueError as exc:
                await self._reject_unreadable_pending(message, str(exc))
                report.outcomes["rejected"] += 1
        lookups = await self._directory.find_users([s.request.identifiers for _, s in parked])
        now = self._clock.now()
        jobs = [
            self._advance(state, self._after_lookup(state, lookup, now), message)
            for (message, state), lookup in zip(parked, lookups, strict=True)
        ]
        for result in await self._bounded(jobs):
            if isinstance(result, BaseException):
                log.error("sweep item failed", exc_info=result)
                report.errors.append(result)
                report.outcomes["error"] += 1
            else:
                report.outcomes[result] += 1

    async def _bounded(self, jobs: Sequence[Awaitable[T]]) -> list[T | BaseException]:
        gate = asyncio.Semaphore(self._policy.concurrency)

        async def run(job: Awaitable[T]) -> T:
            async with gate:
                return await job

        return await asyncio.gather(*(run(job) for job in jobs), return_exceptions=True)

    # --- carrying decisions out ------------------------------------------------------

    async def _advance(
        self, state: PendingState, decision: Decision, message: QueuedMessage | None = None
    ) -> str:
        outcome: Outcome = decision
        if isinstance(decision, License):
            outcome = await self._license(decision.state, decision.user)
        return await self._settle(state, outcome, message)

    async def _license(self, state: PendingState, user: DirectoryUser) -> Outcome:
        """Plan against the SKU catalog (refreshed once if it looks stale) and write."""
        refreshed = False
        backoff = self._policy.backoff
        for _ in range(2):
            try:
                catalog = await self._skus.get(refresh=refreshed)
            except GraphError as exc:
                return self._graph_trouble(state, exc, user=user)
            plan = plan_licenses(
                state.licenses,
                catalog,
                user,
                requested_location=state.request.usage_location,
                default_location=self._policy.default_usage_location,
                may_write_location=self._policy.set_usage_location,
            )
            stale = (isinstance(plan, Fail) and plan.reason.code == FailureCode.UNKNOWN_SKU) or (
                isinstance(plan, LicensePlan) and bool(plan.short_of_seats)
            )
            if stale and not refreshed:
                refreshed = True
                continue
            if isinstance(plan, Fail):
                return plan
            if plan.short_of_seats:
                return after_no_seats(
                    state,
                    f"no free seat for {', '.join(plan.short_of_seats)}",
                    self._clock.now(),
                    backoff,
                )
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
                if exc.kind == GraphErrorKind.NO_SEATS:
                    self._skus.invalidate()
                if exc.kind == GraphErrorKind.UNKNOWN_SKU and not refreshed:
                    refreshed = True
                    continue
                return self._graph_trouble(state, exc, user=user, wrote_usage_location=wrote)
            return Licensed(user, plan)
        raise AssertionError("unreachable: the second pass always returns")  # pragma: no cover

    def _after_lookup(self, state: PendingState, lookup: Lookup, now: datetime) -> Decision:
        if isinstance(lookup, LookupFailed) and lookup.error.kind == GraphErrorKind.ACCESS_DENIED:
            log_access_denied(state.request.request_id, lookup.error)
        return after_lookup(state, lookup, now, self._policy.backoff)

    def _graph_trouble(
        self,
        state: PendingState,
        error: GraphError,
        *,
        user: DirectoryUser | None = None,
        wrote_usage_location: bool = False,
    ) -> Decision:
        """Ask the workflow what a Graph failure means; say so loudly when it is a grant."""
        if error.kind == GraphErrorKind.ACCESS_DENIED:
            log_access_denied(state.request.request_id, error)
        return after_graph_error(
            state,
            error,
            self._clock.now(),
            self._policy.backoff,
            user=user,
            wrote_usage_location=wrote_usage_location,
        )

    async def _settle(
        self, state: PendingState, outcome: Outcome, message: QueuedMessage | None
    ) -> str:
        """Publish what has to be published, then acknowledge: never the other way round."""
        now = self._clock.now()
        request = state.request
        user = outcome.user if isinstance(outcome, Licensed) else None
        who = Subject(
            request.request_id,
            user.user_principal_name if user else request.identifiers.user_principal_name,
            user.id if user else None,
        )
        match outcome:
            case Licensed(plan=plan):
                await self._events.publish(
                    licensed_event(
                        who,
                        now,
                        licenses=plan.outcomes,
                        usage_location=plan.usage_location or "",
                    )
                )
                name = "licensed"
            case Fail(reason=reason, details=details):
                await self._events.publish(failed_event(who, now, reason=reason, details=details))
                name = f"failed:{reason.code}"
            case Wait(
                state=next_state,
                next_check=next_check,
                announce=announce,
                reason=reason,
                details=details,
            ):
                if announce == "awaiting_sync":
                    await self._events.publish(
                        awaiting_sync_event(
                            who,
                            now,
                            last_seen=next_state.last_seen or LastSeen.NOT_FOUND,
                            next_check=next_check,
                            deadline=next_state.deadline,
                        )
                    )
                elif announce == "blocked":
                    assert reason is not None
                    await self._events.publish(
                        blocked_event(
                            who,
                            now,
                            reason=reason,
                            next_check=next_check,
                            deadline=next_state.deadline,
                            details=details,
                        )
                    )
                delay = _visibility_delay(next_check, now)
                if message is None:
                    await self._pending.park(next_state.serialize(), delay)
                else:
                    await self._pending.reschedule(message, next_state.serialize(), delay)
                return "blocked" if next_state.blocked_sent else "waiting"
            case _:  # pragma: no cover
                raise AssertionError(f"unexpected outcome {outcome!r}")
        if message is not None:
            await self._pending.complete(message)
        return name

    async def _report_poison(self, message: QueuedMessage) -> None:
        event = rejected_event(
            self._clock.now(),
            reason=Reason(
                RejectionCode.POISON,
                "the Functions host gave up on this message after repeated failures",
            ),
            request_id=_request_id_in(message.content),
            message_id=message.id,
            details={"originalMessage": message.content[:MAX_ORIGINAL_CHARS]},
        )
        await self._events.publish(event)
        await self._poison.remove(message)

    async def _reject_unreadable_pending(self, message: QueuedMessage, problem: str) -> None:
        await self._events.publish(
            rejected_event(
                self._clock.now(),
                reason=Reason(
                    RejectionCode.INVALID_MESSAGE, f"unreadable pending state: {problem}"
                ),
                request_id=_request_id_in(message.content),
                message_id=message.id,
                details={"originalMessage": message.content[:MAX_ORIGINAL_CHARS]},
            )
        )
        await self._pending.complete(message)


def log_access_denied(request_id: str, error: GraphError) -> None:
    """An ERROR naming the refused call and the permission it needs: someone must act."""
    log.error(
        "Graph access denied for request %s: %s (Graph said: %s %s %s)",
        request_id,
        access_denied_message(error),
        error.status,
        error.code,
        error.graph_message,
    )


def _visibility_delay(next_check: datetime, now: datetime) -> timedelta:
    """Whole seconds (what the queue takes), at least one."""
    seconds = max(1, math.ceil((next_check - now).total_seconds()))
    return timedelta(seconds=seconds)


def _request_id_in(content: str) -> str | None:
    """The requestId of a request message, or of the request inside a pending state."""
    try:
        document = decode_body(content)
    except InvalidRequest:
        return None
    inner = document.get("request") if isinstance(document, dict) else None
    return request_id_of(document) or request_id_of(inner)
