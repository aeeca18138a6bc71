"""What the use cases need from the outside world, as Protocols. The real adapters
(`shared.adapters`) and the tests' in-memory fakes both satisfy these; the data they
exchange is in `shared.domain.tenant` and `shared.domain.records`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from shared.domain.access import Caller
from shared.domain.codes import RequestStatus
from shared.domain.errors import GraphCall, GraphError
from shared.domain.events import Event
from shared.domain.outbox import Held, Sink
from shared.domain.pacing import PacingRecord, StoredPacing
from shared.domain.phone import TeamsRequest
from shared.domain.records import (
    Decided,
    Expired,
    IntakeBacklog,
    ParkedOverview,
    Progress,
    QueuedMessage,
    RequestRecord,
    SetAside,
    SetAsideStatus,
)
from shared.domain.requests import UserIdentifiers
from shared.domain.teams_tenant import NumberAssignment, NumberOperation, TeamsReading
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


class TeamsPhone(Protocol):
    """(v1.2) Microsoft Teams through Graph, as far as the Teams Phone step needs it."""

    async def configurations(self, user_ids: Sequence[str]) -> list[TeamsReading]:
        """Each user's Teams configuration, with as few requests as possible (`$batch`);
        same order as `user_ids`; never raises GraphError (a failed read is `TeamsUnread`)."""
        ...

    async def number(self, phone_number: str) -> NumberAssignment | None:
        """The number's assignment in the tenant's inventory (None: not in it); raises
        GraphError."""
        ...

    async def assign_number(self, user_id: str, teams: TeamsRequest) -> str | None:
        """Order the number for the user (assignNumber); the order's operation id, or None
        when Graph accepted it without saying where the operation is. Raises GraphError."""
        ...

    async def operation(self, operation_id: str) -> NumberOperation:
        """An order's operation; raises GraphError (kind NOT_FOUND: Graph no longer knows
        it)."""
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

    async def open(
        self, request_id: str, message_id: str, now: datetime, *, fingerprint: str | None = None
    ) -> RequestRecord | None:
        """Record the request as received by `message_id` (with the valid request's
        `fingerprint`); None when this created it, else what was already recorded (a
        redelivery, a duplicate, a decided request, or one posted over HTTP)."""
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


class IntakeQueue(Protocol):
    """`user-onboard` as the sweep watches it: only its head, never a receive (the queue
    trigger's messages are not the sweep's to take)."""

    async def backlog(self) -> IntakeBacklog:
        """When the oldest waiting message was put there, and about how many wait."""
        ...


class LedgerRetention(Protocol):
    """LEDGER_RETENTION: what the ledger holds about a request is deleted that long after
    its terminal event. An index, keyed by that time, says what to delete when, so finding
    what has expired reads the index's oldest entries, never the whole table."""

    async def track_request(self, request_id: str, terminal_at: datetime) -> None:
        """Index a decided request by the time of its terminal event, before that event is
        published (idempotent: the same request and time give the same entry)."""
        ...

    async def track_set_aside(self, item: SetAside, at: datetime) -> None:
        """A message about to be kept aside: deleted with its request when it names one,
        and otherwise (or if that request is never recorded) by its own time `at`."""
        ...

    async def expire(self, before: datetime, now: datetime, limit: int) -> Expired:
        """Delete what was indexed before `before`, at most `limit` index entries, oldest
        first; an entry still in use is looked at again a retention after `now`."""
        ...

    async def index_legacy(self, limit: int) -> int | None:
        """Index, at most `limit` rows at a time, what was recorded before the index
        existed; how many rows this call read, or None once all of them are indexed."""


class EventOutbox(Protocol):
    """Events on their way to both sinks (the events queue and the Event Grid topic): each
    is held before it is published and released once every sink has it, so a crash or a
    topic outage between the two leaves it here for the sweep (Azure Table storage in
    production: the ledger's table, partition `~outbox`)."""

    async def hold(self, event: Event, now: datetime, due_at: datetime) -> str | None:
        """Keep `event` as sent to no sink yet (again, if it was held before), due for the
        sweep at `due_at`; returns the row's version."""
        ...

    async def keep(
        self, event_id: str, sent: frozenset[Sink], due_at: datetime, problem: str
    ) -> None:
        """Note which sinks have the event, when the sweep should try the others, and why
        they did not take it (nothing when it was released meanwhile)."""
        ...

    async def release(self, event_id: str, version: str | None) -> None:
        """Every sink has it: forget it, unless it was held again since `version`."""
        ...

    async def due(self, now: datetime, limit: int) -> list[Held]:
        """At most `limit` held events due by `now`."""


class Submissions(Protocol):
    """Requests posted over HTTP (contract v1.2, "HTTP front door"), as the request ledger
    keeps them: a request row in status `queued` until a `user-onboard` message takes it
    over."""

    async def submit(
        self, request_id: str, fingerprint: str, submitted_by: str, now: datetime
    ) -> RequestRecord | None:
        """Record the request as `queued`, posted by the application `submitted_by`, only
        if nothing is recorded under `request_id`, in one step; None when this created
        it, else what is recorded (whoever opened it, queue or HTTP)."""
        ...

    async def take_over(self, request_id: str, message_id: str) -> bool:
        """Make `message_id` the one queue message that carries a `queued` request on:
        True for that message (again on its redelivery), False for any other (the request
        is another message's now: a duplicate)."""
        ...


class RequestQueue(Protocol):
    """`user-onboard`, as the HTTP front door writes it (as an HR system would)."""

    async def send(self, text: str) -> None:
        """Put one request on the queue, as plain text; it never expires."""
        ...


class Authenticator(Protocol):
    """Checks an HTTP call's `Authorization` header (the access token validator)."""

    async def authenticate(self, authorization: str | None) -> Caller:
        """The caller of a valid token; AccessTokenError (with its reason) otherwise."""
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
