"""What the service needs from the outside world, as Protocols, and the plain data it
exchanges with it. The real adapters (`shared.graph`, `shared.queues`) and the tests'
in-memory fakes both satisfy these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.errors import GraphError
from shared.events import Event
from shared.requests import UserIdentifiers

# --- directory data ------------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryUser:
    """The fields of an Entra ID user the app decides on."""

    id: str
    user_principal_name: str
    sync_enabled: bool | None
    usage_location: str | None
    assigned_sku_ids: frozenset[str] = frozenset()

    @property
    def synced(self) -> bool:
        """Synced from AD now: `onPremisesSyncEnabled` is true (null/false mean not yet)."""
        return self.sync_enabled is True


@dataclass(frozen=True)
class Found:
    user: DirectoryUser


@dataclass(frozen=True)
class NotFound:
    pass


@dataclass(frozen=True)
class Ambiguous:
    """An employeeId or immutableId matched several users."""

    field: str
    count: int


@dataclass(frozen=True)
class LookupFailed:
    """Graph did not answer the lookup: what that means is `workflow.after_graph_error`'s call."""

    error: GraphError


Lookup = Found | NotFound | Ambiguous | LookupFailed


@dataclass(frozen=True)
class ServicePlan:
    id: str
    name: str


@dataclass(frozen=True)
class Sku:
    id: str
    part_number: str
    applies_to: str
    capability_status: str
    enabled_units: int
    consumed_units: int
    service_plans: tuple[ServicePlan, ...] = ()

    @property
    def free_units(self) -> int:
        return self.enabled_units - self.consumed_units


@dataclass(frozen=True)
class SkuCatalog:
    """The tenant's `subscribedSkus`, looked up by skuPartNumber (case-insensitive)."""

    skus: tuple[Sku, ...]
    by_part_number: dict[str, Sku] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "by_part_number", {sku.part_number.upper(): sku for sku in self.skus}
        )

    def find(self, part_number: str) -> Sku | None:
        return self.by_part_number.get(part_number.upper())


@dataclass(frozen=True)
class LicenseAssignment:
    sku_id: str
    disabled_plan_ids: tuple[str, ...] = ()


# --- ports ---------------------------------------------------------------------------


class Directory(Protocol):
    """Microsoft Graph, as far as onboarding needs it."""

    async def find_user(self, ids: UserIdentifiers) -> Lookup:
        """Look one user up (UPN, then employeeId, then immutableId); never raises GraphError."""
        ...

    async def find_users(self, many: Sequence[UserIdentifiers]) -> list[Lookup]:
        """Look many users up with as few requests as possible; same order as `many`."""
        ...

    async def subscribed_skus(self) -> SkuCatalog:
        """The tenant's SKUs; raises GraphError."""
        ...

    async def set_usage_location(self, user_id: str, usage_location: str) -> None:
        """PATCH the user's usageLocation; raises GraphError."""
        ...

    async def assign_licenses(
        self,
        user_id: str,
        add: Sequence[LicenseAssignment],
        *,
        usage_location_written: bool = False,
    ) -> None:
        """assignLicense; raises GraphError. `usage_location_written`: the app has just
        written the user's usageLocation, so an "invalid usage location" answer is
        replication lag worth a short retry."""
        ...


@dataclass(frozen=True)
class QueuedMessage:
    """A message received from a queue: enough to update or delete it later."""

    id: str
    pop_receipt: str
    content: str
    dequeue_count: int = 1


class PendingQueue(Protocol):
    """`user-onboard-pending`: requests waiting for their next check. Messages never expire."""

    async def park(self, content: str, visible_in: timedelta) -> None: ...

    async def receive_due(self, max_messages: int, lease: timedelta) -> list[QueuedMessage]:
        """Messages due now, hidden from other receivers for `lease`."""
        ...

    async def reschedule(
        self, message: QueuedMessage, content: str, visible_in: timedelta
    ) -> None: ...

    async def complete(self, message: QueuedMessage) -> None: ...


class PoisonQueue(Protocol):
    """`user-onboard-poison`: messages the host gave up on."""

    async def receive(self, max_messages: int, lease: timedelta) -> list[QueuedMessage]: ...

    async def remove(self, message: QueuedMessage) -> None: ...


class EventSink(Protocol):
    """`user-onboard-events`."""

    async def publish(self, event: Event) -> None: ...


# --- the request ledger ----------------------------------------------------------------


@dataclass(frozen=True)
class Decided:
    """A terminal outcome, recorded before it is published: a replay publishes this event
    again instead of deciding anew (guarantee 7). `by` is the queue message that decided."""

    event: Event
    by: str


@dataclass(frozen=True)
class Progress:
    """What the ledger shows of a request that is not finished (the operators' view)."""

    status: str  # received | scheduled | waiting | blocked
    parked: bool  # a pending message holds the request's state
    deadline: datetime | None = None
    next_check_at: datetime | None = None
    not_before: datetime | None = None
    last_seen: str | None = None
    last_error: Mapping[str, Any] | None = None
    user_id: str | None = None
    sent: Mapping[str, datetime] = field(default_factory=dict)  # event type word -> time


@dataclass(frozen=True)
class RequestRecord:
    """One request as the ledger knows it."""

    request_id: str
    owner: str  # the queue message that opened it (its first valid delivery)
    received_at: datetime
    progress: Progress
    decided: Decided | None = None

    @property
    def status(self) -> str:
        return self.decided.event.type.rsplit(".", 1)[-1] if self.decided else self.progress.status


@dataclass(frozen=True)
class SetAside:
    """A queue message the app could not handle, kept for operators (never lost)."""

    source: str  # "poison" | "pending"
    message_id: str
    content: str
    reason: str
    request_id: str | None = None
    reported: bool = False  # a terminal event answers it already


class RequestLedger(Protocol):
    """A record of requests keyed by requestId (Azure Table storage in production)."""

    async def open(self, request_id: str, message_id: str, now: datetime) -> RequestRecord | None:
        """Record the request as received by `message_id`; None when this created it,
        else what was already recorded (a redelivery, a duplicate, or a decided request)."""
        ...

    async def read(self, request_id: str) -> RequestRecord | None: ...

    async def decide(self, request_id: str, decided: Decided) -> Decided:
        """Record a terminal outcome unless one is recorded already; return the one that
        stands (the first decision wins, for ever)."""
        ...

    async def claim(self, request_id: str, decided: Decided, now: datetime) -> bool:
        """Record `decided` only if nothing at all is recorded for `request_id`, in one
        step; False when the requestId is already in use. For messages that must not take
        over another message's request (an invalid or a poisoned one)."""
        ...

    async def note(self, request_id: str, progress: Progress) -> None:
        """Update the operators' view of a request still in progress."""
        ...

    async def set_aside(self, item: SetAside, now: datetime) -> None:
        """Keep a message the app could not handle (idempotent per source and message id)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...
