"""Helpers of the Event Grid stand-in tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from azure.storage.queue import QueueServiceClient

from local_stack.event_grid import EventGridStandIn

StandInFactory = Callable[..., EventGridStandIn]


def subscription(name: str, queue: str, **filters: Any) -> dict[str, Any]:
    """A Storage-queue subscription document; `ttl` sets the message time to live."""
    properties: dict[str, Any] = {"queueName": queue}
    if "ttl" in filters:
        properties["queueMessageTimeToLiveInSeconds"] = filters.pop("ttl")
    document: dict[str, Any] = {
        "name": name,
        "destination": {"endpointType": "StorageQueue", "properties": properties},
    }
    retry = filters.pop("retryPolicy", None)
    if retry is not None:
        document["retryPolicy"] = retry
    if filters:
        document["filter"] = filters
    return document


def queue_texts(queues: QueueServiceClient, name: str) -> list[str]:
    """The raw text of every message on a queue (peeked, at most 32)."""
    return [m.content for m in queues.get_queue_client(name).peek_messages(max_messages=32)]


def queue_events(queues: QueueServiceClient, name: str) -> list[dict[str, Any]]:
    """The events on a queue, decoded as a consumer must: base64, then JSON."""
    return [json.loads(base64.b64decode(t, validate=True)) for t in queue_texts(queues, name)]
