"""The façade the triggers call: `handle_request` (queue trigger) and `sweep` (timer
trigger), over one module per use case:

    intake        a `user-onboard` message: rejected, answered again, or checked
    sweep         poisoned messages, then every due pending request, within budget
    housekeeping  the sweep's other duties: the intake backlog, the ledger's retention
    licensing     one check: lookup → force a sync, or plan and write the licenses
    phone         (v1.2) the Teams Phone step, once the licenses are on
    settling      record, publish, acknowledge: the one order that is safe to crash in
    dead_letters  messages given up on: kept, held, replayed or reported
    caches        the SKU catalog and the Cloud Sync limiter, per process
    outbox        every event to the queue and the Event Grid topic, at least once

A message is acknowledged (deleted, or rescheduled with its new state) only after its
outcome is durable; a terminal outcome is recorded in the ledger before it is published,
and the first one recorded stands (guarantee 7).
"""

from __future__ import annotations

from shared.service.caches import CloudSync, SkuCache
from shared.service.context import Context, Policy
from shared.service.intake import handle_message
from shared.service.outbox import FanOut
from shared.service.ports import (
    Clock,
    Directory,
    EventOutbox,
    EventSink,
    IntakeQueue,
    LedgerRetention,
    PendingQueue,
    PoisonQueue,
    RequestLedger,
    Submissions,
    TeamsPhone,
)
from shared.service.sweep import Sweep, SweepReport


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
        intake: IntakeQueue | None = None,
        retention: LedgerRetention | None = None,
        topic: EventSink | None = None,
        outbox: EventOutbox | None = None,
        teams: TeamsPhone | None = None,
        submissions: Submissions | None = None,
    ) -> None:
        """`events` is the events queue; with a `topic` (Event Grid), every event goes to
        both, through the `outbox`, which is then required."""
        job = policy.cloud_sync_job
        fanout = None
        if topic is not None:
            if outbox is None:
                raise ValueError("publishing to a topic needs an outbox")
            fanout = FanOut(events, topic, outbox, clock, grace=policy.outbox_grace)
        self._ctx = Context(
            directory=directory,
            pending=pending,
            poison=poison,
            events=fanout or events,
            ledger=ledger,
            clock=clock,
            policy=policy,
            rules=policy.rules,
            skus=skus or SkuCache(directory, clock, policy.sku_cache_ttl),
            cloud_sync=CloudSync(directory, job, clock) if job else None,
            intake=intake,
            retention=retention,
            fanout=fanout,
            teams=teams,
            submissions=submissions,
        )

    async def handle_request(self, body: bytes | str, message_id: str) -> str:
        """Handle one `user-onboard` message; returns the outcome's name for the log.

        Never raises for what the body holds (guarantee 6); a storage failure raises, for
        the host to retry (then poison, which the sweep reports)."""
        return await handle_message(self._ctx, body, message_id)

    async def sweep(self) -> SweepReport:
        """Publish what the outbox holds (with a topic), report the intake backlog and
        poisoned messages, recheck every due pending request, then delete what the ledger
        keeps past LEDGER_RETENTION, within budget.

        Raises only StorageUnavailable (what was received comes back after its lease)."""
        return await Sweep(self._ctx).run()


__all__ = ["OnboardingService", "Policy", "SweepReport"]
