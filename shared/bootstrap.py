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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.data.tables import TableClient

from shared.adapters.graph import GraphDirectory, connect
from shared.adapters.ledger import TableLedger, ensure_table
from shared.adapters.pacing import TablePacingStore
from shared.adapters.queues import ensure_queues, storage_ports
from shared.adapters.storage import queue_service, table_service
from shared.decisions import Backoff
from shared.names import ALL_QUEUES, TABLE_REQUESTS
from shared.service.onboarding import OnboardingService, Policy
from shared.service.pacing import SharedPacer
from shared.service.ports import (
    Clock,
    Directory,
    EventSink,
    PacingStore,
    PendingQueue,
    PoisonQueue,
    RequestLedger,
)
from shared.settings import Settings


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
    """A built service and what must be closed when the process is done with it."""

    service: OnboardingService
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

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
    graph_options: Mapping[str, Any] | None = None,
    pacing: PacingStore | None = None,
) -> Wiring:
    """The service for `config`; every port given replaces the one built from settings.
    `decorate(name, port)` may wrap each port (name: directory, pending, poison, events,
    ledger) in an object with the same methods. A Graph directory built here paces
    itself with the other instances through `pacing` (by default a record in the ledger's
    table: guarantee 8); `graph_options` tune its sender (`GraphSender`'s keywords)."""
    closers: list[Callable[[], Awaitable[None]]] = []
    policy = policy or policy_from(config)
    if pending is None or poison is None or events is None:
        queues = queue_service(config.storage)
        if config.storage.connection_string is not None:
            # Local and key-based storage: create what Bicep creates in Azure.
            ensure_queues(queues, ALL_QUEUES)
        built = storage_ports(queues)
        pending, poison, events = pending or built[0], poison or built[1], events or built[2]
        closers.append(_closer(queues.close))
    needs_tables = ledger is None or (directory is None and pacing is None)
    table = _table(config, closers) if needs_tables else None
    if ledger is None:
        assert table is not None
        ledger = TableLedger(table)
    if directory is None:
        if pacing is None:
            assert table is not None
            pacing = TablePacingStore(table)
        directory = _graph(config, pacing, policy, graph_options or {}, closers)
    wrap = decorate or _unchanged
    service = OnboardingService(
        directory=wrap("directory", directory),
        pending=wrap("pending", pending),
        poison=wrap("poison", poison),
        events=wrap("events", events),
        ledger=wrap("ledger", ledger),
        clock=clock or SystemClock(),
        policy=policy,
    )
    return Wiring(service, closers)


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


def _table(config: Settings, closers: list[Callable[[], Awaitable[None]]]) -> TableClient:
    """The ledger's table, which also holds the pacing record."""
    tables = table_service(config.storage)
    if config.storage.connection_string is not None:
        ensure_table(tables)
    closers.append(_closer(tables.close))
    return tables.get_table_client(TABLE_REQUESTS)


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
