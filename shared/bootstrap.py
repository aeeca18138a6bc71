"""The composition root: settings read once, clients built once per process, and the
service wired to them. Nothing here runs at import time.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from azure.storage.queue import QueueServiceClient

from shared.graph import GraphDirectory, connect
from shared.names import ALL_QUEUES
from shared.queues import ensure_queues, service_client, storage_ports
from shared.service import OnboardingService, Policy
from shared.settings import Settings
from shared.workflow import Backoff

_settings: Settings | None = None
_service: OnboardingService | None = None
_directory: GraphDirectory | None = None
_queues: QueueServiceClient | None = None


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def settings() -> Settings:
    """The app settings, read from the environment on first use; SettingsError names a
    missing or malformed one."""
    global _settings
    if _settings is None:
        _settings = Settings.from_env(os.environ)
    return _settings


def policy_from(config: Settings) -> Policy:
    return Policy(
        backoff=Backoff(config.recheck_initial_delay, config.recheck_max_delay),
        sync_timeout=config.sync_timeout,
        default_licenses=config.default_licenses,
        default_usage_location=config.default_usage_location,
        set_usage_location=config.set_usage_location,
    )


def service() -> OnboardingService:
    """The process's service; its Graph client and SKU cache live across invocations."""
    global _service, _directory, _queues
    if _service is None:
        config = settings()
        _queues = queues = service_client(config.storage)
        if config.storage.connection_string is not None:
            # Local and key-based storage: create what Bicep creates in Azure.
            ensure_queues(queues, ALL_QUEUES)
        pending, poison, events = storage_ports(queues)
        _directory = directory = connect(
            config.graph_base_url, local=config.graph_is_local, client_id=config.azure_client_id
        )
        _service = OnboardingService(
            directory=directory,
            pending=pending,
            poison=poison,
            events=events,
            clock=SystemClock(),
            policy=policy_from(config),
        )
    return _service


async def aclose() -> None:
    """Close the process's Graph client and forget settings and service (tests, shutdown)."""
    global _settings, _service, _directory, _queues
    if _directory is not None:
        await _directory.aclose()
    if _queues is not None:
        _queues.close()
    _settings = _service = _directory = _queues = None
