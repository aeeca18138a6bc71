"""The development host's HTTP side: the app's `@app.route` functions on 127.0.0.1.

Like `func start`, it listens for every route under host.json's `routePrefix` and passes
each request as an `azure.functions.HttpRequest` (method, absolute URL, headers with
repeated ones joined by ", ", query parameters likewise, route values, body) to the
function, whose `func.HttpResponse` (or `str`) becomes the answer. What the real host
does and this one copies (learn.microsoft.com "Azure Functions HTTP trigger", "Work with
Core Tools"; azure-functions-host#10098 and #11625):

* a path no route matches, or a method the matching routes do not list, is `404` with an
  empty body (the host answers 404, not 405; HEAD is not implied by GET);
* a request body over 100 MB (104,857,600 bytes) is `413`, a URL over 4 KB `414`;
* a function that raises, times out (host.json `functionTimeout`) or returns something
  other than an `HttpResponse` or a `str` is `500` with an empty body, logged;
* authorization levels (`function`, `admin`) are not enforced, as Core Tools does not
  enforce access keys locally: anonymous and keyed functions answer alike.

The socket side is the standard library's `ThreadingHTTPServer` (one thread per
connection, HTTP/1.1 keep-alive); every invocation runs on the host's one event loop, as
queue and timer invocations do, so an app's async clients stay on a single loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

from local_stack.http_handler import DispatchingHandler

from .config import FunctionSpec, HttpTrigger
from .errors import describe, format_traceback

if TYPE_CHECKING:
    from .host import DevHost

log = logging.getLogger("devhost")

MAX_BODY_BYTES = 104_857_600
MAX_URL_CHARS = 4096
KEEP_ALIVE_SECONDS = 130  # Kestrel's keep-alive timeout (2 min 10 s)
_HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})


@dataclass
class Answer:
    """What goes back on the wire."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def to_answer(value: object) -> Answer:
    """The function's return value as the Python worker encodes it; TypeError otherwise."""
    if isinstance(value, str):
        return Answer(200, [("Content-Type", "text/plain; charset=utf-8")], value.encode())
    if not isinstance(value, func.HttpResponse):
        raise TypeError(
            f"an HTTP function must return azure.functions.HttpResponse or str, not "
            f"{type(value).__name__}"
        )
    status = value.status_code
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise TypeError(f"HttpResponse status_code {status!r} is not an HTTP status")
    headers = [(k, str(v)) for k, v in value.headers.items() if k.lower() not in _HOP_BY_HOP]
    if not any(name.lower() == "content-type" for name, _ in headers):
        mimetype = value.mimetype
        charset = f"; charset={value.charset}" if mimetype.startswith("text/") else ""
        headers.append(("Content-Type", f"{mimetype}{charset}"))
    return Answer(status, headers, value.get_body() or b"")


