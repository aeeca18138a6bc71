"""The stand-in's custom topic: one publish request, start to end.

In the order the real service is understood to take them (an outage comes before
anything; then the credential; then the identity's rights; then the service's own
failures; then the body; then the rate): an outage answers its status; a missing or wrong
credential 401; a denied identity 401/403; an injected fault its status, a stall or a
dropped connection; a malformed body 400, 413 or 415; past the rate limit 429; otherwise
200, and the events go to every matching subscription's queue, after the answer.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from .auth import Credentials, authenticate
from .delivery import Deliverer
from .faults import Fault, Faults, RateLimit, denied_reply, status_reply
from .subscriptions import Subscription, SubscriptionError
from .wire import API_VERSION, Reply, error, new_request_id, parse_publish


class Topic:
    def __init__(
        self,
        *,
        credentials: Credentials,
        deliverer: Deliverer | None,
        subscriptions: list[Subscription],
        rate_limit: RateLimit | None = None,
    ) -> None:
        self.credentials = credentials
        self.deliverer = deliverer
        self.faults = Faults()
        self.rate_limit = rate_limit or RateLimit()
        self.endpoint = ""  # set once the server is bound
        self._lock = threading.Lock()
        self._subscriptions: dict[str, Subscription] = {}
        self._log: list[dict[str, Any]] = []
        for subscription in subscriptions:
            self.put_subscription(subscription)

    # --- subscriptions ----------------------------------------------------------------

    def put_subscription(self, subscription: Subscription) -> None:
        if self.deliverer is None:
            raise SubscriptionError(
                "the stand-in was started without a storage account: it cannot deliver to "
                "a Storage queue"
            )
        with self._lock:
            self._subscriptions[subscription.name.lower()] = subscription

    def remove_subscription(self, name: str) -> bool:
        with self._lock:
            return self._subscriptions.pop(name.lower(), None) is not None

    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._subscriptions.values())

    # --- the publish log ---------------------------------------------------------------

    def publishes(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, request_id: str, status: int, **fields: Any) -> None:
        entry = {
            "requestId": request_id,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "status": status,
            **fields,
        }
        with self._lock:
            self._log.append(entry)

    # --- publishing --------------------------------------------------------------------

    def publish(
        self, query: str, headers: Mapping[str, str], body: bytes, client: str
    ) -> Reply | Fault:
        """The answer to `POST /api/events?<query>`; a Fault of kind timeout or drop means
        no answer at all. `headers` have lower-case names."""
        request_id = new_request_id()
        seen = {"bytes": len(body), "contentType": headers.get("content-type")}
        reply = self._gate(query, headers, client, request_id)
        if isinstance(reply, Fault):
            self._record(request_id, 0, fault=reply.kind, **seen)
            return reply
        if isinstance(reply, Reply):
            self._record(request_id, reply.status, **seen)
            return reply
        seen["credential"] = reply
        parsed = parse_publish(body, headers.get("content-type"), request_id)
        if isinstance(parsed, Reply):
            self._record(request_id, parsed.status, **seen)
            return parsed
        if not self.rate_limit.admit([len(event.raw) for event in parsed]):
            self._record(request_id, 429, **seen)
            return status_reply(429, request_id)
        deliveries = 0
        if self.deliverer is not None:
            deliveries = self.deliverer.submit(self.subscriptions(), parsed)
        ids = [event.id for event in parsed]
        self._record(request_id, 200, eventIds=ids, deliveries=deliveries, **seen)
        return Reply(200, None, {"x-ms-request-id": request_id})

    def _gate(
        self, query: str, headers: Mapping[str, str], client: str, request_id: str
    ) -> str | Reply | Fault:
        """The credential kind, or what answers before the body is read."""
        if self.faults.outage is not None:
            return status_reply(self.faults.outage, request_id)
        versions = parse_qs(query).get("api-version", [])
        if versions != [API_VERSION]:
            wanted = versions[0] if versions else ""
            return error(
                400,
                "InvalidApiVersion",
                f"The api-version '{wanted}' is not supported: a custom topic takes "
                f"api-version={API_VERSION}.",
                request_id,
            )
        credential = authenticate(headers, self.credentials, self.endpoint, request_id)
        if isinstance(credential, Reply):
            return credential
        if self.faults.denied is not None:
            host = self.endpoint.split("://", 1)[-1].split("/", 1)[0].upper()
            return denied_reply(self.faults.denied, host, client, request_id)
        fault = self.faults.take()
        if fault is not None:
            return fault.reply(request_id) if fault.kind == "status" else fault
        return credential
