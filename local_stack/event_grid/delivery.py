"""Delivery of accepted events to each matching subscription's Storage queue (Azurite), the
way Event Grid writes them there.

**Format.** One event per queue message (Event Grid delivers one event at a time to a
queue), whose text is the event's JSON **base64-encoded** (UTF-8 bytes, standard
alphabet). Sources: azure-sdk-for-python's sample
`sdk/eventgrid/azure-eventgrid/samples/basic/consume_samples/consume_cloud_events_from_storage_queue.py`
reads such a queue with `BinaryBase64DecodePolicy`; MicrosoftDocs/azure-docs#102923
(2022) reports the messages Event Grid writes are base64-encoded, against an older
quickstart note (MicrosoftDocs/azure-docs#69702, 2021) that said plain text;
pm7y/AzureEventGridSimulator writes base64 "to match Azure Event Grid behavior". So a
consumer's Functions queue trigger works with its default `messageEncoding` (base64) and
breaks with `none`, the opposite of this app's own `user-onboard-events`, which is plain
text. The JSON is the event exactly as the publisher sent it: Event Grid does not promise
to keep its bytes (spacing, key order), so consumers parse it; the stand-in keeps them,
which lets tests compare them with what the app published.

**Time to live.** `queueMessageTimeToLiveInSeconds` of the subscription: -1 never
expires, absent leaves the queue's default (seven days).

**Asynchronous, at least once.** A publish is answered before its events are delivered.
A delivery that fails (Azurite stopped, the queue missing) is tried again on Event Grid's
schedule (learn.microsoft.com "Event Grid message delivery and retry": 10 s, 30 s, 1 min,
5 min, 10 min, 30 min, 1 h, 3 h, 6 h, then every 12 h, within 24 h), scaled by
`retry_scale` so that a local stack sees it in seconds, up to the subscription's
`maxDeliveryAttempts`; then it is dropped (no dead-letter destination) and recorded so.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from azure.storage.queue import QueueServiceClient

from .subscriptions import Subscription
from .wire import Accepted

RETRY_SCHEDULE: Final = (10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200)
EVENT_TIME_TO_LIVE: Final = 24 * 3600


@dataclass
class Delivery:
    """One event on its way to one subscription's queue."""

    subscription: str
    queue: str
    event: Accepted
    ttl: int | None
    max_attempts: int
    status: str = "pending"  # pending, delivered, dropped
    attempts: int = 0
    last_error: str | None = None
    message_id: str | None = None
    accepted_at: float = field(default_factory=time.monotonic)
    delivered_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "subscription": self.subscription,
            "queue": self.queue,
            "eventId": self.event.id,
            "type": self.event.document.get("type"),
            "subject": self.event.document.get("subject"),
            "status": self.status,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "messageId": self.message_id,
            "deliveredAt": self.delivered_at,
        }


def queue_text(event: Accepted) -> str:
    """What the queue message holds: the event's bytes, base64-encoded (module docstring)."""
    return base64.b64encode(event.raw).decode("ascii")


class Deliverer:
    """A background thread delivering to Azurite queues; `records()` is the delivery log."""

    def __init__(self, connection_string: str, *, retry_scale: float = 0.1) -> None:
        # One quick try per delivery attempt: the retries are Event Grid's, not the SDK's.
        self._service = QueueServiceClient.from_connection_string(
            connection_string, retry_total=0, connection_timeout=3, read_timeout=10
        )
        self.retry_scale = retry_scale
        self._lock = threading.Condition()
        self._due: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._log: list[Delivery] = []
        self._busy = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="event-grid-delivery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        self._service.close()

    def submit(self, subscriptions: list[Subscription], events: list[Accepted]) -> int:
        """Queue each event for every subscription it matches; how many deliveries."""
        now = time.monotonic()
        count = 0
        with self._lock:
            for event in events:
                for subscription in subscriptions:
                    if not subscription.matches(event.document):
                        continue
                    delivery = Delivery(
                        subscription.name,
                        subscription.queue_name,
                        event,
                        subscription.message_ttl,
                        subscription.max_delivery_attempts,
                    )
                    self._log.append(delivery)
                    heapq.heappush(self._due, (now, next(self._order), delivery))
                    count += 1
            self._lock.notify_all()
        return count

    def records(self, subscription: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                d.to_json()
                for d in self._log
                if subscription is None or d.subscription == subscription
            ]

    def clear(self) -> None:
        with self._lock:
            self._log = [d for d in self._log if d.status == "pending"]

    def wait_idle(self, timeout: float) -> bool:
        """Whether every delivery is done (delivered or dropped) within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._due or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and (not self._due or self._due[0][0] > time.monotonic()):
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._lock.wait(timeout=wait)
                if self._stopping:
                    return
                _, _, delivery = heapq.heappop(self._due)
                self._busy += 1
            try:
                self._attempt(delivery)
            finally:
                with self._lock:
                    self._busy -= 1
                    self._lock.notify_all()

    def _attempt(self, delivery: Delivery) -> None:
        delivery.attempts += 1
        try:
            queue = self._service.get_queue_client(delivery.queue)
            kwargs: dict[str, Any] = {} if delivery.ttl is None else {"time_to_live": delivery.ttl}
            sent = queue.send_message(queue_text(delivery.event), **kwargs)
        except Exception as exc:  # any failure is a failed delivery, tried again later
            delivery.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            self._retry_or_drop(delivery)
            return
        delivery.status = "delivered"
        delivery.message_id = str(sent.id)
        delivery.delivered_at = datetime.now(UTC).isoformat(timespec="milliseconds")

    def _retry_or_drop(self, delivery: Delivery) -> None:
        step = RETRY_SCHEDULE[min(delivery.attempts - 1, len(RETRY_SCHEDULE) - 1)]
        due = time.monotonic() + step * self.retry_scale
        expired = due - delivery.accepted_at > EVENT_TIME_TO_LIVE * self.retry_scale
        if delivery.attempts >= delivery.max_attempts or expired:
            delivery.status = "dropped"
            return
        with self._lock:
            heapq.heappush(self._due, (due, next(self._order), delivery))
