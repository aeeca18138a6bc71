"""The queue ports on Azure Storage queues (azure-storage-queue).

Messages are plain UTF-8 text (host.json sets `messageEncoding: none`, and the SDK sends
text as is by default). The SDK is synchronous; its calls run in a worker thread so the
event loop keeps serving Graph calls (`shared.adapters.storage.storage_call`, which also turns an
outage into `StorageUnavailable`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from shared.adapters.storage import storage_call
from shared.domain.errors import LeaseLost
from shared.domain.events import Event
from shared.domain.records import IntakeBacklog, QueuedMessage
from shared.names import QUEUE_EVENTS, QUEUE_PENDING, QUEUE_POISON, QUEUE_REQUESTS

NEVER_EXPIRES: Final = -1
T = TypeVar("T")


def ensure_queues(service: QueueServiceClient, names: tuple[str, ...]) -> None:
    """Create the queues if missing (locally; Bicep creates them in Azure)."""
    for name in names:
        with contextlib.suppress(ResourceExistsError):
            service.create_queue(name)


# What the queue service answers to an update or delete whose pop receipt is no longer
# the message's (another receiver took it after our lease ended), or for a message that
# is gone (deleted by that receiver): learn.microsoft.com/rest/api/storageservices/
# queue-service-error-codes (PopReceiptMismatch 400, MessageNotFound 404).
_LEASE_LOST_CODES: Final = frozenset({"PopReceiptMismatch", "MessageNotFound"})


async def _holding_lease(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A storage call on a received message; LeaseLost if the message is not ours anymore."""
    try:
        return await storage_call(function, *args, **kwargs)
    except HttpResponseError as exc:
        error_code = getattr(exc, "error_code", None)  # set by azure-storage-queue
        code = str(getattr(error_code, "value", error_code) or "")
        if code in _LEASE_LOST_CODES or exc.status_code == 404:
            message = str(exc).split("\n", 1)[0][:200]
            raise LeaseLost(f"{code or exc.status_code}: {message}") from exc
        raise


def _seconds(delay: timedelta) -> int:
    return max(0, int(delay.total_seconds()))


def _received(message: QueueMessage) -> QueuedMessage:
    return QueuedMessage(
        id=message.id,
        pop_receipt=message.pop_receipt or "",
        content=str(message.content),
        dequeue_count=message.dequeue_count or 1,
    )


class StorageEventSink:
    """`user-onboard-events`; events never expire, so a slow consumer loses nothing."""

    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue

    async def publish(self, event: Event) -> None:
        await storage_call(self._queue.send_message, event.serialize(), time_to_live=NEVER_EXPIRES)


class StoragePendingQueue:
    """`user-onboard-pending`: a message's visibility is its next check time."""

    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue

    async def park(self, content: str, visible_in: timedelta) -> None:
        await storage_call(
            self._queue.send_message,
            content,
            visibility_timeout=_seconds(visible_in),
            time_to_live=NEVER_EXPIRES,
        )

    async def receive_due(self, max_messages: int, lease: timedelta) -> list[QueuedMessage]:
        return await storage_call(self._receive, max_messages, lease)

    def _receive(self, max_messages: int, lease: timedelta) -> list[QueuedMessage]:
        pages = self._queue.receive_messages(
            messages_per_page=min(32, max_messages),
            max_messages=max_messages,
            visibility_timeout=_seconds(lease),
        )
        return [_received(m) for m in pages]

    async def reschedule(self, message: QueuedMessage, content: str, visible_in: timedelta) -> None:
        # One call replaces the content and hides the message: the new state is durable
        # at the moment the old one stops being the current one.
        await _holding_lease(
            self._queue.update_message,
            message.id,
            message.pop_receipt,
            content=content,
            visibility_timeout=_seconds(visible_in),
        )

    async def complete(self, message: QueuedMessage) -> None:
        await _holding_lease(self._queue.delete_message, message.id, message.pop_receipt)


class StoragePoisonQueue:
    """`user-onboard-poison`, as the sweep reads it."""

    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue
        self._reader = StoragePendingQueue(queue)

    async def receive(self, max_messages: int, lease: timedelta) -> list[QueuedMessage]:
        return await self._reader.receive_due(max_messages, lease)

    async def remove(self, message: QueuedMessage) -> None:
        await self._reader.complete(message)


class StorageIntakeQueue:
    """`user-onboard` as the sweep watches it: a peek (which neither hides nor counts a
    delivery) and the queue's properties. A peek sees the first *visible* message: one the
    trigger is working on, or is waiting to retry, is hidden; when intake is paused or the
    trigger is not running, every message is visible and the oldest is first (Azure
    queues are first in, first out on a best-effort basis, not guaranteed)."""

    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue

    async def backlog(self) -> IntakeBacklog:
        return await storage_call(self._backlog)

    def _backlog(self) -> IntakeBacklog:
        head = self._queue.peek_messages(max_messages=1)
        count = self._queue.get_queue_properties().approximate_message_count or 0
        oldest = head[0].inserted_on if head else None
        return IntakeBacklog(oldest, max(count, len(head)))


def intake_queue(service: QueueServiceClient) -> StorageIntakeQueue:
    return StorageIntakeQueue(service.get_queue_client(QUEUE_REQUESTS))


class StorageRequestQueue:
    """`user-onboard`, written by the HTTP front door as an HR system writes it: plain text.
    A request the front door accepted must not expire before the app takes it (Storage's
    default time to live is 7 days), so it never does."""

    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue

    async def send(self, text: str) -> None:
        await storage_call(self._queue.send_message, text, time_to_live=NEVER_EXPIRES)


def storage_ports(
    service: QueueServiceClient,
) -> tuple[StoragePendingQueue, StoragePoisonQueue, StorageEventSink]:
    return (
        StoragePendingQueue(service.get_queue_client(QUEUE_PENDING)),
        StoragePoisonQueue(service.get_queue_client(QUEUE_POISON)),
        StorageEventSink(service.get_queue_client(QUEUE_EVENTS)),
    )
