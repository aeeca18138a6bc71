"""The façade the triggers call: `handle_request` (queue trigger) and `sweep` (timer
trigger), over one module per use case:

    intake        a `user-onboard` message: rejected, answered again, or checked
    sweep         poisoned messages, then every due pending request, within budget
    licensing     one check: lookup → force a sync, or plan and write the licenses
    settling      record, publish, acknowledge: the one order that is safe to crash in
    dead_letters  messages given up on: kept, held, replayed or reported
    caches        the SKU catalog and the Cloud Sync limiter, per process

A message is acknowledged (deleted, or rescheduled with its new state) only after its
outcome is durable; a terminal outcome is recorded in the ledger before it is published,
and the first one recorded stands (guarantee 7).
"""

from __future__ import annotations

from shared.service.caches import CloudSync, SkuCache
from shared.service.context import Context, Policy
from shared.service.intake import handle_message
from shared.service.ports import (
    Clock,
    Directory,
    EventSink,
    PendingQueue,
    PoisonQueue,
    RequestLedger,
    Submissions,
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
        submissions: Submissions | None = None,
    ) -> None:
        job = policy.cloud_sync_job
        self._ctx = Context(
            directory=directory,
            pending=pending,
            poison=poison,
            events=events,
            ledger=ledger,
            clock=clock,
            policy=policy,
            rules=policy.rules,
            skus=skus or SkuCache(directory, clock, policy.sku_cache_ttl),
            cloud_sync=CloudSync(directory, job, clock) if job else None,
            submissions=submissions,
        )

    async def handle_request(self, body: bytes | str, message_id: str) -> str:
        """Handle one `user-onboard` message; returns the outcome's name for the log.

        Never raises for what the body holds (guarantee 6); a storage failure raises, for
        the host to retry (then poison, which the sweep reports)."""
        return await handle_message(self._ctx, body, message_id)

    async def sweep(self) -> SweepReport:
        """Report poisoned messages, then recheck every due pending request, within budget.

        Raises only StorageUnavailable (what was received comes back after its lease)."""
        return await Sweep(self._ctx).run()


__all__ = ["OnboardingService", "Policy", "SweepReport"]
