"""What the use cases need from the outside world, as Protocols. The real adapters
(`shared.adapters`) and the tests' in-memory fakes both satisfy these; the data they
exchange is in `shared.domain.tenant` and `shared.domain.records`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from shared.domain.codes import RequestStatus
from shared.domain.errors import GraphCall, GraphError
from shared.domain.events import Event
from shared.domain.pacing import PacingRecord, StoredPacing
from shared.domain.records import (
    Decided,
    ParkedOverview,
    Progress,
    QueuedMessage,
    RequestRecord,
    SetAside,
    SetAsideStatus,
)
from shared.domain.requests import UserIdentifiers
from shared.domain.tenant import (
    CloudSyncJob,
    ForcedSyncResult,
    LicenseAssignment,
    Lookup,
    SkuCatalog,
)


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

    async def add_group_member(self, group_id: str, user_id: str) -> None:
        """Add the user to a licensing group; already a member counts as done. GraphError:
        kind NOT_FOUND for the user (replication lag), REJECTED for an unknown group."""
        ...

    async def reprocess_licenses(self, user_id: str) -> None:
        """Ask Entra to process the user's group licenses again."""
        ...

    async def sync_rule_id(self, job: CloudSyncJob) -> str:
        """The id of the job's Active Directory to Entra ID rule (from its schema)."""
        ...

    async def provision_on_demand(
        self, job: CloudSyncJob, rule_id: str, distinguished_name: str
    ) -> ForcedSyncResult:
        """Ask Cloud Sync to provision one AD user now; GraphError when Graph refuses the
        call (a per-object failure in its reply is a `failed` result, not an error)."""
        ...


class PendingQueue(Protocol):
    """`user-onboard-pending`: requests waiting for their next check. Messages never expire."""

    async def park(self, content: str, visible_in: timedelta) -> None: ...

    async def receive_due(self, max_messages: int, lease: timedelta) -> list[QueuedMessage]:
        """Messages due now, hidden from other receivers for `lease`."""
        ...

    async def reschedule(self, message: QueuedMessage, content: str, visible_in: timedelta) -> None:
        """Replace the content and hide it again; LeaseLost if another receiver has it."""
        ...

    async def complete(self, message: QueuedMessage) -> None:
        """Delete it; LeaseLost if another receiver has it or it is gone."""
        ...


class PoisonQueue(Protocol):
    """`user-onboard-poison`: messages the host gave up on."""

    async def receive(self, max_messages: int, lease: timedelta) -> list[QueuedMessage]: ...

    async def remove(self, message: QueuedMessage) -> None:
        """Delete it; LeaseLost if another receiver has it or it is gone."""
        ...


class EventSink(Protocol):
    """`user-onboard-events`."""

    async def publish(self, event: Event) -> None: ...


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

    async def close(self, request_id: str, status: RequestStatus) -> None:
        """The request's outcome is published: it is no longer parked (idempotent)."""
        ...

    async def parked(self) -> ParkedOverview:
        """How many requests are parked, and the earliest deadline among them."""
        ...

    async def set_aside(self, item: SetAside, now: datetime) -> None:
        """Keep a message the app could not handle (idempotent per source and message id:
        the first copy kept stays)."""
        ...

    async def set_aside_items(self, *, statuses: Sequence[SetAsideStatus] = ()) -> list[SetAside]:
        """Messages kept, optionally only those in some statuses, with their etags."""
        ...

    async def move(self, item: SetAside, status: SetAsideStatus) -> bool:
        """Change a kept message's status if it is still what `item` read (its etag);
        False when something else changed it first (an operator's replay, another sweep)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class PacingStore(Protocol):
    """The one record every instance of the app shares about Graph's budget (a table
    entity in the app's storage account), changed only if unchanged since it was read."""

    async def load(self) -> StoredPacing:
        """The record and its version; a blank record with version None when none is stored."""
        ...

    async def save(self, record: PacingRecord, version: str | None) -> str | None:
        """Store `record` if the stored one is still `version` (None: if there is none);
        the new version, or None when another instance changed it first."""
        ...


class Pacer(Protocol):
    """The app's pace at Graph, shared by its instances (guarantee 8): what every call on
    the identity budget goes through before it is sent (`GraphSender`)."""

    @property
    def horizon(self) -> float:
        """The longest a call waits for Graph in its invocation (its turn, or a pause)."""
        ...

    async def wait_turn(self, call: GraphCall) -> None:
        """Wait until `call` may be sent: a write takes one of the app's write turns, any
        call waits out a pause another instance was told about. GraphError (throttled, not
        sent, `retry_after` = when) when that is further than the pacing horizon."""
        ...

    def throttled(self, call: GraphCall, error: GraphError) -> None:
        """Graph answered `call` with a 429: hold this process at once, and the other
        instances as soon as the shared record says so."""
        ...
