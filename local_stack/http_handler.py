"""What the local stand-ins share (the Graph emulator, the Event Grid stand-in, the
development host's HTTP triggers): a request handler with HTTP/1.1 keep-alive, every
method to one `_dispatch`, and no line per request on stderr (each keeps its own record of
calls); and, for the stand-ins' command lines, serving until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import threading
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import FrameType
from typing import Any, Self


class DispatchingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms each.
    disable_nagle_algorithm = True
    sys_version = ""

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: each stand-in keeps its own record of the calls it answered."""

    def _dispatch(self) -> None:
        raise NotImplementedError

    @classmethod
    def bound(cls, **attributes: Any) -> type[Self]:
        """A subclass with `attributes` set on it (the server it answers for): one handler
        class per server, as `ThreadingHTTPServer` takes a class, not an instance."""
        return type(f"{cls.__name__}Bound", (cls,), attributes)


def serve_until_signalled(
    server: AbstractContextManager[Any], name: str, port: int, url: str, ready_file: Path | None
) -> int:
    """Run a started stand-in until SIGTERM or SIGINT, then stop it: write its `port` to
    `ready_file` if given and print one line, `<name> listening on <url>`, once it is up."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with server:
        if ready_file is not None:
            ready_file.write_text(f"{port}\n", encoding="utf-8")
        print(f"{name} listening on {url}", flush=True)
        stop.wait()
    return 0
