"""In-memory fakes of the ports, for unit tests of the workflow and the service."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.access import AccessTokenError, Caller, Refusal
from shared.domain.codes import ForcedSyncStatus, RequestStatus
from shared.domain.errors import (
    EventGridRejected,
    EventGridUnavailable,
    GraphCall,
    GraphError,
    GraphErrorKind,
    LeaseLost,
    StorageUnavailable,
)
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
)
from shared.domain.requests import UserIdentifiers
from shared.domain.teams import OperationStatus
from shared.domain.teams_tenant import (
    NumberAssignment,
    NumberOperation,
    TeamsReading,
    TeamsUnknown,
    TeamsUnread,
    TeamsUser,
)
from shared.domain.tenant import (
    Ambiguous,
    CloudSyncJob,
    DirectoryUser,
    ForcedSyncResult,
    Found,
    LicenseAssignment,
    LicenseState,
    Lookup,
    LookupFailed,
    NotFound,
    ServicePlan,
    Sku,
    SkuCatalog,
)

MCOEV = "e43b5b99-8dfb-405f-9987-dc307f34bcbd"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
YAMMER = "7547a3fe-08ee-4ccb-b430-5077c5041653"
EXCHANGE = "efb87545-963c-4e0d-99df-69c6916d9eb0"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.current = start
        self.mono = 0.0

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.mono

    def advance(self, delta: timedelta) -> None:
        self.current += delta
        self.mono += delta.total_seconds()


@dataclass
class FakeUser:
    id: str
    upn: str
    employee_id: str | None = None
    immutable_id: str | None = None
    dn: str | None = None  # onPremisesDistinguishedName: what a forced sync names
    sync_enabled: bool | None = True
    usage_location: str | None = "FR"
    licenses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Group-based licensing: group id -> the state Entra reached for that group's SKU.
    group_states: dict[str, LicenseState] = field(default_factory=dict)

    def view(self) -> DirectoryUser:
        active = {s.sku_id for s in self.group_states.values() if s.active}
        return DirectoryUser(
            self.id,
            self.upn,
            self.sync_enabled,
            self.usage_location,
            frozenset(self.licenses) | active,
            tuple(self.group_states.values()),
        )


@dataclass
class FakeSku:
    id: str
    part_number: str
    enabled: int
    consumed: int = 0
    plans: tuple[tuple[str, str], ...] = ()

    def view(self) -> Sku:
        return Sku(
            self.id,
            self.part_number,
            "User",
            "Enabled",
            self.enabled,
            self.consumed,
            tuple(ServicePlan(pid, name) for pid, name in self.plans),
        )


def standard_skus() -> list[FakeSku]:
    return [
        FakeSku(
            MCOEV, "MCOEV", enabled=10, plans=(("4828c8ec-dc2e-4779-b502-87ac9ce28ab7", "MCOEV"),)
        ),
        FakeSku(
            E3,
            "ENTERPRISEPACK",
            enabled=10,
            plans=((YAMMER, "YAMMER_ENTERPRISE"), (EXCHANGE, "EXCHANGE_S_ENTERPRISE")),
        ),
    ]


class FakeDirectory:
    """A tiny Entra ID: users, SKUs with seats, and switches for Graph trouble."""

    def __init__(self) -> None:
        self.users: dict[str, FakeUser] = {}
        self.skus: list[FakeSku] = standard_skus()
        self.unavailable = False  # every call: GraphError unavailable (503)
        self.retry_after: float | None = None
        self.assign_refusal: GraphError | None = None
        self.denied: set[GraphCall] = set()  # calls answered 403 (a permission missing)
        self.write_lag = 0  # the next N writes answer 404 (replication lag)
        self.usage_location_lag = 0  # after a PATCH, the next N assignLicense: invalid location
        self.bug_for: set[str] = set()  # user ids whose assignLicense hits a bug (RuntimeError)
        # Cloud Sync: a forced sync of a known DN syncs that user at once.
        self.sync_rule = "rule-ad-to-entra"
        self.forced: list[str] = []  # the DNs provisionOnDemand was called with
        self.forced_answer: ForcedSyncResult | GraphError | None = None  # instead of syncing
        self.schema_reads = 0
        # Group-based licensing: group id -> the SKU it grants; errors to answer per SKU.
        self.groups: dict[str, str] = {}
        self.group_errors: dict[str, str] = {}  # skuId -> e.g. "MutuallyExclusiveViolation"
        self.memberships: list[tuple[str, str]] = []  # (group, user) adds, in order
        self.reprocessed: list[str] = []
        self.writes: list[tuple[str, str, Any]] = []
        self.lookup_calls: list[int] = []  # size of each lookup call
        # Runs once inside the next lookup, before it answers (a slow Graph, during which
        # something else happens: another sweep, a sync).
        self.during_next_lookup: Callable[[], Awaitable[None]] | None = None
        self.sku_reads = 0

    def add(self, user: FakeUser) -> FakeUser:
        self.users[user.id] = user
        return user

    def _trouble(self, call: GraphCall) -> None:
        if self.unavailable:
            raise GraphError(
                "Service unavailable",
                kind=GraphErrorKind.UNAVAILABLE,
                call=call,
                status=503,
                code="serviceNotAvailable",
                retry_after=self.retry_after,
            )
        if call in self.denied:
            raise GraphError(
                "Insufficient privileges to complete the operation.",
                kind=GraphErrorKind.ACCESS_DENIED,
                call=call,
                status=403,
                code="Authorization_RequestDenied",
            )
        if call.is_write and self.write_lag:
            self.write_lag -= 1
            raise GraphError(
                "Resource does not exist or one of its queried reference-property objects "
                "are not present.",
                kind=GraphErrorKind.NOT_FOUND,
                call=call,
                status=404,
                code="Request_ResourceNotFound",
            )

    def _lookup(self, ids: UserIdentifiers) -> Lookup:
        try:
            self._trouble(GraphCall.LOOKUP)
        except GraphError as exc:
            return LookupFailed(exc)
        for attr, value in (
            ("upn", ids.user_principal_name),
            ("employee_id", ids.employee_id),
            ("immutable_id", ids.immutable_id),
        ):
            if value is None:
                continue
            matches = [
                u for u in self.users.values() if (getattr(u, attr) or "").lower() == value.lower()
            ]
            if len(matches) > 1:
                return Ambiguous(attr, len(matches))
            if matches:
                return Found(matches[0].view())
        return NotFound()

    async def find_user(self, ids: UserIdentifiers) -> Lookup:
        self.lookup_calls.append(1)
        return self._lookup(ids)

    async def find_users(self, many: Sequence[UserIdentifiers]) -> list[Lookup]:
        self.lookup_calls.append(len(many))
        meanwhile, self.during_next_lookup = self.during_next_lookup, None
        if meanwhile is not None:
            await meanwhile()
        return [self._lookup(ids) for ids in many]

    async def subscribed_skus(self) -> SkuCatalog:
        self._trouble(GraphCall.SUBSCRIBED_SKUS)
        self.sku_reads += 1
        return SkuCatalog(tuple(s.view() for s in self.skus))

    async def set_usage_location(self, user_id: str, usage_location: str) -> None:
        self._trouble(GraphCall.SET_USAGE_LOCATION)
        self.writes.append(("usageLocation", user_id, usage_location))
        self.users[user_id].usage_location = usage_location

    async def assign_licenses(
        self,
        user_id: str,
        add: Sequence[LicenseAssignment],
        *,
        usage_location_written: bool = False,
    ) -> None:
        self._trouble(GraphCall.ASSIGN_LICENSE)
        if user_id in self.bug_for:
            raise RuntimeError(f"a bug met by user {user_id}")
        if self.assign_refusal is not None:
            raise self.assign_refusal
        user = self.users[user_id]
        if not user.usage_location or self.usage_location_lag:
            self.usage_location_lag = max(0, self.usage_location_lag - 1)
            raise refusal(
                "License assignment cannot be done for user with invalid usage location.",
                GraphErrorKind.USAGE_LOCATION_INVALID,
            )
        by_id = {s.id: s for s in self.skus}
        for item in add:
            sku = by_id.get(item.sku_id)
            if sku is None:
                raise refusal(
                    f"License {item.sku_id} does not correspond to a valid company License.",
                    GraphErrorKind.UNKNOWN_SKU,
                )
            if item.sku_id not in user.licenses and sku.consumed >= sku.enabled:
                raise refusal(
                    f"Subscription {item.sku_id} does not have any available licenses.",
                    GraphErrorKind.NO_SEATS,
                )
        for item in add:
            if item.sku_id not in user.licenses:
                by_id[item.sku_id].consumed += 1
            user.licenses[item.sku_id] = item.disabled_plan_ids
        self.writes.append(
            ("assignLicense", user_id, [(a.sku_id, a.disabled_plan_ids) for a in add])
        )

    async def add_group_member(self, group_id: str, user_id: str) -> None:
        self._trouble(GraphCall.ADD_GROUP_MEMBER)
        if group_id not in self.groups:
            raise GraphError(
                f"Resource '{group_id}' does not exist.",
                kind=GraphErrorKind.REJECTED,
                call=GraphCall.ADD_GROUP_MEMBER,
                status=404,
                code="Request_ResourceNotFound",
            )
        self.memberships.append((group_id, user_id))
        self.writes.append(("addGroupMember", user_id, group_id))
        self._process(self.users[user_id], group_id)

    async def reprocess_licenses(self, user_id: str) -> None:
        self._trouble(GraphCall.REPROCESS_LICENSES)
        self.reprocessed.append(user_id)
        user = self.users[user_id]
        for group_id, state in list(user.group_states.items()):
            if state.error == "CountViolation":
                self._process(user, group_id)

    def _process(self, user: FakeUser, group_id: str) -> None:
        """Entra's processing, at once: Active with a seat, or an Error state."""
        sku_id = self.groups[group_id]
        sku = next(s for s in self.skus if s.id == sku_id)
        error = self.group_errors.get(sku_id)
        if error is None and sku_id not in user.licenses and sku.consumed >= sku.enabled:
            error = "CountViolation"
        if error is None:
            sku.consumed += 0 if sku_id in user.licenses else 1
            user.group_states[group_id] = LicenseState(sku_id, group_id, "Active")
        else:
            user.group_states[group_id] = LicenseState(sku_id, group_id, "Error", error)

    async def sync_rule_id(self, job: CloudSyncJob) -> str:
        self._trouble(GraphCall.SYNC_SCHEMA)
        self.schema_reads += 1
        return self.sync_rule

    async def provision_on_demand(
        self, job: CloudSyncJob, rule_id: str, distinguished_name: str
    ) -> ForcedSyncResult:
        self._trouble(GraphCall.PROVISION_ON_DEMAND)
        assert rule_id == self.sync_rule
        self.forced.append(distinguished_name)
        if isinstance(self.forced_answer, GraphError):
            raise self.forced_answer
        if self.forced_answer is not None:
            return self.forced_answer
        for user in self.users.values():
            if user.dn == distinguished_name:
                user.sync_enabled = True
                return ForcedSyncResult(ForcedSyncStatus.REQUESTED, "provisioned")
        return ForcedSyncResult(ForcedSyncStatus.FAILED, "Cloud Sync answered Failure")

    def seats_used(self, sku_id: str) -> int:
        return next(s.consumed for s in self.skus if s.id == sku_id)


