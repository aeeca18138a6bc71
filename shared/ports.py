"""What the service needs from the outside world, as Protocols, and the plain data it
exchanges with it. The real adapters (`shared.graph`, `shared.queues`) and the tests'
in-memory fakes both satisfy these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from shared.contract import Event, UserIdentifiers
from shared.errors import GraphError

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


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...
