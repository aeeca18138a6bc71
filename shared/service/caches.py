"""What a process keeps across invocations: the SKU catalog, and the forced-sync limiter of
the Cloud Sync job with its rule id."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import timedelta

from shared.domain.codes import ForcedSyncStatus
from shared.domain.errors import GraphError, GraphErrorKind
from shared.domain.tenant import CloudSyncJob, ForcedSyncResult, SkuCatalog
from shared.service.ports import Clock, Directory

log = logging.getLogger("user_onboarding")


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
        log.error(
            "forced sync refused: Graph %s %s on %s (the app needs %s)",
            error.status or "no answer",
            error.code,
            error.call,
            error.call.permission,
        )
    return ForcedSyncResult(
        ForcedSyncStatus.FAILED,
        f"Graph refused {error.call} ({error.status or 'no answer'} {error.code}): "
        f"{error.graph_message}"[:500],
    )