def refusal(message: str, kind: GraphErrorKind) -> GraphError:
    """assignLicense's 400 Request_BadRequest, as the adapter reads it."""
    return GraphError(
        message, kind=kind, call=GraphCall.ASSIGN_LICENSE, status=400, code="Request_BadRequest"
    )


@dataclass
class _Stored:
    id: str
    content: str
    visible_at: datetime
    pop_receipt: str
    dequeue_count: int = 0


class FakeQueue:
    """A storage queue with visibility timeouts driven by a FakeClock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.stored: list[_Stored] = []
        self.crash_on_complete = 0  # the next N deletes kill the "process" instead
        self._ids = itertools.count(1)

    def put(self, content: str, visible_in: timedelta = timedelta(0)) -> str:
        message_id = f"m{next(self._ids)}"
        self.stored.append(_Stored(message_id, content, self.clock.now() + visible_in, "r0"))
        return message_id

    async def park(self, content: str, visible_in: timedelta) -> None:
        self.put(content, visible_in)

    async def receive_due(self, max_messages: int, lease: timedelta) -> list[QueuedMessage]:
        due = [m for m in self.stored if m.visible_at <= self.clock.now()][:max_messages]
        out = []
        for m in due:
            m.visible_at = self.clock.now() + lease
            m.dequeue_count += 1
            m.pop_receipt = f"r{next(self._ids)}"
            out.append(QueuedMessage(m.id, m.pop_receipt, m.content, m.dequeue_count))
        return out

    receive = receive_due

    def _find(self, message: QueuedMessage) -> _Stored:
        for m in self.stored:
            if m.id == message.id and m.pop_receipt == message.pop_receipt:
                return m
        raise LeaseLost(f"message {message.id} gone or pop receipt stale")

    async def reschedule(self, message: QueuedMessage, content: str, visible_in: timedelta) -> None:
        stored = self._find(message)
        stored.content = content
        stored.visible_at = self.clock.now() + visible_in

    async def complete(self, message: QueuedMessage) -> None:
        if self.crash_on_complete:
            self.crash_on_complete -= 1
            raise Crash("killed before the message was deleted")
        self.stored.remove(self._find(message))

    remove = complete

    def contents(self) -> list[dict[str, Any]]:
        return [json.loads(m.content) for m in self.stored]


class Crash(BaseException):
    """A power cut at a given line: not an error the code could catch and handle."""


class FakeEventSink:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.fail_next = 0
        self.refuse: set[str] = set()  # event ids the queue refuses (a 4xx, not an outage)

    async def publish(self, event: Event) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise StorageUnavailable("storage is down")
        if event.id in self.refuse:
            raise ValueError(f"the queue refused event {event.id}")
        self.events.append(event)

    def of_type(self, suffix: str) -> list[Event]:
        return [e for e in self.events if e.type.endswith(suffix)]

    def terminal_ids(self) -> set[str]:
        return {
            e.id
            for e in self.events
            if e.type.rsplit(".", 1)[-1] in ("licensed", "failed", "rejected")
        }


class FakeLedger:
    """The request ledger in memory, with the table adapter's semantics."""

    def __init__(self) -> None:
        self.records: dict[str, RequestRecord] = {}
        self.set_aside_items_kept: list[SetAside] = []
        self.crash_on_close = 0  # the next N closes kill the "process" instead

    async def open(
        self, request_id: str, message_id: str, now: datetime, *, fingerprint: str | None = None
    ) -> RequestRecord | None:
        if request_id in self.records:
            return self.records[request_id]
        self.records[request_id] = RequestRecord(
            request_id, message_id, now, Progress("received", parked=False), None, fingerprint
        )
        return None

    async def read(self, request_id: str) -> RequestRecord | None:
        return self.records.get(request_id)

    async def decide(self, request_id: str, decided: Decided) -> Decided:
        record = self.records.get(request_id) or RequestRecord(
            request_id, "", decided.event.time, Progress("received", parked=False)
        )
        if record.decided is not None:
            return record.decided
        self.records[request_id] = replace(record, decided=decided)
        return decided

    async def claim(self, request_id: str, decided: Decided, now: datetime) -> bool:
        if request_id in self.records:
            return False
        self.records[request_id] = RequestRecord(
            request_id, decided.by, now, Progress("rejected", parked=False), decided
        )
        return True

    async def note(self, request_id: str, progress: Progress) -> None:
        record = self.records.get(request_id) or RequestRecord(
            request_id, "", T0, Progress("received", parked=False)
        )
        sent = {**record.progress.sent, **progress.sent}
        self.records[request_id] = replace(record, progress=replace(progress, sent=sent))

    async def close(self, request_id: str, status: str) -> None:
        if self.crash_on_close:
            self.crash_on_close -= 1
            raise Crash("killed after publishing, before the ledger was closed")
        record = self.records[request_id]
        progress = replace(record.progress, status=status, parked=False)
        self.records[request_id] = replace(record, progress=progress)

    async def parked(self) -> ParkedOverview:
        deadlines = [
            r.progress.deadline
            for r in self.records.values()
            if r.progress.parked and r.decided is None and r.progress.deadline is not None
        ]
        return ParkedOverview(len(deadlines), min(deadlines) if deadlines else None)

    async def set_aside(self, item: SetAside, now: datetime) -> None:
        if not any(
            (i.source, i.message_id) == (item.source, item.message_id)
            for i in self.set_aside_items_kept
        ):
            self.set_aside_items_kept.append(replace(item, set_aside_at=now, etag="1"))

    async def set_aside_items(self, *, statuses: Sequence[str] = ()) -> list[SetAside]:
        return [i for i in self.set_aside_items_kept if not statuses or i.status in statuses]

    async def move(self, item: SetAside, status: str) -> bool:
        for n, kept in enumerate(self.set_aside_items_kept):
            if (kept.source, kept.message_id) == (item.source, item.message_id):
                if item.etag is not None and kept.etag != item.etag:
                    return False
                etag = str(int(kept.etag or "0") + 1)
                self.set_aside_items_kept[n] = replace(kept, status=status, etag=etag)
                return True
        return False

    def decided_ids(self) -> set[str]:
        return {r.decided.event.id for r in self.records.values() if r.decided is not None}


