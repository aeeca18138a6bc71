"""The composition root: settings read once, clients built once per process, and the
service wired to them. Nothing here runs at import time.

`build_service(settings, ...)` wires a service from settings and takes any port as an
override (benchmarks and test harnesses swap in their own pieces), and `decorate` wraps
every port on its way in (instrumentation, fault injection); `service()` is the process's
cached one, which the triggers use, and `use()` installs one built elsewhere (a host that
wires the service itself, such as the stress suite's crash-point app).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.data.tables import TableClient

from shared.adapters.graph import connect
from shared.adapters.ledger import TableLedger, ensure_table
from shared.adapters.queues import StorageRequestQueue, ensure_queues, storage_ports
from shared.adapters.storage import queue_service, table_service
from shared.adapters.submissions import TableSubmissions
from shared.decisions import Backoff
from shared.domain.access import Caller
from shared.names import ALL_QUEUES, QUEUE_REQUESTS, TABLE_REQUESTS
from shared.service.front_door import FrontDoor
from shared.service.onboarding import OnboardingService, Policy
from shared.service.ports import (
    Authenticator,
    Clock,
    Directory,
    EventSink,
    PendingQueue,
    PoisonQueue,
    RequestLedger,
    RequestQueue,
    Submissions,
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
    submissions: Submissions | None = None,
    requests_queue: RequestQueue | None = None,
    authenticator: Authenticator | None = None,
) -> Wiring:
    """The service for `config`, with the HTTP front door when there are `submissions`
    and a `requests_queue`; every port given replaces the one built from settings.
    `decorate(name, port)` may wrap each port (name: directory, pending, poison, events,
    ledger, submissions, requests) in an object with the same methods."""
    closers: list[Callable[[], Awaitable[None]]] = []
    if pending is None or poison is None or events is None:
        built = _queue_ports(config, closers)
        pending, poison, events = pending or built[0], poison or built[1], events or built[2]
        requests_queue = requests_queue or built[3]
    if ledger is None:
        table = _ledger_table(config, closers)
        ledger, submissions = TableLedger(table), submissions or TableSubmissions(table)
    directory = directory if directory is not None else _graph(config, closers)
    wrap = decorate or _unchanged
    clock, policy = clock or SystemClock(), policy or policy_from(config)
    ledger = wrap("ledger", ledger)
    submissions = wrap("submissions", submissions) if submissions is not None else None
    service = OnboardingService(
        directory=wrap("directory", directory),
        pending=wrap("pending", pending),
        poison=wrap("poison", poison),
        events=wrap("events", events),
        ledger=ledger,
        clock=clock,
        policy=policy,
        submissions=submissions,
    )
    requests = wrap("requests", requests_queue) if requests_queue is not None else None
    door = _front_door(config, authenticator, submissions, requests, ledger, clock, policy)
    return Wiring(service, closers, door)


def _front_door(
    config: Settings,
    authenticator: Authenticator | None,
    submissions: Submissions | None,
    requests: RequestQueue | None,
    ledger: RequestLedger,
    clock: Clock,
    policy: Policy,
) -> FrontDoor | None:
    if submissions is None or requests is None:
        return None
    return FrontDoor(
        authenticator=authenticator or _validator(config),
        submissions=submissions,
        ledger=ledger,
        queue=requests,
        clock=clock,
        rules=policy.rules,
    )


def _queue_ports(
    config: Settings, closers: list[Callable[[], Awaitable[None]]]
) -> tuple[PendingQueue, PoisonQueue, EventSink, RequestQueue]:
    queues = queue_service(config.storage)
    if config.storage.connection_string is not None:
        # Local and key-based storage: create what Bicep creates in Azure.
        ensure_queues(queues, ALL_QUEUES)
    closers.append(_closer(queues.close))
    pending, poison, events = storage_ports(queues)
    return pending, poison, events, StorageRequestQueue(queues.get_queue_client(QUEUE_REQUESTS))


def _graph(config: Settings, closers: list[Callable[[], Awaitable[None]]]) -> Directory:
    graph = connect(
        config.graph_base_url, local=config.graph_is_local, client_id=config.azure_client_id
    )
    closers.append(graph.aclose)
    return graph


def _ledger_table(config: Settings, closers: list[Callable[[], Awaitable[None]]]) -> TableClient:
    tables = table_service(config.storage)
    if config.storage.connection_string is not None:
        ensure_table(tables)
    closers.append(_closer(tables.close))
    return tables.get_table_client(TABLE_REQUESTS)


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
