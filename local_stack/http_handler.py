"""The request handler the local stand-ins share (the Graph emulator, the Event Grid
stand-in, the development host's HTTP triggers): HTTP/1.1 keep-alive, every method to one
`_dispatch`, and no line per request on stderr (each keeps its own record of calls)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any


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