class FakeIntakeQueue:
    """`user-onboard` as the sweep peeks it: messages waiting, with their insertion times."""

    def __init__(self) -> None:
        self.inserted: list[datetime] = []
        self.fail_next = 0

    async def backlog(self) -> IntakeBacklog:
        if self.fail_next:
            self.fail_next -= 1
            raise StorageUnavailable("storage is down")
        return IntakeBacklog(min(self.inserted, default=None), len(self.inserted))


class FakeRetention:
    """The retention index over a FakeLedger, with the table adapter's rules: a request is
    deleted once its terminal event is older than the cut-off and the ledger shows it
    published; a kept message goes with its request, or by its own time when it names
    none (unless still held)."""

    ACTIVE = ("held", "reporting", "replaying")

    def __init__(self, ledger: FakeLedger) -> None:
        self.ledger = ledger
        self.requests: dict[str, datetime] = {}
        self.kept: dict[tuple[str, str], datetime] = {}
        self.legacy_pages = 0  # pages the one-time scan still has to read

    async def track_request(self, request_id: str, terminal_at: datetime) -> None:
        self.requests[request_id] = terminal_at

    async def track_set_aside(self, item: SetAside, at: datetime) -> None:
        self.kept.setdefault((item.source, item.message_id), at)

    async def expire(self, before: datetime, now: datetime, limit: int) -> Expired:
        done = Expired()
        due = sorted((t, "r", r) for r, t in self.requests.items() if t < before)
        due += sorted((t, "w", f"{s}|{m}") for (s, m), t in self.kept.items() if t < before)
        for _, kind, key in sorted(due)[:limit]:
            done = done + (self._request(key) if kind == "r" else self._kept(key, now))
        return done

    def _request(self, request_id: str) -> Expired:
        del self.requests[request_id]
        record = self.ledger.records.get(request_id)
        if record is None or record.decided is None:
            return Expired(kept=1)
        if record.progress.status != record.decided.event.type.word:
            return Expired(kept=1)  # decided, never published: left for its replay
        del self.ledger.records[request_id]
        mine = [i for i in self.ledger.set_aside_items_kept if i.request_id == request_id]
        for item in mine:
            self.ledger.set_aside_items_kept.remove(item)
            self.kept.pop((item.source, item.message_id), None)
        return Expired(requests=1, rows=2 + len(mine))

    def _kept(self, key: str, now: datetime) -> Expired:
        source, _, message_id = key.partition("|")
        del self.kept[(source, message_id)]
        for item in self.ledger.set_aside_items_kept:
            if (item.source, item.message_id) == (source, message_id):
                if item.request_id is not None and item.request_id in self.ledger.records:
                    return Expired()  # it goes with its request
                if item.status in self.ACTIVE:
                    self.kept[(source, message_id)] = now  # looked at again later
                    return Expired(kept=1)
                self.ledger.set_aside_items_kept.remove(item)
                return Expired(rows=1)
        return Expired()

    async def index_legacy(self, limit: int) -> int | None:
        if not self.legacy_pages:
            return None
        self.legacy_pages -= 1
        return limit


