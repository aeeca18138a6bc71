"""Start and stop Azurite's queue and table services for the local stack.

``start_azurite(data_dir)`` runs the pinned ``node_modules/.bin/azurite-queue`` and
``azurite-table`` on 127.0.0.1 with telemetry off, waits until both accept connections
and returns a handle that knows the endpoints and the development-storage connection
string (with ``QueueEndpoint`` and ``TableEndpoint``). The handle is a context manager;
``stop()`` terminates Azurite (and kills it if it does not exit).

Command line (keeps Azurite running until Ctrl-C)::

    python -m local_stack.azurite --port 10001 --table-port 10002 --location .state/azurite
"""

from __future__ import annotations

import argparse
import http.client
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

__all__ = [
    "DEVSTORE_ACCOUNT_KEY",
    "DEVSTORE_ACCOUNT_NAME",
    "Azurite",
    "AzuriteError",
    "connection_string_for",
    "start_azurite",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_QUEUE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite-queue"
AZURITE_TABLE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite-table"

DEVSTORE_ACCOUNT_NAME = "devstoreaccount1"
# The well-known, published development-storage key (the same for every Azurite).
DEVSTORE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
HOST = "127.0.0.1"


class AzuriteError(RuntimeError):
    """Azurite could not be started."""


def connection_string_for(queue_port: int, table_port: int | None = None, host: str = HOST) -> str:
    """The development-storage connection string for Azurite's queue (and table) service."""
    text = (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={DEVSTORE_ACCOUNT_NAME};"
        f"AccountKey={DEVSTORE_ACCOUNT_KEY};"
        f"QueueEndpoint=http://{host}:{queue_port}/{DEVSTORE_ACCOUNT_NAME};"
    )
    if table_port is not None:
        text += f"TableEndpoint=http://{host}:{table_port}/{DEVSTORE_ACCOUNT_NAME};"
    return text


class Azurite:
    """Running Azurite queue and table services started by :func:`start_azurite`."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        queue_port: int,
        stderr_path: Path,
        table: Azurite | None = None,
    ):
        self.process = process
        self.queue_port = queue_port
        self.stderr_path = stderr_path
        self.table = table  # the table service, a second process

    @property
    def queue_endpoint(self) -> str:
        return f"http://{HOST}:{self.queue_port}/{DEVSTORE_ACCOUNT_NAME}"

    @property
    def table_port(self) -> int | None:
        return self.table.queue_port if self.table is not None else None

    @property
    def connection_string(self) -> str:
        return connection_string_for(self.queue_port, self.table_port)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop Azurite, wait for it, kill it if it does not exit in ``timeout``.

        SIGINT, not SIGTERM: azurite-table saves its database only on SIGINT (a SIGTERM
        loses the tables created since its last autosave, which a restart on the same
        data folder would miss)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.table is not None:
            self.table.stop(timeout)

    def __enter__(self) -> Azurite:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Azurite queue {self.queue_endpoint} pid={self.process.pid}>"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _azurite_answers(port: int, service: str) -> bool:
    """Whether Azurite's `service` (not just anything) answers HTTP on the port."""
    connection = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        path = f"/{DEVSTORE_ACCOUNT_NAME}" + ("?comp=list" if service == "queue" else "/Tables")
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return (response.getheader("Server") or "").startswith(f"Azurite-{service.title()}")
    except OSError:
        return False
    finally:
        connection.close()


def _read_tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return text[-limit:].strip()


def _launch(data_dir: Path, port: int, timeout: float, service: str = "queue") -> Azurite:
    stderr_path = data_dir / f"azurite-{service}.stderr.log"
    command = [
        str(AZURITE_QUEUE_BIN if service == "queue" else AZURITE_TABLE_BIN),
        "--silent",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        f"--{service}Host",
        HOST,
        f"--{service}Port",
        str(port),
        "--location",
        str(data_dir),
    ]
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - fixed executable, no shell
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
        )
    azurite = Azurite(process, port, stderr_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AzuriteError(
                f"azurite-{service} exited with code {process.returncode} before accepting "
                f"connections on {HOST}:{port}. Its stderr:\n{_read_tail(stderr_path)}"
            )
        if _azurite_answers(port, service):
            return azurite
        time.sleep(0.05)
    azurite.stop()
    raise AzuriteError(
        f"azurite-{service} did not accept connections on {HOST}:{port} within {timeout:g} s. "
        f"Its stderr:\n{_read_tail(stderr_path)}"
    )


def start_azurite(
    data_dir: Path, port: int = 0, *, table_port: int = 0, timeout: float = 20.0
) -> Azurite:
    """Start Azurite's queue and table services on 127.0.0.1 and wait until both accept
    connections.

    A port of 0 picks a free one (retrying with another one if it was taken meanwhile); a
    given port that is already in use is an error. Ready means Azurite answers HTTP there.
    Azurite keeps its data in ``data_dir`` (created if missing); its stderr goes to
    ``data_dir/azurite-<service>.stderr.log`` and is quoted in the error if it fails.
    """
    for binary in (AZURITE_QUEUE_BIN, AZURITE_TABLE_BIN):
        if not binary.exists():
            raise AzuriteError(
                f"{binary} not found: run `npm ci` in {REPO_ROOT} (Azurite is pinned "
                "in package.json)."
            )
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    for wanted in (port, table_port):
        if wanted != 0 and not _port_is_free(wanted):
            raise AzuriteError(
                f"port {HOST}:{wanted} is already in use: is another Azurite running?"
            )
    return _both(
        lambda service, wanted: _start(data_dir, wanted, timeout, service), port, table_port
    )


def relaunch_azurite(
    data_dir: Path, port: int, table_port: int, *, timeout: float = 20.0
) -> Azurite:
    """Start Azurite again on exactly the ports and data folder it had (after a stop).

    No free-port check: it binds without SO_REUSEADDR, so it would see the old
    connections in TIME_WAIT as a port in use, where Node (Azurite) reuses the port."""
    return _both(
        lambda service, wanted: _launch(data_dir, wanted, timeout, service), port, table_port
    )


def _both(start: Callable[[str, int], Azurite], port: int, table_port: int) -> Azurite:
    """The table service, then the queue service (which holds it); neither if one fails."""
    table = start("table", table_port)
    try:
        queue = start("queue", port)
    except BaseException:
        table.stop()
        raise
    queue.table = table
    return queue


def _start(data_dir: Path, port: int, timeout: float, service: str) -> Azurite:
    attempts = 3 if port == 0 else 1
    for attempt in range(attempts):
        try:
            return _launch(data_dir, port or _free_port(), timeout, service)
        except AzuriteError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.azurite", description="Run Azurite's queue and table services."
    )
    parser.add_argument("--port", type=int, default=10001, help="queue port (0 = any free)")
    parser.add_argument("--table-port", type=int, default=10002, help="table port (0 = any free)")
    parser.add_argument(
        "--location", type=Path, default=REPO_ROOT / ".state" / "azurite", help="data folder"
    )
    args = parser.parse_args(argv)
    try:
        azurite = start_azurite(args.location, args.port, table_port=args.table_port)
    except AzuriteError as error:
        print(f"[azurite] {error}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with azurite:
        print(
            f"[azurite] queue service at {azurite.queue_endpoint}, table service on port "
            f"{azurite.table_port}",
            file=sys.stderr,
        )
        print(azurite.connection_string, flush=True)
        while not stopping.wait(0.5):
            if azurite.process.poll() is not None:
                print(
                    f"[azurite] exited with code {azurite.process.returncode}:\n"
                    f"{_read_tail(azurite.stderr_path)}",
                    file=sys.stderr,
                )
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
