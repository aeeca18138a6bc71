"""A counting TCP proxy in front of Azurite's queue and table ports, for the big-day
benchmark: the development hosts get its ports in their connection string, so every
storage request the app and the host's queue trigger send is counted, and nothing else
(the benchmark itself talks to Azurite directly).

Bytes pass through untouched; the client-to-Azurite stream is also parsed just enough to
find where each HTTP/1.1 request starts (request line, headers, then `Content-Length`
bytes or a chunked body). Each request is counted under `<service> <METHOD> <resource>`,
the resource being the path without the account, message ids and entity keys folded
(`user-onboard-pending/messages/{id}`, `requests(key)`) and `comp=` kept.

    python -m local_stack.bench.bigday.storage_proxy --queue-port Q --table-port T --counts FILE

prints `storage-proxy <queue port> <table port>` once listening; SIGUSR1 writes the counts
so far to FILE (`{"snapshot": n, "counts": {...}}`), SIGTERM writes them and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

HOST = "127.0.0.1"
_ENTITY_KEY = re.compile(r"\(.+\)$")
_RESERVED = re.compile(r"PartitionKey='(~[^']*)'")


def resource_of(target: str) -> str:
    """`/devstoreaccount1/q/messages/abc?popreceipt=x` -> `q/messages/{id}`; an entity of
    a reserved partition (`~pacing`, `~parked`...) keeps its partition: `t(~pacing)`."""
    parts = urlsplit(target)
    segments = [s for s in parts.path.split("/") if s][1:]  # without the account
    if len(segments) >= 3 and segments[1] == "messages":
        segments[2:] = ["{id}"]
    if segments:
        segments[-1] = _ENTITY_KEY.sub(_folded_key, segments[-1])
    resource = "/".join(segments) or "/"
    comp = parse_qs(parts.query).get("comp")
    return f"{resource}?comp={comp[0]}" if comp else resource


def _folded_key(match: re.Match[str]) -> str:
    reserved = _RESERVED.search(unquote(match.group(0)))
    return f"({reserved.group(1)})" if reserved else "(key)"


class RequestCounter:
    """Finds the requests in one client-to-server HTTP/1.1 byte stream."""

    def __init__(self, service: str, counts: Counter[str]) -> None:
        self._service = service
        self._counts = counts
        self._buffer = bytearray()
        self._body_left = 0
        self._chunked = False

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while self._step():
            pass

    def _step(self) -> bool:
        """Consume one piece (a head, a body part, a chunk); False when more bytes are needed."""
        if self._body_left:
            taken = min(self._body_left, len(self._buffer))
            del self._buffer[:taken]
            self._body_left -= taken
            return taken > 0 and len(self._buffer) > 0
        if self._chunked:
            return self._chunk()
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        method, target = [*head[0].split(" "), "", ""][:2]
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        self._counts[f"{self._service} {method} {resource_of(target)}"] += 1
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._body_left = int(headers.get("content-length", "0") or 0)
        return True

    def _chunk(self) -> bool:
        line_end = self._buffer.find(b"\r\n")
        if line_end < 0:
            return False
        size = int(bytes(self._buffer[:line_end]).split(b";")[0] or b"0", 16)
        if size == 0:  # the last chunk, then an empty line (no trailers from the SDKs)
            if len(self._buffer) < line_end + 4:
                return False
            del self._buffer[: line_end + 4]
            self._chunked = False
            return True
        del self._buffer[: line_end + 2]
        self._body_left = size + 2  # the data and its CRLF
        return True


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: RequestCounter | None
) -> None:
    try:
        while data := await reader.read(65536):
            if counter is not None:
                counter.feed(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def _handler(
    service: str, port: int, counts: Counter[str]
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, port)
        except OSError:
            writer.close()
            return
        counter = RequestCounter(service, counts)
        await asyncio.gather(_pump(reader, up_writer, counter), _pump(up_reader, writer, None))

    return handle


def write_counts(path: Path, counts: Counter[str], snapshot: int) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps({"snapshot": snapshot, "counts": dict(counts)}))
    partial.replace(path)


async def serve(queue_port: int, table_port: int, counts_path: Path) -> None:
    counts: Counter[str] = Counter()
    servers = [
        await asyncio.start_server(_handler(service, port, counts), HOST, 0)
        for service, port in (("queue", queue_port), ("table", table_port))
    ]
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    stop = asyncio.Event()
    snapshots = 0

    def snapshot() -> None:
        nonlocal snapshots
        snapshots += 1
        write_counts(counts_path, counts, snapshots)

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, snapshot)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    write_counts(counts_path, counts, 0)
    print(f"storage-proxy {ports[0]} {ports[1]}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()
    snapshot()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.bench.bigday.storage_proxy")
    parser.add_argument("--queue-port", type=int, required=True)
    parser.add_argument("--table-port", type=int, required=True)
    parser.add_argument("--counts", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.queue_port, args.table_port, args.counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