class FakeTopic(FakeEventSink):
    """An Event Grid topic as the adapter presents it: events it took, and switches for its
    bad days (answers as the adapter translates them)."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.down: int | None = None  # every publish: EventGridUnavailable(status); 0: none
        self.rejects: set[str] = set()  # event ids refused as invalid (400)
        self.bug = False  # every publish raises a RuntimeError (a bug in the adapter)
        self.attempts = 0
        self.seconds_per_publish = 0.0  # advances the clock's monotonic time per publish

    async def publish(self, event: Event) -> None:
        self.attempts += 1
        if self.clock is not None:
            self.clock.mono += self.seconds_per_publish
        if self.down is not None:
            denied = self.down in (401, 403)
            raise EventGridUnavailable(
                f"topic: {self.down or 'no answer'}", status=self.down, access_denied=denied
            )
        if event.id in self.rejects:
            raise EventGridRejected(f"topic refused {event.id}", status=400, code="BadRequest")
        if self.bug:
            raise RuntimeError("a bug on the way to Event Grid")
        await super().publish(event)

    def ids(self) -> list[str]:
        return [e.id for e in self.events]


@dataclass
class _HeldRow:
    held: Held
    due_at: datetime


class FakeOutbox:
    """The event outbox in memory, with the table adapter's semantics (versions, an update
    that never brings a released row back)."""

    def __init__(self) -> None:
        self.rows: dict[str, _HeldRow] = {}
        self.calls: Counter[str] = Counter()
        self.due_error: Exception | None = None  # what reading the due events raises
        self._versions = itertools.count(1)

    async def hold(self, event: Event, now: datetime, due_at: datetime) -> str | None:
        self.calls["hold"] += 1
        version = str(next(self._versions))
        self.rows[event.id] = _HeldRow(Held(event, frozenset(), now, version), due_at)
        return version

    async def keep(
        self, event_id: str, sent: frozenset[Sink], due_at: datetime, problem: str
    ) -> None:
        self.calls["keep"] += 1
        row = self.rows.get(event_id)
        if row is not None:
            version = str(next(self._versions))
            held = replace(row.held, sent=sent, version=version, problem=problem)
            self.rows[event_id] = _HeldRow(held, due_at)

    async def release(self, event_id: str, version: str | None) -> None:
        self.calls["release"] += 1
        row = self.rows.get(event_id)
        if row is not None and (version is None or row.held.version == version):
            del self.rows[event_id]

    async def due(self, now: datetime, limit: int) -> list[Held]:
        self.calls["due"] += 1
        if self.due_error is not None:
            raise self.due_error
        return [r.held for _, r in sorted(self.rows.items()) if r.due_at <= now][:limit]

    def sent(self, event_id: str) -> frozenset[Sink]:
        return self.rows[event_id].held.sent


class FakeTeams:
    """Microsoft Teams in memory (the TeamsPhone port): user configurations, the number
    inventory, and assignNumber orders decided when they are read (`running_reads` reads
    say `running` first), against the tenant as it is then, as the emulator does."""

    def __init__(self) -> None:
        self.users: dict[str, TeamsUser] = {}  # user id -> configuration (absent: 404)
        self.numbers: dict[str, NumberAssignment] = {}
        self.orders: list[tuple[str, str, str]] = []  # (operation id, number, user id)
        self.outcomes: dict[str, NumberOperation] = {}  # operation id -> decided outcome
        self.reads: dict[str, int] = {}  # operation id -> reads so far
        self.running_reads = 1
        self.fail_next: list[str] = []  # statusDetails for the next orders to fail with
        self.refuse: dict[GraphCall, GraphError] = {}  # calls answered with this error
        self.crash_after_order = 0  # the next N orders kill the "process" once placed
        self.give_location = True
        self.configuration_calls: list[int] = []  # size of each configurations() call

    def user(self, user_id: str, account_type: str = "user", *features: str) -> None:
        numbers = self.users[user_id].telephone_numbers if user_id in self.users else ()
        self.users[user_id] = TeamsUser(account_type, frozenset(features), numbers)

    def ready(self, user_id: str) -> None:
        self.user(user_id, "user", "Teams", "PhoneSystem")

    def put_number(self, number: str, holder: str | None = None, status: str = "") -> None:
        self.numbers[number] = NumberAssignment(
            number,
            "operatorConnect",
            holder,
            status or ("userAssigned" if holder else "unassigned"),
            "activated",
        )

    def _refused(self, call: GraphCall) -> None:
        if call in self.refuse:
            raise self.refuse[call]

    async def configurations(self, user_ids: Sequence[str]) -> list[TeamsReading]:
        self.configuration_calls.append(len(user_ids))
        try:
            self._refused(GraphCall.TEAMS_CONFIGURATION)
        except GraphError as exc:
            return [TeamsUnread(exc) for _ in user_ids]
        return [self.users.get(u, TeamsUnknown()) for u in user_ids]

    async def number(self, phone_number: str) -> NumberAssignment | None:
        self._refused(GraphCall.NUMBER_ASSIGNMENTS)
        return self.numbers.get(phone_number)

    async def assign_number(self, user_id: str, teams: TeamsRequest) -> str | None:
        self._refused(GraphCall.ASSIGN_NUMBER)
        operation_id = f"op{len(self.orders) + 1}"
        self.orders.append((operation_id, teams.phone_number, user_id))
        held = self.numbers.get(teams.phone_number)
        self.numbers[teams.phone_number] = NumberAssignment(
            teams.phone_number,
            str(teams.number_type),
            held.assignment_target_id if held else None,
            held.assignment_status if held else "unassigned",
            "assignmentPending",
        )
        if self.crash_after_order:
            self.crash_after_order -= 1
            raise Crash("killed after the order was placed, before it was recorded")
        return operation_id if self.give_location else None

    async def operation(self, operation_id: str) -> NumberOperation:
        self._refused(GraphCall.NUMBER_OPERATION)
        self.reads[operation_id] = self.reads.get(operation_id, 0) + 1
        if operation_id not in self.outcomes and self.reads[operation_id] <= self.running_reads:
            return NumberOperation(OperationStatus.RUNNING)
        return self._decide(operation_id)

    def decide_all(self) -> None:
        """Decide every order still running (time passes in Teams)."""
        for operation_id, _, _ in self.orders:
            self._decide(operation_id)

    def _decide(self, operation_id: str) -> NumberOperation:
        if operation_id in self.outcomes:
            return self.outcomes[operation_id]
        _, number, user_id = next(o for o in self.orders if o[0] == operation_id)
        held = self.numbers[number]
        detail = self.fail_next.pop(0) if self.fail_next else None
        if detail is None and held.taken_from(user_id):
            detail = f"Telephone Number '{number}' has already been assigned to another user"
        if detail is None:
            self.numbers[number] = replace(
                held,
                assignment_target_id=user_id,
                assignment_status="userAssigned",
                activation_state="activated",
            )
            outcome = NumberOperation(OperationStatus.SUCCEEDED)
        else:
            self.numbers[number] = replace(held, activation_state="activated")
            outcome = NumberOperation(OperationStatus.FAILED, detail)
        self.outcomes[operation_id] = outcome
        return outcome


class FakeSubmissions:
    """The front door's side of the ledger, on a FakeLedger's records (the table adapter's
    semantics: insert-if-absent, and one carrier per request)."""

    def __init__(self, ledger: FakeLedger) -> None:
        self.ledger = ledger
        self.carriers: dict[str, str] = {}

    async def submit(
        self, request_id: str, fingerprint: str, submitted_by: str, now: datetime
    ) -> RequestRecord | None:
        known = self.ledger.records.get(request_id)
        if known is not None:
            return known
        self.ledger.records[request_id] = RequestRecord(
            request_id,
            "",
            now,
            Progress(RequestStatus.QUEUED, parked=False),
            fingerprint=fingerprint,
            submitted_by=submitted_by,
        )
        return None

    async def take_over(self, request_id: str, message_id: str) -> bool:
        if self.carriers.setdefault(request_id, message_id) != message_id:
            return False
        record = self.ledger.records[request_id]
        progress = replace(record.progress, status=RequestStatus.RECEIVED)
        self.ledger.records[request_id] = replace(record, owner=message_id, progress=progress)
        return True


class FakeRequestQueue:
    """`user-onboard` as the front door writes it; `fail` makes the next sends an outage."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.fail = 0

    async def send(self, text: str) -> None:
        if self.fail:
            self.fail -= 1
            raise StorageUnavailable("queue down")
        self.sent.append(text)


