"""One big-day run: N synced users posted at once onto `user-onboard` while the app's write
budget is already spent, P development hosts running the queue trigger and one more
running the timer (Flex Consumption scales each of them on instances of its own), all
against one Azurite and one Graph emulator with throttling on at Graph's rates, time
divided by the scale's factor.

Judged from outside only: the events on `user-onboard-events` (read, never deleted), the
emulator's request log, the queues' counts, the storage requests the hosts sent (through
`storage_proxy`) and each host's peak RSS (`VmHWM`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from local_stack.azurite import connection_string_for
from local_stack.bench.bigday.app import write_app_folder
from local_stack.bench.bigday.figures import request_id, summarize, terminal_events
from local_stack.bench.bigday.scale import TimeScale
from local_stack.graph_emulator.throttle import Admitted
from local_stack.stack import REPO, LocalStack

STATE: Final = REPO / ".state" / "bench" / "bigday"
SAMPLE_DIRECTORY: Final = REPO / "local_stack" / "samples" / "directory.json"
SKU: Final = "ENTERPRISEPACK"
SEATS: Final = 1_000_000
GRAPH_WRITES_PER_SECOND: Final = 3000 / 150  # per app and tenant (docs/graph-facts.md)
READY_SECONDS: Final = 60.0


@dataclass(frozen=True)
class BigDay:
    """What one run measures."""

    users: int = 3000
    processes: int = 1
    scale: TimeScale = field(default_factory=TimeScale)
    # The emulator's throttling: "bucket" (Graph's documented model), "window" (the
    # emulator's default) or "off" (the machine's own speed, nothing refused).
    model: str = "bucket"
    units_per_10s: int = 8000  # a large tenant (over 500 users)
    count_storage: bool = True
    timeout: float | None = None  # seconds; default 20 floors + 120 s
    state: Path = STATE

    @property
    def floor_seconds(self) -> float:
        """The users' writes at Graph's write rate, S times faster."""
        return self.users / (GRAPH_WRITES_PER_SECOND * self.scale.factor)


def upn(n: int) -> str:
    return f"bigday.{n:06d}@contoso.com"


def tenant(users: int) -> dict[str, Any]:
    """The sample tenant's SKUs with seats for everyone, and `users` synced users who have
    a usage location: each needs exactly one write (assignLicense)."""
    sample = json.loads(SAMPLE_DIRECTORY.read_text())
    return {
        "skus": [dict(sku, enabled=SEATS) for sku in sample["skus"]],
        "planRules": sample.get("planRules", {}),
        "users": [
            {
                "userPrincipalName": upn(n),
                "displayName": f"Big Day {n}",
                "onPremisesSyncEnabled": True,
                "usageLocation": "FR",
            }
            for n in range(users)
        ],
    }


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM of a live process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of a live process so far (`/proc/<pid>/stat`)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StorageCounter:
    """The counting proxy in a process of its own (it must not share the benchmark's GIL
    with the Graph emulator)."""

    def __init__(self, state: Path, queue_port: int, table_port: int) -> None:
        self.path = state / "storage-counts.json"
        self.process = subprocess.Popen(  # noqa: S603 - our own module
            [
                sys.executable,
                "-m",
                "local_stack.bench.bigday.storage_proxy",
                f"--queue-port={queue_port}",
                f"--table-port={table_port}",
                f"--counts={self.path}",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        words = self.process.stdout.readline().split()
        if len(words) != 3 or words[0] != "storage-proxy":
            self.process.kill()
            raise RuntimeError("the storage proxy did not start")
        self.connection_string = connection_string_for(int(words[1]), int(words[2]))

    def snapshot(self) -> Counter[str]:
        """The counts so far (the proxy writes them on SIGUSR1)."""
        before = json.loads(self.path.read_text())["snapshot"]
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            data = json.loads(self.path.read_text())
            if data["snapshot"] > before:
                return Counter(data["counts"])
            time.sleep(0.02)
        raise RuntimeError("the storage proxy did not answer")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class Host:
    role: str  # "queue" or "timer"
    process: subprocess.Popen[bytes]
    log: Path
    peak_rss_mib: float | None = None
    cpu_at_t0: float | None = None
    cpu_seconds: float | None = None  # from t0 to the end of the day

    def ready(self) -> bool:
        return self.log.exists() and "[devhost] ready" in self.log.read_text(errors="replace")


class Run:
    """The stack, the proxy and the hosts of one run; a context manager."""

    def __init__(self, config: BigDay) -> None:
        self.config = config
        self.state = config.state / f"p{config.processes}"
        self.stack = LocalStack(
            self.state,
            tenant(config.users),
            settings=config.scale.app_settings(),
            emulator_options={
                "units_per_10s": 0 if config.model == "off" else config.units_per_10s,
                "writes_per_150s": 0 if config.model == "off" else 3000,
                "time_scale": config.scale.factor,
                "throttle_model": "window" if config.model == "off" else config.model,
            },
        )
        self.counter: StorageCounter | None = None
        self.hosts: list[Host] = []
        self.events: list[dict[str, Any]] = []
        self.t0 = datetime.now(UTC)
        self.storage_at_t0: Counter[str] = Counter()

    def __enter__(self) -> Run:
        shutil.rmtree(self.state, ignore_errors=True)
        self.stack.start()
        try:
            self._start_hosts()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start_hosts(self) -> None:
        azurite = self.stack.azurite
        assert azurite is not None
        assert azurite.table_port is not None
        storage = azurite.connection_string
        if self.config.count_storage:
            self.counter = StorageCounter(self.state, azurite.queue_port, azurite.table_port)
            storage = self.counter.connection_string
        app_dir = write_app_folder(self.state / "app")
        base = {**self.config.scale.host_env(), "AzureWebJobsStorage": storage}
        roles = ["queue"] * self.config.processes + ["timer"]
        for n, role in enumerate(roles, start=1):
            off = "sweep" if role == "queue" else "user_onboard"
            env = {**base, f"AzureWebJobs.{off}.Disabled": "true"}
            name = f"host-{n:02d}-{role}.log"
            process = self.stack.spawn_host(app_dir=app_dir, extra_env=env, log_name=name)
            self.hosts.append(Host(role, process, self.state / name))
        deadline = time.monotonic() + READY_SECONDS
        while not all(h.ready() for h in self.hosts):
            self._check_hosts()
            if time.monotonic() > deadline:
                raise RuntimeError("the development hosts did not become ready")
            time.sleep(0.05)

    def _check_hosts(self) -> None:
        for host in self.hosts:
            if host.process.poll() is not None:
                tail = host.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"a development host exited:\n{tail}")

    def __exit__(self, *exc: object) -> None:
        for host in self.hosts:
            if host.process.poll() is None:
                host.process.send_signal(signal.SIGTERM)
        for host in self.hosts:
            try:
                host.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                host.process.kill()
                host.process.wait()
        if self.counter is not None:
            self.counter.stop()
        self.stack.stop()

    # --- the day -------------------------------------------------------------------------

    def start_the_day(self) -> None:
        """t0: the app's write budget is spent (a busy day), then every request is posted."""
        graph = self.stack.graph
        assert graph is not None
        if self.counter is not None:
            self.storage_at_t0 = self.counter.snapshot()
        for host in self.hosts:
            host.cpu_at_t0 = cpu_seconds(host.process.pid)
        client = f"Bearer {graph.token}"  # the budget is per app: the token's
        self.t0 = datetime.now(UTC)
        spent = graph.service.throttle.admit(client, 1, 3000)  # no-op when throttling is off
        if not isinstance(spent, Admitted):
            raise RuntimeError(f"could not spend the write budget: {spent}")
        queue = self.stack.queue("user-onboard")
        bodies = [
            json.dumps(
                {
                    "requestId": request_id(n),
                    "userPrincipalName": upn(n),
                    "licenses": [{"skuPartNumber": SKU}],
                }
            )
            for n in range(self.config.users)
        ]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(queue.send_message, bodies))

    def wait_for_the_end(self) -> bool:
        """Read events until every request has a terminal one; False at the timeout."""
        config = self.config
        timeout = config.timeout or 20 * config.floor_seconds + 120
        deadline = time.monotonic() + timeout
        wanted = {request_id(n) for n in range(config.users)}
        queue = self.stack.queue("user-onboard-events")
        while time.monotonic() < deadline:
            for message in queue.receive_messages(messages_per_page=32, visibility_timeout=7200):
                self.events.append(json.loads(message.content))
            if wanted <= set(terminal_events(self.events)):
                return self._settled(deadline)
            self._check_hosts()
            time.sleep(0.5)
        return False

    def _settled(self, deadline: float) -> bool:
        """After the last terminal event, until the hosts have acknowledged every message
        (an outcome is published before its message is deleted), so the storage counts
        are complete."""
        queues = ("user-onboard", "user-onboard-pending")
        while any(self.stack.count(name) for name in queues):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def figures(self, finished: bool) -> dict[str, Any]:
        """Everything the report needs, read from outside the app."""
        for host in self.hosts:
            host.peak_rss_mib = peak_rss_mib(host.process.pid)
            now = cpu_seconds(host.process.pid)
            if now is not None and host.cpu_at_t0 is not None:
                host.cpu_seconds = now - host.cpu_at_t0
        graph = self.stack.graph
        assert graph is not None
        storage: Counter[str] = Counter()
        if self.counter is not None:
            storage = self.counter.snapshot()
            storage.subtract(self.storage_at_t0)
        return summarize(
            self.config,
            self.t0,
            self.events,
            graph.requests(),
            storage,
            finished=finished,
            poison=self.stack.count("user-onboard-poison"),
            pending=self.stack.count("user-onboard-pending"),
            rss={
                role: [h.peak_rss_mib for h in self.hosts if h.role == role]
                for role in ("queue", "timer")
            },
            cpu={
                role: [h.cpu_seconds for h in self.hosts if h.role == role]
                for role in ("queue", "timer")
            },
        )


def run(config: BigDay) -> dict[str, Any]:
    """One run, start to stop."""
    with Run(config) as day:
        day.start_the_day()
        finished = day.wait_for_the_end()
        return day.figures(finished)
