"""What the decisions answer: the next step of a request (`Decision`, `Outcome`), license
plans, and what the service carries out to publish and keep (`Park`, `Conclude`,
`Republish`, `Ignore`). Plain frozen data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain.codes import Announcement
from shared.domain.events import Event, LicenseOutcome, Reason
from shared.domain.records import Progress
from shared.domain.state import PendingState
from shared.domain.tenant import DirectoryUser, LicenseAssignment


@dataclass(frozen=True)
class Wait:
    """Park the request until `next_check`; publish `announce` (once) with `reason` and
    `details` (extra `blocked` data) if set."""

    state: PendingState
    next_check: datetime
    announce: Announcement | None = None
    reason: Reason | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fail:
    reason: Reason
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class License:
    """The user is synced: go on to license assignment, from `state`."""

    state: PendingState
    user: DirectoryUser


@dataclass(frozen=True)
class ForceSync:
    """Not in Entra yet (or not synced): ask Cloud Sync to provision the user now, then
    decide with `after_forced_sync`."""

    state: PendingState


Decision = Wait | Fail | License | ForceSync


@dataclass(frozen=True)
class RefreshCatalog:
    """The cached SKU catalog looks stale (a SKU it does not know, a SKU without seats, or
    Graph saying so): read it again and plan once more, before deciding anything."""


@dataclass(frozen=True)
class LicensePlan:
    """What to write for a synced user: maybe a usageLocation, then the missing SKUs."""

    usage_location: str | None  # what the user will have; None when nothing is assigned
    write_usage_location: bool
    to_assign: tuple[LicenseAssignment, ...]
    outcomes: tuple[LicenseOutcome, ...]
    short_of_seats: tuple[str, ...]  # skuPartNumbers with no free seat in the catalog


@dataclass(frozen=True)
class GroupPlan:
    """Writes for group mode: maybe the usage location, the memberships to add, a request
    that Entra reprocess the user's group licenses; then wait for Entra to process them."""

    usage_location: str | None
    write_usage_location: bool
    add_to_groups: tuple[tuple[str, str], ...]  # (skuId, groupId)
    reprocess: bool


@dataclass(frozen=True)
class Licensed:
    """Every requested license is on the user."""

    user: DirectoryUser
    plan: LicensePlan


Outcome = Wait | Fail | Licensed


@dataclass(frozen=True)
class Park:
    """Publish the announcements, keep `state` on the pending queue until `next_check`,
    and show `progress` in the ledger."""

    announcements: tuple[Event, ...]
    state: PendingState
    next_check: datetime
    progress: Progress


@dataclass(frozen=True)
class Conclude:
    """Record the terminal event (the first one recorded stands), then publish it."""

    event: Event


@dataclass(frozen=True)
class Republish:
    """The request is decided: publish its outcome again (same id)."""

    event: Event


@dataclass(frozen=True)
class Ignore:
    """The request is in the hands of another delivery: nothing to do or publish."""

    why: str


@dataclass(frozen=True)
class TakeOver:
    """The request was posted over HTTP and waits for its message, which this one may be:
    take it over (one message wins; any other copy is a duplicate), then handle it."""


@dataclass(frozen=True)
class Hold:
    """A poisoned message held for replay: announce `event` (blocked/poisoned) and show
    `progress` in the ledger (contract v1.2, "Poison hold")."""

    event: Event
    progress: Progress
