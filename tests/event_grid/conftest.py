"""Fixtures of the Event Grid stand-in tests: one Azurite per module, and a stand-in per
test whose subscriptions deliver to queues of that test's own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from local_stack.azurite import Azurite, start_azurite
from local_stack.event_grid import EventGridStandIn, start_event_grid
from tests.event_grid.standin_support import StandInFactory


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with start_azurite(Path(tmp_path_factory.mktemp("event-grid"))) as running:
        yield running


@pytest.fixture
def queues(azurite: Azurite) -> Iterator[QueueServiceClient]:
    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    yield service
    service.close()


@pytest.fixture
def queue_prefix(request: pytest.FixtureRequest) -> str:
    """A queue-name prefix of this test's own (queue names: lower case, digits, hyphens)."""
    words = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return words[-40:].strip("-")


@pytest.fixture
def make_standin(azurite: Azurite, queues: QueueServiceClient) -> Iterator[StandInFactory]:
    """Start a stand-in on Azurite with the given subscriptions, creating their queues
    unless `create_queues=False`."""
    started: list[EventGridStandIn] = []

    def make(
        subscriptions: list[dict[str, Any]] | None = None,
        *,
        create_queues: bool = True,
        **options: Any,
    ) -> EventGridStandIn:
        for document in subscriptions or []:
            if create_queues:
                queues.create_queue(document["destination"]["properties"]["queueName"])
        options.setdefault("retry_scale", 0.01)
        standin = start_event_grid(
            storage_connection_string=azurite.connection_string,
            subscriptions=subscriptions or [],
            **options,
        )
        started.append(standin)
        return standin

    yield make
    for standin in started:
        standin.stop()
