"""The stand-in's bad days: injected faults, an outage, a refused identity, and the topic's
publish rate limit.

- A **fault** answers the next publish requests (after authentication, as the real
  service's own failures come after it): a status (`500`, `502`, `503`, `504`, `429`, with
  an optional `Retry-After`), `timeout` (the request is held `seconds`, then the connection
  closes without an answer) or `drop` (closed at once, no answer).
- An **outage** answers every publish with a status (503 by default) until it ends; a
  stopped listener (connection refused) is `EventGridStandIn.go_down()`.
- **Denied** answers every authenticated publish 401 (an Entra token whose principal lacks
  the role EventGrid Data Sender: the stand-in's wording) or 403 (refused by the topic's IP
  firewall or private endpoint rules: the message of learn.microsoft.com "Troubleshoot
  Azure Event Grid errors", 403).
- The **rate limit**: 5,000 events or 5 MB per second per topic, an event counted in 64 KB
  chunks ("Azure Event Grid quotas and limits", publish rate for a custom topic); past it,
  429.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

from .wire import Reply, error

EVENTS_PER_SECOND: Final = 5_000
BYTES_PER_SECOND: Final = 5 * 1024 * 1024
CHUNK_BYTES: Final = 64 * 1024
FAULT_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
_MESSAGES: Final = {
    429: "The request was throttled: the topic's publish rate was exceeded.",
    500: "The server encountered an internal error while processing the request.",
    502: "Bad gateway.",
    503: "The service is unavailable. Try again later.",
    504: "The request timed out in the service.",
}


class FaultError(ValueError):
    """A fault description the stand-in cannot take."""


@dataclass(frozen=True)
class Fault:
    kind: str  # "status" | "timeout" | "drop"
    status: int = 503
    retry_after: float | None = None
    seconds: float = 30.0

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Fault:
        kind = spec.get("kind", "status")
        if kind == "status":
            status = spec.get("status", 503)
            if status not in FAULT_STATUSES:
                raise FaultError(f"status must be one of {sorted(FAULT_STATUSES)}")
            retry_after = spec.get("retryAfter")
            if retry_after is not None and (
                not isinstance(retry_after, int | float) or retry_after < 0
            ):
                raise FaultError("retryAfter must be a number of seconds")
            return cls("status", int(status), retry_after)
        if kind == "timeout":
            seconds = spec.get("seconds", 30.0)
            if not isinstance(seconds, int | float) or not 0 <= seconds <= 600:
                raise FaultError("seconds must be 0 to 600")
            return cls("timeout", seconds=float(seconds))
        if kind == "drop":
            return cls("drop")
        raise FaultError("kind must be status, timeout or drop")

    def reply(self, request_id: str) -> Reply:
        return status_reply(self.status, request_id, self.retry_after)


def status_reply(status: int, request_id: str, retry_after: float | None = None) -> Reply:
    reply = error(
        status, _STATUS_NAME.get(status, "ServerError"), _MESSAGES.get(status, "Error."), request_id
    )
    if retry_after is not None:
        reply.headers["Retry-After"] = f"{retry_after:g}"
    return reply


_STATUS_NAME: Final = {
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def denied_reply(status: int, host: str, client: str, request_id: str) -> Reply:
    if status == 403:
        return error(
            403,
            "Forbidden",
            f"Publishing to {host} by client {client} is rejected due to IpAddress "
            "filtering rules.",
            request_id,
        )
    return error(
        401,
        "Unauthorized",
        f"The principal is not authorized to publish to {host}: it needs the role EventGrid "
        "Data Sender (Microsoft.EventGrid/topics/events/send/action) on the topic.",
        request_id,
    )


class Faults:
    """Thread-safe: the server's handler threads and the control API share it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: deque[Fault] = deque()
        self.outage: int | None = None
        self.denied: int | None = None

    def add(self, fault: Fault, count: int = 1) -> None:
        with self._lock:
            self._queued.extend([fault] * count)

    def take(self) -> Fault | None:
        with self._lock:
            return self._queued.popleft() if self._queued else None

    def pending(self) -> int:
        with self._lock:
            return len(self._queued)

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
            self.outage = None
            self.denied = None


class RateLimit:
    """A one-second window of what was accepted; `admit` says whether more fits."""

    def __init__(
        self, events_per_second: int = EVENTS_PER_SECOND, bytes_per_second: int = BYTES_PER_SECOND
    ) -> None:
        self.events_per_second = events_per_second
        self.bytes_per_second = bytes_per_second
        self._lock = threading.Lock()
        self._window: deque[tuple[float, int, int]] = deque()

    def admit(self, sizes: list[int]) -> bool:
        units = sum(max(1, -(-size // CHUNK_BYTES)) for size in sizes)
        total = sum(sizes)
        now = time.monotonic()
        with self._lock:
            while self._window and self._window[0][0] <= now - 1.0:
                self._window.popleft()
            events = sum(w[1] for w in self._window) + units
            volume = sum(w[2] for w in self._window) + total
            if events > self.events_per_second or volume > self.bytes_per_second:
                return False
            self._window.append((now, units, total))
            return True
