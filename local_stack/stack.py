"""The whole local stack in one object: Azurite, the Graph emulator and the development
host running `function_app.py`, plus helpers to post requests and collect events; on
request (`event_grid=True`) also the Event Grid stand-in, with its subscriptions' queues,
and `EVENT_GRID_TOPIC_ENDPOINT` set for the app.

`make run`, `make serve`, the end-to-end tests and the benchmarks all use this, so they
exercise the same wiring.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from azure.storage.queue import QueueServiceClient

from local_stack.azurite import Azurite, AzuriteError, relaunch_azurite, start_azurite
from local_stack.entra_client import TokenRequest, fetch_token
from local_stack.event_grid import EventGridStandIn, parse_subscription, start_event_grid
from local_stack.graph_emulator import Emulator, start_emulator
from shared.adapters.queues import ensure_queues
from shared.names import ALL_QUEUES

REPO = Path(__file__).resolve().parents[1]
TERMINAL = ("licensed", "failed", "rejected")
# Two consumers of the Event Grid topic: an HR system taking every event, a telephony team
# taking only what concerns phones (see the file).
SAMPLE_SUBSCRIPTIONS = REPO / "local_stack" / "samples" / "event-grid-subscriptions.json"


def sample_subscriptions() -> list[dict[str, Any]]:
    subscriptions: list[dict[str, Any]] = json.loads(SAMPLE_SUBSCRIPTIONS.read_text())[
        "subscriptions"
    ]
    return subscriptions


def sample_settings() -> dict[str, str]:
    """The `Values` of local.settings.json if present, else of the committed sample."""
    for name in ("local.settings.json", "local.settings.sample.json"):
        path = REPO / name
        if path.exists():
            values = json.loads(path.read_text())["Values"]
            return {str(k): str(v) for k, v in values.items()}
    return {}


class LocalStack:
    """Start with `start()`, then `start_host()`; `stop()` stops everything it started."""

    def __init__(
        self,
        state_dir: Path,
        directory: dict[str, Any] | Path,
        *,
        settings: Mapping[str, str] | None = None,
        azurite_port: int = 0,
        azurite_table_port: int = 0,
        graph_port: int = 0,
        host_http_port: int = 0,
        emulator_options: Mapping[str, Any] | None = None,
        event_grid: bool = False,
        event_grid_subscriptions: Sequence[Mapping[str, Any]] | None = None,
        event_grid_options: Mapping[str, Any] | None = None,
    ) -> None:
        """`event_grid`: also run the Event Grid stand-in, with `event_grid_subscriptions`
        (default: the two sample consumers) and `event_grid_options` (EventGridStandIn's)."""
        self.state_dir = state_dir
        self.directory = directory
        self.overrides = dict(settings or {})
        self.azurite_port = azurite_port
        self.azurite_table_port = azurite_table_port
        self.graph_port = graph_port
        self.host_http_port = host_http_port
        self._http_ready: Path | None = None
        self.emulator_options = dict(emulator_options or {})
        self.event_grid_enabled = event_grid
        self.event_grid_subscriptions = [
            dict(s) for s in (event_grid_subscriptions or sample_subscriptions())
        ]
        self.event_grid_options = dict(event_grid_options or {})
        self.event_grid: EventGridStandIn | None = None
        self.consumer_events_seen: dict[str, list[dict[str, Any]]] = {}
        self.azurite: Azurite | None = None
        self.graph: Emulator | None = None
        self.host: subprocess.Popen[bytes] | None = None
        self.events_seen: list[dict[str, Any]] = []
        self._queues: QueueServiceClient | None = None
        self._azurite_ports: tuple[int, int | None] | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> LocalStack:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.azurite = start_azurite(
                self.state_dir / "azurite",
                port=self.azurite_port,
                table_port=self.azurite_table_port,
            )
            self.graph = start_emulator(
                self.directory, port=self.graph_port, **self.emulator_options
            )
            self._queues = QueueServiceClient.from_connection_string(self.azurite.connection_string)
            ensure_queues(self._queues, ALL_QUEUES)
            if self.event_grid_enabled:
                self._start_event_grid()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_event_grid(self) -> None:
        """The subscriptions' queues (Bicep or the consumers create them in Azure), then the
        stand-in delivering to them."""
        assert self.azurite is not None
        assert self._queues is not None
        queues = tuple(self.subscription_queue(s["name"]) for s in self.event_grid_subscriptions)
        ensure_queues(self._queues, queues)
        self.event_grid = start_event_grid(
            storage_connection_string=self.azurite.connection_string,
            subscriptions=self.event_grid_subscriptions,
            **self.event_grid_options,
        )

    def stack_values(self) -> dict[str, str]:
        """The overrides and this stack's endpoints (what differs from the settings file)."""
        assert self.azurite is not None
        assert self.graph is not None
        values = {
            **self.api_settings(),
            **self.overrides,
            "AzureWebJobsStorage": self.azurite.connection_string,
            "GRAPH_BASE_URL": self.graph.base_url,
        }
        if self.event_grid is not None:
            values["EVENT_GRID_TOPIC_ENDPOINT"] = self.event_grid.endpoint
        return values

    def api_settings(self) -> dict[str, str]:
        """API_AUDIENCE, API_TENANT_ID and API_AUTHORITY for the emulator's Entra ID issuer;
        with no `identity` section in the directory, API_AUDIENCE is empty: the front door
        is off (an override in `settings` wins over both)."""
        assert self.graph is not None
        config = self.graph.identity.config
        if config is None:
            return {"API_AUDIENCE": ""}
        return {
            "API_AUDIENCE": config.api_client_id,
            "API_TENANT_ID": config.tenant_id,
            "API_AUTHORITY": self.graph.authority,
        }

    def token(self, client: str = "hr", *, scope: str | None = None) -> str:
        """An access token for the app's API, got from the issuer with the client
        credentials of `client` (a name or client id of the directory's `identity`
        section: `hr`, `reporting`, `norole` in the sample), as an HR system gets one.
        TokenRequestError carries Entra's refusal."""
        assert self.graph is not None
        identity = self.graph.identity
        config = identity.config
        if config is None:
            raise LookupError("the directory has no identity section: no issuer, no tokens")
        registered = identity.client(client)
        return fetch_token(
            TokenRequest(
                authority=self.graph.authority,
                tenant_id=registered.tenant_id,
                client_id=registered.client_id,
                client_secret=registered.secret,
                scope=scope or f"api://{config.api_client_id}/.default",
            )
        )

    def app_environment(self) -> dict[str, str]:
        """What the app sees in-process: the settings file's values, then the stack's."""
        return {**os.environ, **sample_settings(), **self.stack_values()}

    def start_host(
        self,
        *,
        app_dir: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        log_name: str = "devhost.log",
    ) -> subprocess.Popen[bytes]:
        """The development host, as a child process (so it can be killed mid-batch).

        By default it runs the repo's app; `app_dir` runs another app folder (the stress
        suite's crash-point shim), `extra_env` adds variables, `log_name` picks the log
        file under `state_dir`. Its HTTP port (`host_http_port`, 0 = a free one) is
        known once it is ready: `http_url()`."""
        self._http_ready = self.state_dir / f"{log_name}.http-port"
        self._http_ready.unlink(missing_ok=True)
        self.host = self.spawn_host(
            app_dir=app_dir,
            extra_env=extra_env,
            log_name=log_name,
            http_port=self.host_http_port,
            http_ready_file=self._http_ready,
        )
        return self.host

    def http_url(self, timeout: float = 60.0) -> str:
        """The development host's HTTP root, `http://127.0.0.1:PORT` (routes are under
        `/api`), waiting until the host is ready; RuntimeError if it exits first."""
        if self.host is None or self._http_ready is None:
            raise RuntimeError("the development host is not running: call start_host() first")
        deadline = time.monotonic() + timeout
        while not self._http_ready.exists():
            if self.host.poll() is not None:
                raise RuntimeError(f"the development host exited:\n{self.host_log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the development host was not ready within {timeout:g} s")
            time.sleep(0.05)
        return f"http://127.0.0.1:{int(self._http_ready.read_text(encoding='utf-8'))}"

    def spawn_host(
        self,
        *,
        app_dir: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        log_name: str = "devhost.log",
        http_port: int = 0,
        http_ready_file: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Another development host on the same stack, not tracked as `self.host` (for
        several hosts at once); the caller stops it. It serves HTTP on `http_port` (0: a
        free port, written to `http_ready_file` when given)."""
        # The host reads local.settings(.sample).json itself; the environment wins. Another
        # app folder has no settings file: it gets the repo's values in the environment.
        values = self.stack_values() if app_dir is None else self.app_environment()
        log = (self.state_dir / log_name).open("ab")
        command = [sys.executable, "-m", "local_stack.devhost", "--app-dir", str(app_dir or REPO)]
        command += ["--http-port", str(http_port)]
        if http_ready_file is not None:
            command += ["--http-ready-file", str(http_ready_file)]
        host = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            cwd=REPO,
            env={**os.environ, **values, "PYTHONUNBUFFERED": "1", **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return host

    def stop_host(self, *, kill: bool = False) -> None:
        if self.host is None:
            return
        if self.host.poll() is None:
            self.host.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.host.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.host.kill()
                self.host.wait()
        self.host = None

    def stop_azurite(self) -> None:
        """Stop Azurite (queues and tables) and keep its data folder and ports for
        `restart_azurite`: an outage of the storage account, with the host still running."""
        if self.azurite is not None:
            self._azurite_ports = (self.azurite.queue_port, self.azurite.table_port)
            self.azurite.stop(timeout=10)
            self.azurite = None

    def restart_azurite(self, timeout: float = 30.0) -> None:
        """Start Azurite again on the same ports and data folder after `stop_azurite`
        (waiting for the ports to be free)."""
        assert self.azurite is None
        assert self._azurite_ports is not None
        queue_port, table_port = self._azurite_ports
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.azurite = relaunch_azurite(
                    self.state_dir / "azurite", queue_port, table_port or 0, timeout=timeout
                )
                return
            except AzuriteError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)

    def stop(self) -> None:
        self.stop_host()
        if self._queues is not None:
            self._queues.close()
            self._queues = None
        if self.graph is not None:
            self.graph.stop()
            self.graph = None
        if self.event_grid is not None:
            self.event_grid.stop()
            self.event_grid = None
        if self.azurite is not None:
            self.azurite.stop()
            self.azurite = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def host_log(self) -> str:
        path = self.state_dir / "devhost.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- queues ----------------------------------------------------------------------

    def queue(self, name: str) -> Any:
        assert self._queues is not None
        return self._queues.get_queue_client(name)

    def post(self, body: str | Mapping[str, Any]) -> str:
        """Put a message on `user-onboard` as an HR system would (plain text)."""
        text = body if isinstance(body, str) else json.dumps(body)
        return str(self.queue("user-onboard").send_message(text).id)

    def drain_events(self) -> list[dict[str, Any]]:
        """Take every event currently on `user-onboard-events`; remembered in events_seen."""
        queue = self.queue("user-onboard-events")
        new = []
        for message in queue.receive_messages(messages_per_page=32, visibility_timeout=30):
            new.append(json.loads(message.content))
            queue.delete_message(message)
        self.events_seen.extend(new)
        return new

    def count(self, name: str) -> int:
        return int(self.queue(name).get_queue_properties().approximate_message_count)

    def wait_for_terminal(
        self,
        request_ids: Iterable[str],
        timeout: float,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Collect events until every request has a terminal one or `timeout` passes."""
        wanted = set(request_ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.drain_events():
                if on_event:
                    on_event(event)
            if wanted <= set(self.terminal_events()):
                break
            if self.host is not None and self.host.poll() is not None:
                raise RuntimeError(f"the development host exited:\n{self.host_log()[-3000:]}")
            time.sleep(0.2)
        return self.terminal_events()

    def terminal_events(self) -> dict[str, dict[str, Any]]:
        """requestId (or message id) → its terminal event, from everything seen so far."""
        out: dict[str, dict[str, Any]] = {}
        for event in self.events_seen:
            if event["type"].rsplit(".", 1)[-1] in TERMINAL:
                key = event.get("subject") or event["id"]
                out[key] = event
        return out

    # --- Event Grid consumers ---------------------------------------------------------

    def subscription_queue(self, subscription: str) -> str:
        """The Storage queue an Event Grid subscription delivers to."""
        for document in self.event_grid_subscriptions:
            if document["name"] == subscription:
                return parse_subscription(document).queue_name
        raise KeyError(f"no Event Grid subscription named {subscription}")

    def consumer_messages(self, subscription: str, *, take: bool = True) -> list[str]:
        """What a consumer reads from its subscription's queue: each message's text decoded
        from base64 (Event Grid's queue encoding), i.e. the event's JSON as published.
        `take`: remove them (as a consumer would); otherwise only peek (at most 32)."""
        queue = self.queue(self.subscription_queue(subscription))
        if not take:
            return [_event_text(m.content) for m in queue.peek_messages(max_messages=32)]
        texts = []
        for message in queue.receive_messages(messages_per_page=32, visibility_timeout=30):
            texts.append(_event_text(message.content))
            queue.delete_message(message)
        return texts

    def consumer_events(self, subscription: str) -> list[dict[str, Any]]:
        """Take a consumer's new events, parsed; remembered in consumer_events_seen."""
        events = [json.loads(text) for text in self.consumer_messages(subscription)]
        self.consumer_events_seen.setdefault(subscription, []).extend(events)
        return events


def _event_text(content: str) -> str:
    return base64.b64decode(content, validate=True).decode("utf-8")
