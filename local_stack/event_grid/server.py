"""The HTTP side: a `ThreadingHTTPServer` on loopback and the `EventGridStandIn` handle.

The handler turns bytes into calls on `topic.Topic` (publishing) and `control` (the control
API) and their answers back into bytes; `start_event_grid` runs it on a background thread,
as `start_emulator` does for the Graph emulator.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from local_stack.graph_emulator.server import ensure_loopback
from local_stack.http_handler import DispatchingHandler

from .auth import DEFAULT_KEY, DEFAULT_TOKEN, Credentials
from .control import handle_control
from .delivery import Deliverer
from .faults import Fault, RateLimit
from .subscriptions import Subscription, parse_subscriptions
from .topic import Topic
from .wire import API_PATH, MAX_BATCH_BYTES, Reply, error, new_request_id

CONTROL_PREFIX = "/_eventgrid"
# Bodies past this are refused without being read (the 1 MB limit answers smaller ones).
MAX_READ_BYTES = 4 * MAX_BATCH_BYTES


class EventGridStandIn:
    """A running stand-in; use it as a context manager or call `stop()`."""

    def __init__(
        self,
        *,
        storage_connection_string: str | None = None,
        subscriptions: Sequence[Mapping[str, Any] | Subscription] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        key: str = DEFAULT_KEY,
        token: str = DEFAULT_TOKEN,
        local_auth: bool = True,
        retry_scale: float = 0.1,
        events_per_second: int | None = None,
    ) -> None:
        self.host = ensure_loopback(host)
        parsed = parse_subscriptions(
            [s for s in subscriptions if not isinstance(s, Subscription)]
        ) + [s for s in subscriptions if isinstance(s, Subscription)]
        self.deliverer = (
            Deliverer(storage_connection_string, retry_scale=retry_scale)
            if storage_connection_string
            else None
        )
        self.topic = Topic(
            credentials=Credentials(key, token, local_auth),
            deliverer=self.deliverer,
            subscriptions=parsed,
            rate_limit=RateLimit(events_per_second) if events_per_second else None,
        )
        self._stopping = threading.Event()
        self._server = self._bind(port)
        self.port: int = self._server.server_address[1]
        self.topic.endpoint = self.endpoint
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def endpoint(self) -> str:
        """The topic endpoint, what EVENT_GRID_TOPIC_ENDPOINT is set to."""
        return f"http://{self.host}:{self.port}{API_PATH}"

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.port}{CONTROL_PREFIX}"

    @property
    def key(self) -> str:
        return self.topic.credentials.key

    @property
    def token(self) -> str:
        return self.topic.credentials.token

    # --- lifecycle ---------------------------------------------------------------------

    def _bind(self, port: int) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer((self.host, port), _Handler.bound(standin=self))
        server.daemon_threads = True
        return server

    def start(self) -> EventGridStandIn:
        if self.deliverer is not None:
            self.deliverer.start()
        self._serve()
        return self

    def _serve(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"event-grid-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def go_down(self) -> None:
        """Close the listening socket: publishers get connection refused until `come_up`."""
        self._server.shutdown()
        self._server.server_close()

    def come_up(self) -> None:
        """Listen again on the same port after `go_down`."""
        self._server = self._bind(self.port)
        self._serve()

    def stall(self, seconds: float) -> None:
        """Hold a request thread (a timeout fault); cut short by `stop()`."""
        self._stopping.wait(seconds)

    def stop(self) -> None:
        """Stop serving and delivering (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._thread is not None and self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        if self.deliverer is not None:
            self.deliverer.stop()

    def __enter__(self) -> EventGridStandIn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- control, in-process -------------------------------------------------------------

    def add_subscription(self, document: Mapping[str, Any]) -> None:
        (subscription,) = parse_subscriptions([document])
        self.topic.put_subscription(subscription)

    def add_fault(self, spec: Mapping[str, Any], count: int = 1) -> None:
        """Answer the next `count` publishes with a fault (see `faults.Fault.parse`)."""
        self.topic.faults.add(Fault.parse(dict(spec)), count)

    def outage(self, status: int = 503) -> None:
        self.topic.faults.outage = status

    def deny(self, status: int = 401) -> None:
        self.topic.faults.denied = status

    def clear_faults(self) -> None:
        self.topic.faults.clear()

    def deliveries(self, subscription: str | None = None) -> list[dict[str, Any]]:
        return self.deliverer.records(subscription) if self.deliverer is not None else []

    def clear_deliveries(self) -> None:
        if self.deliverer is not None:
            self.deliverer.clear()

    def publishes(self) -> list[dict[str, Any]]:
        return self.topic.publishes()

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Whether every accepted event reached its queues (or was dropped) in time."""
        return self.deliverer.wait_idle(timeout) if self.deliverer is not None else True

    def summary(self) -> dict[str, Any]:
        faults = self.topic.faults
        return {
            "endpoint": self.endpoint,
            "subscriptions": [s.name for s in self.topic.subscriptions()],
            "pendingFaults": faults.pending(),
            "outage": faults.outage,
            "denied": faults.denied,
            "localAuth": self.topic.credentials.local_auth,
        }


def start_event_grid(**options: Any) -> EventGridStandIn:
    """Start a stand-in on a background thread (options: `EventGridStandIn`'s)."""
    return EventGridStandIn(**options).start()


class _Handler(DispatchingHandler):
    standin: EventGridStandIn
    server_version = "event-grid-stand-in"

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_READ_BYTES:
            self._send(
                error(
                    413,
                    "PayloadTooLarge",
                    f"The maximum size ({MAX_BATCH_BYTES}) has been exceeded.",
                    new_request_id(),
                )
            )
            self.close_connection = True
            return
        raw = self.rfile.read(length) if length else b""
        path = split.path.rstrip("/")
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._control(path, split.query, raw)
        elif path.lower() == API_PATH and self.command == "POST":
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = self.standin.topic.publish(split.query, headers, raw, self.client_address[0])
            if isinstance(answer, Fault):
                self._no_answer(answer)
            else:
                self._send(answer)
        elif path.lower() == API_PATH:
            reply = error(
                405,
                "MethodNotAllowed",
                "The requested resource does not support this HTTP method.",
                new_request_id(),
            )
            reply.headers["Allow"] = "POST"
            self._send(reply)
        else:
            uri = f"http://{self.headers.get('Host', '')}{split.path}"
            self._send(
                error(
                    404,
                    "ResourceNotFound",
                    f"No HTTP resource was found that matches the request URI '{uri}'.",
                    new_request_id(),
                )
            )

    def _control(self, path: str, query: str, raw: bytes) -> None:
        segments = [unquote(s) for s in path[len(CONTROL_PREFIX) :].split("/") if s]
        try:
            body = json.loads(raw) if raw.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._send(Reply(400, {"error": "the body is not valid JSON"}))
            return
        status, answer = handle_control(self.standin, self.command, segments, query, body)
        self._send_json(status, answer)

    def _no_answer(self, fault: Fault) -> None:
        """A stall then a closed connection, or a closed connection at once."""
        if fault.kind == "timeout":
            self.standin.stall(fault.seconds)
        self.close_connection = True

    def _send_json(self, status: int, body: Any) -> None:
        payload = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _send(self, reply: Reply) -> None:
        payload = b"" if reply.body is None else json.dumps(reply.body).encode("utf-8")
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)


__all__ = ["EventGridStandIn", "start_event_grid"]
