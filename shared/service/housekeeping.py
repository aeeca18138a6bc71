"""The sweep's two duties besides requests: watching the intake queue (an `intake.backlog`
record every sweep, which the `intake-backlog` alert reads: the sweep is the one part
that runs when intake is paused or stalled), and the ledger's retention (LEDGER_RETENTION,
guarantee 9). Neither may stop a sweep for a reason of its own; a storage outage does."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from shared.domain.errors import StorageUnavailable
from shared.domain.records import Expired
from shared.service.context import Context
from shared.telemetry import TelemetryEvent, emit, failure, stack

log = logging.getLogger("user_onboarding")

# Index entries the retention handles per sweep. About five storage calls each (5.5 on
# Azurite, docs/benchmarks.md section 7), eight at a time: some 1-3 s in Azure for a full
# batch, far inside the sweep's 240 s. A company
# hiring a few hundred people a day has a few entries due per 5-minute sweep; 100 per
# sweep (28,800 a day) also clears a backlog (rows written before the index, a shorter
# LEDGER_RETENTION) within days without the sweep noticing.
EXPIRE_PER_SWEEP: Final = 100
# Rows the one-time scan of rows written before the index reads per sweep (one page).
LEGACY_PAGE: Final = 1000


@dataclass(frozen=True)
class Retained:
    """What a sweep's retention pass did (`sweep.summary`)."""

    expired: Expired
    legacy_indexed: int | None  # rows of the one-time scan read; None: no scan left


async def watch_intake(ctx: Context) -> None:
    """One `intake.backlog` record: the age of the oldest message waiting on `user-onboard`
    (0 when none is visible) and the queue's approximate count."""
    if ctx.intake is None:
        return
    try:
        backlog = await ctx.intake.backlog()
    except StorageUnavailable:
        raise
    except Exception as exc:  # a watch that fails must not stop the sweep
        log.warning("intake backlog could not be read: %s", type(exc).__name__)
        return
    oldest = backlog.oldest_inserted_at
    age = max(0.0, (ctx.clock.now() - oldest).total_seconds()) if oldest else 0.0
    emit(
        TelemetryEvent.INTAKE_BACKLOG,
        "intake: %d message(s) waiting on user-onboard, the oldest for %.0fs",
        backlog.approximate_count,
        age,
        oldestMessageAgeSeconds=round(age, 1),
        approximateMessageCount=backlog.approximate_count,
    )


async def expire(ctx: Context) -> Retained | None:
    """Index what was recorded before the index existed (a page per sweep, once), then
    delete what the index says is past LEDGER_RETENTION (at most EXPIRE_PER_SWEEP)."""
    retention = ctx.retention
    if retention is None:
        return None
    try:
        legacy = await retention.index_legacy(LEGACY_PAGE)
        now = ctx.clock.now()
        before = now - ctx.policy.ledger_retention
        expired = await retention.expire(before, now, EXPIRE_PER_SWEEP)
    except StorageUnavailable:
        raise
    except Exception as exc:
        log.error(
            "ledger retention failed this sweep; it runs again at the next: %s",
            failure(exc),
            extra={"stack": stack(exc)},
        )
        return None
    return Retained(expired, legacy)
