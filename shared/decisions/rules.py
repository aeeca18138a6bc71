"""The policy numbers every decision applies, in one frozen object (model: httpx's `Timeout`
and `Limits`): how long to wait between checks, how long a request may take, when the start
window opens, which licensing mode, and the usage location to fall back on. Built once from
the settings (`shared.service.Policy.rules`); the decisions take it instead of a row of
parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.requests import LicenseRequest
from shared.domain.state import PendingState


@dataclass(frozen=True)
class Backoff:
    initial: timedelta
    maximum: timedelta

    def delay(self, checks: int) -> timedelta:
        """Delay after the `checks`-th check: initial, doubling, capped at maximum."""
        factor = 1 << max(0, min(checks - 1, 30))
        return min(self.initial * factor, self.maximum)


@dataclass(frozen=True)
class Rules:
    backoff: Backoff
    sync_timeout: timedelta = timedelta(hours=24)  # SYNC_TIMEOUT
    lead_time: timedelta = timedelta(days=1)  # LICENSE_LEAD_TIME
    default_licenses: tuple[LicenseRequest, ...] | None = None  # DEFAULT_LICENSES
    default_location: str | None = None  # DEFAULT_USAGE_LOCATION
    may_write_location: bool = True  # SET_USAGE_LOCATION
    # Group mode (LICENSING_MODE=group): SKUPARTNUMBER -> licensing group; None: direct.
    license_groups: Mapping[str, str] | None = None
    can_force_sync: bool = False  # a Cloud Sync job is configured (CLOUD_SYNC_JOB)
    # How soon to look again after forcing a sync, and while Entra processes group licenses.
    forced_sync_recheck: timedelta = timedelta(seconds=30)
    group_recheck: timedelta = timedelta(seconds=30)
    # (v1.2) the Teams Phone step: whether requests may carry `teams` (TEAMS_PHONE), how
    # long after the licenses are on it may wait for Teams (TEAMS_READY_TIMEOUT), and how
    # soon to look again once an order's intent is recorded or while the order runs.
    teams_phone: bool = False
    teams_ready_timeout: timedelta = timedelta(hours=24)
    teams_recheck: timedelta = timedelta(seconds=30)

    @property
    def group_mode(self) -> bool:
        return self.license_groups is not None

    def next_check(self, state: PendingState, now: datetime) -> datetime:
        """The backoff after the request's checks so far, never past its deadline."""
        return min(now + self.backoff.delay(max(state.checks, 1)), state.deadline)

    def soon(self, state: PendingState, now: datetime, recheck: timedelta) -> datetime:
        """A quick look again (a forced sync, group processing), within the first backoff
        step and the deadline."""
        return min(now + min(recheck, self.backoff.delay(1)), state.deadline)
