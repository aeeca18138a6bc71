"""The composition root: settings read once, clients built once per process, and the
service wired to them. Nothing here runs at import time.

`build_service(settings, ...)` wires a service from settings and takes any port as an
override (benchmarks and test harnesses swap in their own pieces), and `decorate` wraps
every port on its way in (instrumentation, fault injection); `service()` is the process's
cached one, which the triggers use (`front_door()` for the HTTP triggers), and `use()`
installs one built elsewhere (a host that wires the service itself, such as the stress
suite's crash-point app).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.adapters.graph import GraphDirectory, GraphTeams, connect
from shared.adapters.ledger import TableLedger, ensure_table
from shared.adapters.outbox import TableOutbox
from shared.adapters.pacing import TablePacingStore
from shared.adapters.queues import (
    StorageRequestQueue,
    ensure_queues,
    intake_queue,
    storage_ports,
)
from shared.adapters.retention import TableRetention
from shared.adapters.storage import queue_service, table_service
from shared.adapters.submissions import TableSubmissions
from shared.decisions import Backoff
from shared.domain.access import Caller
from shared.names import ALL_QUEUES, QUEUE_REQUESTS, TABLE_REQUESTS
from shared.service import OnboardingService, Policy
from shared.service.front_door import FrontDoor
from shared.service.pacing import SharedPacer
from shared.service.ports import (
    Authenticator,
    Clock,
    Directory,
    EventOutbox,
    EventSink,
    IntakeQueue,
    LedgerRetention,
    PacingStore,
    PendingQueue,
    PoisonQueue,
    RequestLedger,
    RequestQueue,
    Submissions,
    TeamsPhone,
)
from shared.settings import ApiAuthSettings, Settings


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def policy_from(config: Settings) -> Policy:
    return Policy(
        backoff=Backoff(config.recheck_initial_delay, config.recheck_max_delay),
        sync_timeout=config.sync_timeout,
        default_licenses=config.default_licenses,
        default_usage_location=config.default_usage_location,
        set_usage_location=config.set_usage_location,
        poison_hold=config.poison_hold,
        cloud_sync_job=config.cloud_sync_job,
        license_lead_time=config.license_lead_time,
        license_groups=config.license_groups if config.licensing_mode == "group" else None,
        ledger_retention=config.ledger_retention,
        teams_phone=config.teams_phone,
        teams_ready_timeout=config.teams_ready_timeout,
    )


@dataclass
class Wiring:
    """A built service (and front door) and what must be closed when the process is done
    with them."""

    service: OnboardingService
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    front_door: FrontDoor | None = None

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            await close()
        self.closers.clear()


def build_service(
    config: Settings,
    *,
    directory: Directory | None = None,
    pending: PendingQueue | None = None,
    poison: PoisonQueue | None = None,
    events: EventSink | None = None,
    ledger: RequestLedger | None = None,
    clock: Clock | None = None,
    policy: Policy | None = None,
    decorate: Callable[[str, Any], Any] | None = None,
    topic: EventSink | None = None,
    outbox: EventOutbox | None = None,
    intake: IntakeQueue | None = None,
    retention: LedgerRetention | None = None,
    teams: TeamsPhone | None = None,
    submissions: Submissions | None = None,
    requests_queue: RequestQueue | None = None,
    authenticator: Authenticator | None = None,
    pacing: PacingStore | None = None,
    graph_options: Mapping[str, Any] | None = None,
) -> Wiring:
    """The service for `config`, and its HTTP front door. A port given replaces the one built
    from the settings (where it applies: `_completed`); `decorate(name, port)` wraps each
    (`requests` is `requests_queue`); `graph_options` tune a Graph directory's sender."""
    closers: list[Callable[[], Awaitable[None]]] = []
    clock, policy = clock or SystemClock(), policy or policy_from(config)
    given: dict[str, Any] = {
        "directory": directory,
        "pending": pending,
        "poison": poison,
        "events": events,
        "ledger": ledger,
        "topic": topic,
        "outbox": outbox,
        "intake": intake,
        "retention": retention,
        "teams": teams,
        "submissions": submissions,
        "requests": requests_queue,
    }
    wrap = decorate or _unchanged
    completed = _completed(config, given, closers, policy, pacing, graph_options)
    ports: dict[str, Any] = {
        name: None if port is None else wrap(name, port) for name, port in completed.items()
    }
    requests = ports.pop("requests")
    service = OnboardingService(**ports, clock=clock, policy=policy)
    door = _front_door(config, authenticator, ports, requests, clock, policy)
    return Wiring(service, closers, door)