class FakeAuthenticator:
    """Tokens as names: `Bearer <name>` is the caller registered under that name; anything
    else is refused as the validator would (no header: missing_token, else invalid)."""

    def __init__(self, callers: dict[str, Caller]) -> None:
        self.callers = callers
        self.seen: list[str | None] = []

    async def authenticate(self, authorization: str | None) -> Caller:
        self.seen.append(authorization)
        if not authorization:
            raise AccessTokenError(
                Refusal.MISSING_TOKEN, "an Authorization: Bearer token is required"
            )
        caller = self.callers.get(authorization.removeprefix("Bearer "))
        if caller is None:
            raise AccessTokenError(Refusal.INVALID_SIGNATURE, "the token's signature is invalid")
        return caller


class FakePacingStore:
    """The shared pacing record in memory: versions are counters; loads, saves and lost
    conditional writes are counted (what storage would be asked)."""

    def __init__(self) -> None:
        self.record = PacingRecord()
        self.version: str | None = None
        self.loads = 0
        self.saves = 0
        self.conflicts = 0

    async def load(self) -> StoredPacing:
        self.loads += 1
        await asyncio.sleep(0)  # a request: others run meanwhile
        return StoredPacing(self.record, self.version)

    async def save(self, record: PacingRecord, version: str | None) -> str | None:
        self.saves += 1
        await asyncio.sleep(0)
        if version != self.version:
            self.conflicts += 1
            return None
        self.version = str(int(self.version or "0") + 1)
        self.record = record
        return self.version


class PacerClock:
    """Epoch seconds for pacers, on virtual time: a sleeper wakes when everything else
    that can run has run and no sleeper is due before it; it remembers when each sleeper
    meant to wake (`woke`) and how many slept at once at most (`most_sleeping`)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start
        self.woke: list[float] = []
        self.sleeping = 0
        self.most_sleeping = 0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._ticker: asyncio.Task[None] | None = None

    def __call__(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        target = self.t + seconds
        self.woke.append(target)
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (target, next(self._order), woken))
        self.sleeping += 1
        self.most_sleeping = max(self.most_sleeping, self.sleeping)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick())
        try:
            await woken
        finally:
            self.sleeping -= 1

    async def _tick(self) -> None:
        while self._sleepers:
            for _ in range(50):  # whatever can run without time passing
                await asyncio.sleep(0)
            target, _, woken = heapq.heappop(self._sleepers)
            self.t = max(self.t, target)
            woken.set_result(None)
