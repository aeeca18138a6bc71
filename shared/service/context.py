"""What every use case works with: the ports, the clock, the policy, and the per-process
caches, gathered once by the `OnboardingService` façade."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from shared.decisions import Backoff, Pacing, Rules
from shared.domain.requests import LicenseRequest
from shared.domain.tenant import CloudSyncJob
from shared.service.caches import CloudSync, SkuCache
from shared.service.outbox import FanOut
from shared.service.ports import (
    Clock,
    Directory,
    EventSink,
    IntakeQueue,
    LedgerRetention,
    PendingQueue,
    PoisonQueue,
    RequestLedger,
    Submissions,
    TeamsPhone,
)


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
    # The sweep's requests in flight: enough for its writes to keep Graph's rate (20 a
    # second, the app's turns) at Graph's latency, as many as an instance's queue trigger
    # runs at once (host.json: batchSize 16 + newBatchThreshold 8).
    concurrency: int = 24
    # How long the ledger keeps a request after its terminal event (LEDGER_RETENTION).
    ledger_retention: timedelta = timedelta(days=90)
    # With an Event Grid topic: how long an event held in the outbox is left to the
    # invocation publishing it before the sweep takes it over (a crash, an outage).
    outbox_grace: timedelta = timedelta(minutes=1)
    # (v1.2) the Teams Phone step (TEAMS_PHONE, TEAMS_READY_TIMEOUT), and how soon to look
    # again once an order is to be sent or while it runs.
    teams_phone: bool = False
    teams_ready_timeout: timedelta = timedelta(hours=24)
    teams_recheck: timedelta = timedelta(seconds=30)
    # The app's pace at Graph, shared by its instances (guarantee 8).
    pacing: Pacing = field(default_factory=Pacing)

    @property
    def rules(self) -> Rules:
        """The numbers the decisions apply."""
        return Rules(
            backoff=self.backoff,
            sync_timeout=self.sync_timeout,
            lead_time=self.license_lead_time,
            default_licenses=self.default_licenses,
            default_location=self.default_usage_location,
            may_write_location=self.set_usage_location,
            license_groups=self.license_groups,
            can_force_sync=self.cloud_sync_job is not None,
            forced_sync_recheck=self.forced_sync_recheck,
            group_recheck=self.group_recheck,
            teams_phone=self.teams_phone,
            teams_ready_timeout=self.teams_ready_timeout,
            teams_recheck=self.teams_recheck,
        )


@dataclass(frozen=True)
class Context:
    """The collaborators of the use cases, and the rules derived from the policy."""

    directory: Directory
    pending: PendingQueue
    poison: PoisonQueue
    events: EventSink
    ledger: RequestLedger
    clock: Clock
    policy: Policy
    rules: Rules
    skus: SkuCache
    cloud_sync: CloudSync | None
    # Optional: without them the sweep neither reports the intake backlog nor deletes
    # anything from the ledger (test harnesses that bring their own queues and ledger).
    intake: IntakeQueue | None = None
    retention: LedgerRetention | None = None
    # With an Event Grid topic, `events` is this fan-out, which the sweep drains.
    fanout: FanOut | None = None
    teams: TeamsPhone | None = None  # (v1.2) the Teams Phone step's Graph calls
    # Requests posted over HTTP (the front door's ledger); None in wirings without it.
    submissions: Submissions | None = None
