"""What the decisions answer: the next step of a request (`Decision`, `Outcome`), license
plans, and what the service carries out to publish and keep (`Park`, `Conclude`,
`Republish`, `Ignore`). Plain frozen data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain.codes import Announcement, LicenseStatus
from shared.domain.events import Event, LicenseOutcome, Reason
from shared.domain.records import Progress
from shared.domain.state import PendingState
from shared.domain.tenant import DirectoryUser, LicenseAssignment


@dataclass(frozen=True)
class Wait:
    """Park the request until `next_check`; publish `announce` (once) with `reason` and
    `details` (extra `blocked` data) if set, then each of `more` (the Teams Phone step may
    announce `provisioning` and `blocked` at the same check). A `reason` says the request
    is blocked by it now."""

    state: PendingState
    next_check: datetime
    announce: Announcement | None = None
    reason: Reason | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    more: tuple[Announcement, ...] = ()


@dataclass(frozen=True)
class Fail:
    reason: Reason
    details: Mapping[str, Any] = field(default_factory=dict)
    # The state it was decided in, when the events need it (the Teams Phone step's user).
    state: PendingState | None = None


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


@dataclass(frozen=True)
class NumberAssigned:
    """(v1.2) The Teams Phone step is done: the number is on the user; `status` is
    `assigned` when this request's order put it there, else `already_assigned`."""

    state: PendingState
    status: LicenseStatus


Outcome = Wait | Fail | Licensed | NumberAssigned


@dataclass(frozen=True)
class CheckNumber:
    """(v1.2) Teams shows the user ready: read the number's assignment before ordering."""

    state: PendingState


@dataclass(frozen=True)
class OrderNumber:
    """(v1.2) The intent to order is on the pending queue and the number is free: send
    assignNumber, then decide with `after_order`."""

    state: PendingState


TeamsStep = Wait | Fail | NumberAssigned | CheckNumber | OrderNumber


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
