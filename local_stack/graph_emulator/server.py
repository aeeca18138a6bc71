"""The HTTP side: a `ThreadingHTTPServer` on loopback and the `Emulator` handle.

The handler only translates bytes to `service.Request` and `Reply` back to
bytes; Graph logic lives in `service`, tenant rules in `directory`, the
control API in `control`. `start_emulator` runs the server on a background
thread so tests and the run scripts share one way of starting it.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from local_stack.http_handler import DispatchingHandler

from .clock import Clock, SystemClock
from .control import Controls, handle_control
from .directory import Directory
from .faults import Faults
from .identity import IdentityIssuer
from .identity_http import route as identity_route
from .service import API_PREFIX, DEFAULT_TOKEN, GraphService, Reply, Request
from .throttle import DEFAULT_UNITS_PER_10S, DEFAULT_WRITES_PER_150S, Throttle

CONTROL_PREFIX = "/_emulator"
MAX_BODY_BYTES = 4 * 1024 * 1024  # Graph's own limit for a $batch payload


def ensure_loopback(host: str) -> str:
    """Return the IPv4 loopback address to bind, or refuse: never face a network."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(f"refusing to bind to {host!r}: not a loopback address") from exc
    if address.version != 4 or not address.is_loopback:
        raise ValueError(f"refusing to bind to {host!r}: only IPv4 loopback (127.0.0.0/8)")
    return host


class Emulator(Controls):
    """A running Graph emulator; use as a context manager or call `stop()`. Its control
    helpers (`add_user`, `add_fault`, `grant`...) are `control.Controls`'."""

    def __init__(
        self,
        directory: dict[str, Any],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        clock: Clock | None = None,
        units_per_10s: int = DEFAULT_UNITS_PER_10S,
        writes_per_150s: int = DEFAULT_WRITES_PER_150S,
        fault_seed: int | None = None,
        shuffle_batch: bool = True,
        time_scale: float = 1.0,
        throttle_model: str = "window",
    ) -> None:
        bind_host = ensure_loopback(host)
        self.clock: Clock = clock or SystemClock()
        self._initial = copy.deepcopy(directory)
        self.directory: Directory = Directory(copy.deepcopy(directory), self.clock)
        self.service = GraphService(
            self.directory,
            self.clock,
            token=token,
            throttle=Throttle(
                self.clock,
                units_per_10s,
                writes_per_150s,
                time_scale=time_scale,
                model=throttle_model,
            ),
            faults=Faults(fault_seed),
            shuffle_batch=shuffle_batch,
            batch_seed=fault_seed,
        )
        # The local Entra ID issuer shares the server; its URL is the base without /v1.0.
        self.identity = IdentityIssuer(directory.get("identity"), self.clock)
        self._server = ThreadingHTTPServer((bind_host, port), _GraphHandler.bound(emulator=self))
        self._server.daemon_threads = True
        self.host = bind_host
        self.port: int = self._server.server_address[1]
        self.service.base_url = self.base_url
        self.identity.base_url = self.authority
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how long stop() waits for the loop to notice
            name=f"graph-emulator-{self.port}",
            daemon=True,
        )
        self._stopped = False

    @property
    def base_url(self) -> str:
        """Graph root, e.g. `http://127.0.0.1:PORT/v1.0`."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def authority(self) -> str:
        """The local Entra ID issuer's root (`API_AUTHORITY`), e.g. `http://127.0.0.1:PORT`."""
        return f"http://{self.host}:{self.port}"

    @property
    def control_url(self) -> str:
        """Control API root, e.g. `http://127.0.0.1:PORT/_emulator`."""
        return f"http://{self.host}:{self.port}{CONTROL_PREFIX}"

    @property
    def token(self) -> str:
        """The bearer token Graph calls must carry."""
        return self.service.token

    def reset(self, directory: dict[str, Any] | None = None) -> None:
        """`Controls.reset`, and the identity section reloaded (signing keys stay)."""
        super().reset(directory)
        self.identity.load(self._initial.get("identity"))

    def start(self) -> Emulator:
        """Serve on a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_emulator(
    directory: dict[str, Any] | Path | str,
    host: str = "127.0.0.1",
    port: int = 0,
    **options: Any,
) -> Emulator:
    """Start an emulator on a background thread; `directory` is a dict or a JSON file path.

    Options: `token`, `clock` (e.g. `ManualClock()`), `units_per_10s`,
    `writes_per_150s`, `fault_seed` (also seeds the `$batch` shuffle), `shuffle_batch`,
    `time_scale` and `throttle_model` (`window` | `bucket`; see `throttle`).
    """
    if isinstance(directory, str | Path):
        directory = json.loads(Path(directory).read_text(encoding="utf-8"))
    assert isinstance(directory, dict)
    return Emulator(directory, host=host, port=port, **options).start()


class _GraphHandler(DispatchingHandler):
    """Bytes in, bytes out; everything else is delegated."""

    emulator: Emulator
    server_version = "graph-emulator"

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        raw = self._read_body()
        if raw is None:
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        issued = identity_route(self.emulator.identity, self.command, split.path, headers, raw)
        if issued is not None:
            self._send(*issued)
            return
        body, invalid = _parse_json(raw)
        if split.path == CONTROL_PREFIX or split.path.startswith(CONTROL_PREFIX + "/"):
            segments = [unquote(s) for s in split.path[len(CONTROL_PREFIX) :].split("/") if s]
            if invalid:
                self._send(400, {"error": "the body is not valid JSON"}, {})
                return
            status, answer = handle_control(self.emulator, self.command, segments, body)
            self._send(status, answer, {"Content-Type": "application/json"})
            return
        if split.path != API_PREFIX and not split.path.startswith(API_PREFIX + "/"):
            self._send(
                404, {"error": f"unknown path {split.path}; Graph lives under {API_PREFIX}"}, {}
            )
            return
        request = Request(
            method=self.command,
            raw_path=split.path,
            query=split.query,
            headers=headers,
            body=body,
            body_is_invalid_json=invalid,
        )
        reply = self.emulator.service.handle(request)
        if reply.drop:
            self.close_connection = True
            return
        self._send(reply.status, reply.body, reply.headers)

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send(413, {"error": "request body too large"}, {})
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        payload = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        headers = {"Content-Type": "application/json", **headers}
        for name, value in headers.items():
            if body is None and name.lower() == "content-type":
                continue
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)


def _parse_json(raw: bytes) -> tuple[Any, bool]:
    """Return (parsed body or None, whether the bytes were not JSON)."""
    if not raw.strip():
        return None, False
    try:
        return json.loads(raw), False
    except (UnicodeDecodeError, json.JSONDecodeError):
        return raw.decode("utf-8", errors="replace"), True


__all__ = ["Emulator", "Reply", "ensure_loopback", "start_emulator"]