def _joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Repeated names joined by ", " (headers) as ASP.NET's StringValues print them."""
    joined: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, value in pairs:
        key = names.setdefault(name.lower(), name)
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def _query(query: str) -> dict[str, str]:
    """Query parameters; a repeated one is joined by "," as the host passes it."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    return params


class HttpListener:
    """Serves the HTTP-triggered functions of one development host."""

    def __init__(self, host: DevHost, specs: Iterable[FunctionSpec], port: int) -> None:
        self.host = host
        routes = [(s, s.trigger) for s in specs if isinstance(s.trigger, HttpTrigger)]
        # Most specific first; equal ones in declaration order (sorted is stable).
        self.routes = sorted(routes, key=lambda route: route[1].template.precedence)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler.bound(listener=self))
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.stopping = False
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._answering = 0  # requests between their invocation and their last byte sent
        self._quiet = threading.Condition()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"devhost-http-{self.port}",
            daemon=True,
        )
        self._thread.start()

    async def stop_accepting(self) -> None:
        """Refuse new connections and new requests (503); running ones finish."""
        self.stopping = True
        if self._thread is not None:
            await asyncio.to_thread(self._server.shutdown)

    async def wait_answered(self, seconds: float) -> None:
        """Wait (up to `seconds`) until every invoked request's answer has been written:
        the process must not exit between an invocation's end and its response."""

        def _wait() -> None:
            with self._quiet:
                self._quiet.wait_for(lambda: self._answering == 0, seconds)

        await asyncio.to_thread(_wait)

    def close(self) -> None:
        self.stopping = self.closed = True
        self._server.server_close()

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Count a request from its invocation to the end of its answer."""
        with self._quiet:
            self._answering += 1
        try:
            yield
        finally:
            with self._quiet:
                self._answering -= 1
                self._quiet.notify_all()

    def find(self, method: str, parts: list[str]) -> tuple[FunctionSpec, dict[str, str]] | None:
        for spec, trigger in self.routes:
            values = trigger.template.match(parts)
            if values is not None and trigger.allows(method):
                return spec, values
        return None

    # -- called on a connection's thread ----------------------------------------------

    def invoke(self, spec: FunctionSpec, request: func.HttpRequest) -> Answer:
        """Run the function on the host's loop and wait for its answer."""
        done: concurrent.futures.Future[Answer] = concurrent.futures.Future()
        loop = self._loop
        if loop is None or self.stopping:
            return Answer(503)
        try:
            loop.call_soon_threadsafe(self._spawn, spec, request, done)
        except RuntimeError:  # the loop has closed
            return Answer(503)
        while True:
            try:
                return done.result(timeout=0.5)
            except concurrent.futures.TimeoutError:
                if self.closed and not done.running():
                    return Answer(503)

    # -- on the event loop ------------------------------------------------------------

    def _spawn(
        self, spec: FunctionSpec, request: func.HttpRequest, done: concurrent.futures.Future[Answer]
    ) -> None:
        if self.stopping:
            done.set_result(Answer(503))
            return
        done.set_running_or_notify_cancel()
        self.host.spawn(self._run(spec, request, done))

    async def _run(
        self, spec: FunctionSpec, request: func.HttpRequest, done: concurrent.futures.Future[Answer]
    ) -> None:
        started = time.monotonic()
        where = f"{request.method} {urlsplit(request.url).path}"
        try:
            answer = to_answer(await self.host.call(spec, request, str(uuid.uuid4())))
        except asyncio.CancelledError:
            log.warning("%s (%s): cancelled at shutdown, answered 503", spec.name, where)
            done.set_result(Answer(503))
            raise
        except (Exception, SystemExit) as error:
            log.error(
                "%s failed %.2fs (%s -> 500): %s\n%s",
                spec.name,
                time.monotonic() - started,
                where,
                describe(error),
                format_traceback(error),
            )
            done.set_result(Answer(500))
            return
        elapsed = time.monotonic() - started
        log.info("%s ok %.2fs (%s -> %d)", spec.name, elapsed, where, answer.status)
        done.set_result(answer)


class _Handler(DispatchingHandler):
    listener: HttpListener
    server_version = "devhost"
    timeout = KEEP_ALIVE_SECONDS

    def _dispatch(self) -> None:
        listener = self.listener
        if listener.stopping:
            self.close_connection = True
            self._write(Answer(503))
            return
        if len(self.path) > MAX_URL_CHARS:
            self.close_connection = True
            self._write(Answer(414))
            return
        body = self._read_body()
        if body is None:
            return
        split = urlsplit(self.path)
        parts = [unquote(part) for part in split.path.split("/") if part]
        found = listener.find(self.command, parts)
        if found is None:
            self._write(Answer(404))
            return
        spec, route_values = found
        host = self.headers.get("Host") or f"127.0.0.1:{listener.port}"
        request = func.HttpRequest(
            method=self.command,
            url=f"http://{host}{split.path}" + (f"?{split.query}" if split.query else ""),
            headers=_joined(self.headers.items()),
            params=_query(split.query),
            route_params=route_values,
            body=body,
        )
        with listener.answering():
            self._write(listener.invoke(spec, request))

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 400/413."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            self.close_connection = True
            self._write(Answer(400))
            return None
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._write(Answer(413))
            return None
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                self.close_connection = True
                self._write(Answer(400))
                return None
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                self._write(Answer(413))
                return None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _write(self, answer: Answer) -> None:
        no_body = answer.status in (204, 304) or answer.status < 200
        body = b"" if no_body else answer.body
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        if not no_body:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection or self.listener.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