def _completed(
    config: Settings,
    ports: dict[str, Any],
    closers: list[Callable[[], Awaitable[None]]],
    policy: Policy,
    pacing: PacingStore | None,
    graph_options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The ports given, and those built from the settings for the ones not given, where they
    apply: the topic and outbox with EVENT_GRID_TOPIC_ENDPOINT, the intake watch with the
    queues, retention and submissions with the ledger, Teams with Graph. A Graph directory
    built here paces itself with the app's other instances through `pacing` (by default a
    record in the ledger's table: guarantee 8)."""
    if ports["pending"] is None or ports["poison"] is None or ports["events"] is None:
        built, intake, requests = _queue_ports(config, closers)
        for name, port in zip(("pending", "poison", "events"), built, strict=True):
            ports[name] = ports[name] or port
        ports["intake"] = ports["intake"] or intake
        ports["requests"] = ports["requests"] or requests
    if ports["topic"] is None and config.event_grid_topic_endpoint is not None:
        ports["topic"] = _topic(config.event_grid_topic_endpoint, config.azure_client_id, closers)
    if ports["topic"] is None:
        ports["outbox"] = None
    if (
        ports["ledger"] is None
        or (ports["topic"] is not None and ports["outbox"] is None)
        or (ports["directory"] is None and pacing is None)
    ):
        ledger, outbox, retention, submissions, shared_pace = _table_ports(config, closers)
        if ports["ledger"] is None:
            ports["ledger"], ports["retention"] = ledger, ports["retention"] or retention
            ports["submissions"] = ports["submissions"] or submissions
        if ports["topic"] is not None:
            ports["outbox"] = ports["outbox"] or outbox
        pacing = pacing or shared_pace
    if ports["directory"] is None:
        assert pacing is not None
        ports["directory"] = _graph(config, pacing, policy, graph_options or {}, closers)
    if ports["teams"] is None and isinstance(ports["directory"], GraphDirectory):
        ports["teams"] = GraphTeams(ports["directory"].adapter)
    return ports


def _front_door(
    config: Settings,
    authenticator: Authenticator | None,
    ports: dict[str, Any],
    requests: RequestQueue | None,
    clock: Clock,
    policy: Policy,
) -> FrontDoor | None:
    """The HTTP front door on the service's own ledger, when there are submissions and a
    queue to put requests on."""
    if ports["submissions"] is None or requests is None:
        return None
    return FrontDoor(
        authenticator=authenticator or _validator(config),
        submissions=ports["submissions"],
        ledger=ports["ledger"],
        queue=requests,
        clock=clock,
        rules=policy.rules,
    )


def _queue_ports(
    config: Settings, closers: list[Callable[[], Awaitable[None]]]
) -> tuple[tuple[PendingQueue, PoisonQueue, EventSink], IntakeQueue, RequestQueue]:
    queues = queue_service(config.storage)
    if config.storage.connection_string is not None:
        # Local and key-based storage: create what Bicep creates in Azure.
        ensure_queues(queues, ALL_QUEUES)
    closers.append(_closer(queues.close))
    requests = StorageRequestQueue(queues.get_queue_client(QUEUE_REQUESTS))
    return storage_ports(queues), intake_queue(queues), requests


def _topic(
    endpoint: str, client_id: str | None, closers: list[Callable[[], Awaitable[None]]]
) -> EventSink:
    """The Event Grid publisher (imported here: a cold start without a topic skips it)."""
    from shared.adapters.event_grid import EventGridSink

    sink = EventGridSink.connect(endpoint, client_id=client_id)
    closers.append(sink.aclose)
    return sink


def _graph(
    config: Settings,
    pacing: PacingStore,
    policy: Policy,
    options: Mapping[str, Any],
    closers: list[Callable[[], Awaitable[None]]],
) -> GraphDirectory:
    """Graph, paced with the app's other instances through the shared record."""
    pacer = SharedPacer(pacing, policy.pacing)
    graph = connect(
        config.graph_base_url,
        local=config.graph_is_local,
        client_id=config.azure_client_id,
        pacer=pacer,
        **options,
    )
    closers += [graph.aclose, pacer.settled]  # closed in reverse: 429s shared first
    return graph


def _table_ports(
    config: Settings, closers: list[Callable[[], Awaitable[None]]]
) -> tuple[RequestLedger, EventOutbox, LedgerRetention, Submissions, PacingStore]:
    """The ledger, the event outbox, the retention index, the front door's submissions and
    the pacing record, on one table client."""
    tables = table_service(config.storage)
    if config.storage.connection_string is not None:
        ensure_table(tables)
    table = tables.get_table_client(TABLE_REQUESTS)
    closers.append(_closer(tables.close))
    return (
        TableLedger(table),
        TableOutbox(table),
        TableRetention(table),
        TableSubmissions(table),
        TablePacingStore(table),
    )


T = TypeVar("T")


def _unchanged(name: str, port: T) -> T:
    return port


def _closer(close: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        close()

    return run


_settings: Settings | None = None
_wiring: Wiring | None = None


def settings() -> Settings:
    """The app settings, read from the environment on first use; SettingsError names a
    missing or malformed one."""
    global _settings
    if _settings is None:
        _settings = Settings.from_env(os.environ)
    return _settings


def service() -> OnboardingService:
    """The process's service; its Graph client and SKU cache live across invocations."""
    global _wiring
    if _wiring is None:
        _wiring = build_service(settings())
    return _wiring.service


def front_door() -> FrontDoor:
    """The process's HTTP front door, beside its service (the same clients)."""
    service()
    assert _wiring is not None
    if _wiring.front_door is None:  # a wiring installed by `use` without one
        raise RuntimeError("this process's wiring has no HTTP front door")
    return _wiring.front_door


def use(wiring: Wiring) -> None:
    """Make `wiring` the process's service (a host that wires the service itself)."""
    global _wiring
    _wiring = wiring


async def aclose() -> None:
    """Close the process's clients and forget settings and service (tests, shutdown)."""
    global _settings, _wiring
    if _wiring is not None:
        await _wiring.aclose()
    _settings = _wiring = None


def _validator(config: Settings) -> Authenticator | None:
    """One validator per process (it caches the tenant's keys), built at the first HTTP
    call; None: the front door is off."""
    return _FirstCall(config.api_auth) if config.api_auth is not None else None


class _FirstCall:
    """The access token validator, imported and built on the first HTTP call, so that a
    worker that only handles the queue does not import PyJWT and its crypto at start."""

    def __init__(self, settings: ApiAuthSettings) -> None:
        self._settings = settings
        self._validator: Authenticator | None = None

    async def authenticate(self, authorization: str | None) -> Caller:
        if self._validator is None:
            from shared.adapters.access_tokens import AccessTokenValidator

            self._validator = AccessTokenValidator(self._settings)
        return await self._validator.authenticate(authorization)
