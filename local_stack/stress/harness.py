"""What every stress part shares: a local stack, the crash-point app folder, development
hosts it starts, kills and watches, the messages it posts, and the events it reads.

The harness only ever looks at the app from the outside (queues, events, the Graph
emulator); see `judge`.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from local_stack.stack import REPO, LocalStack
from local_stack.stress.crashpoints import (
    CRASH_EXIT_CODE,
    CountLine,
    read_count_file,
    write_app_folder,
)
from local_stack.stress.judge import Answers, Observed, Posted, Verdict, judge, posted

STATE: Final = REPO / ".state" / "stress"
SAMPLE_DIRECTORY: Final = REPO / "local_stack" / "samples" / "directory.json"
E3: Final = "6fd2c87f-b296-42f0-b197-1e91e994b900"
MCOEV: Final = "e43b5b99-8dfb-405f-9987-dc307f34bcbd"
SEATS: Final = 100_000
QUEUES_TO_EMPTY: Final = ("user-onboard", "user-onboard-pending", "user-onboard-poison")
BASE_SETTINGS: Final = {
    "SWEEP_SCHEDULE": "*/1 * * * * *",
    "SYNC_TIMEOUT": "PT5M",
    "RECHECK_INITIAL_DELAY": "PT1S",
    "RECHECK_MAX_DELAY": "PT2S",
    "DEFAULT_USAGE_LOCATION": "FR",
    "SET_USAGE_LOCATION": "true",
    "DEFAULT_LICENSES": "",
    # Poisoned messages are reported at once (v1's behaviour), not held for an operator.
    "POISON_HOLD": "PT0S",
}


def utc_in(seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Host:
    """One development host process the harness started."""

    number: int
    process: subprocess.Popen[bytes]
    log: Path
    count_file: Path
    crash_at: int | None = None
    when: str = "before"
    stopped_by_us: bool = False  # SIGKILL or SIGTERM sent by the harness
    started: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return self.process.poll() is None

    def ready(self) -> bool:
        return self.log.exists() and "[devhost] ready" in self.log.read_text(errors="replace")

    def counts(self) -> list[CountLine]:
        return read_count_file(self.count_file)

    def crashed_at_point(self) -> bool:
        return self.process.returncode == CRASH_EXIT_CODE and self.crash_at is not None


class Harness:
    """A stack for one part; use as a context manager."""

    def __init__(
        self,
        name: str,
        *,
        settings: Mapping[str, str] | None = None,
        seed: int = 0,
        state_root: Path = STATE,
        emulator_options: Mapping[str, Any] | None = None,
        host_env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.state = state_root / name
        shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True)
        directory = json.loads(SAMPLE_DIRECTORY.read_text())
        directory["users"] = []
        for sku in directory["skus"]:
            sku["enabled"] = SEATS
        self.stack = LocalStack(
            self.state,
            directory,
            settings={**BASE_SETTINGS, **(settings or {})},
            emulator_options={"fault_seed": seed, **(emulator_options or {})},
        )
        self.host_env = dict(host_env or {})
        self.rng = random.Random(seed)
        self.app_dir = write_app_folder(self.state / "app")
        self.messages: list[Posted] = []
        self.events: list[dict[str, Any]] = []
        self.answers = Answers()
        self.hosts: list[Host] = []
        self.issued_ids: set[str] = set()
        self.held_before: set[tuple[str, str]] = set()
        self.seats_before: dict[str, int] = {}
        self.figures: dict[str, Any] = {}
        self.started = time.monotonic()
        self.client_resets = 0
        self._counter = 0
        self._read_errors = 0

    # --- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Harness:
        self.stack.start()
        self.seats_before = self.seats()
        # A killed host, or an app that gave up on a slow answer, resets its connections to
        # the emulator; its server would print each traceback. Count them instead.
        server = self.graph._server
        default = server.handle_error

        def count_reset(request: Any, client_address: Any) -> None:
            if isinstance(sys.exc_info()[1], ConnectionError):
                self.client_resets += 1
            else:
                default(request, client_address)

        server.handle_error = count_reset
        return self

    def __exit__(self, *exc: object) -> None:
        for host in self.hosts:
            if host.alive():
                host.stopped_by_us = True
                host.process.kill()
                host.process.wait()
        self.stack.stop()

    @property
    def graph(self) -> Any:
        assert self.stack.graph is not None
        return self.stack.graph

    def seats(self) -> dict[str, int]:
        return {
            str(s["skuId"]): int(s["consumedUnits"]) for s in self.graph.directory.subscribed_skus()
        }

    def next_number(self) -> int:
        self._counter += 1
        return self._counter

    # --- users -----------------------------------------------------------------------

    def add_user(self, upn: str, **fields: Any) -> str:
        spec = {
            "userPrincipalName": upn,
            "onPremisesSyncEnabled": True,
            "usageLocation": "FR",
            **fields,
        }
        record = self.graph.add_user(spec)
        user_id = str(record["id"])
        self.issued_ids.add(user_id)
        for lic in spec.get("assignedLicenses", []):
            # A seat the user held before the app did anything: not the app's.
            self.held_before.add((user_id, str(lic["skuId"])))
            self.seats_before[str(lic["skuId"])] = self.seats_before.get(str(lic["skuId"]), 0) + 1
        return user_id

    # --- hosts -----------------------------------------------------------------------

    def start_host(
        self,
        *,
        crash_at: int | None = None,
        when: str = "before",
        env: Mapping[str, str] | None = None,
        wait_ready: bool = True,
    ) -> Host:
        number = len(self.hosts) + 1
        log_name = f"host-{number:03d}.log"
        count_file = self.state / f"host-{number:03d}.count"
        extra = {**self.host_env, **(env or {}), "STRESS_COUNT_FILE": str(count_file)}
        if crash_at is not None:
            extra |= {"STRESS_CRASH_AT": str(crash_at), "STRESS_CRASH_WHEN": when}
        process = self.stack.spawn_host(app_dir=self.app_dir, extra_env=extra, log_name=log_name)
        host = Host(number, process, self.state / log_name, count_file, crash_at, when)
        self.hosts.append(host)
        if wait_ready:
            deadline = time.monotonic() + 30
            while not host.ready() and host.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
        return host

    def kill(self, host: Host) -> None:
        """SIGKILL: a power cut at whatever the host was doing."""
        if host.alive():
            host.stopped_by_us = True
            host.process.send_signal(signal.SIGKILL)
        host.process.wait()

    def stop(self, host: Host) -> None:
        if host.alive():
            host.stopped_by_us = True
            host.process.send_signal(signal.SIGTERM)
            try:
                host.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                host.process.kill()
                host.process.wait()

    def wait_exit(self, host: Host, timeout: float) -> bool:
        """Wait for the host to exit by itself (a crash point); True if it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not host.alive():
                return True
            self.poll()
            time.sleep(0.05)
        return not host.alive()

    def other_crashes(self) -> list[str]:
        """Hosts that exited without the harness asking (no SIGKILL, SIGTERM or crash point)."""
        out = []
        for host in self.hosts:
            code = host.process.poll()
            if code is None or host.stopped_by_us or host.crashed_at_point():
                continue
            tail = host.log.read_text(errors="replace")[-1500:] if host.log.exists() else ""
            out.append(f"host {host.number} exited {code}: {tail}")
        return out

    # --- messages --------------------------------------------------------------------

    def post(self, text: str, *, expect: str | None = None) -> Posted:
        qid = str(self.stack.queue("user-onboard").send_message(text).id)
        message = posted(qid, text, expect=expect)
        self.messages.append(message)
        return message

    def post_json(self, body: Mapping[str, Any], *, expect: str | None = None) -> Posted:
        return self.post(json.dumps(body), expect=expect)

    def post_many(self, texts: Iterable[str], threads: int = 4) -> list[Posted]:
        """Post concurrently (as several HR systems would); returns them in order."""
        queue = self.stack.queue("user-onboard")
        items = list(texts)
        with ThreadPoolExecutor(threads) as pool:
            ids = list(pool.map(lambda text: str(queue.send_message(text).id), items))
        out = [posted(qid, text) for qid, text in zip(ids, items, strict=True)]
        self.messages.extend(out)
        return out

    def post_to_poison(self, body: Mapping[str, Any], *, expect: str | None = None) -> Posted:
        """A message the Functions host gave up on (as if: it is put there directly)."""
        text = json.dumps(body)
        qid = str(self.stack.queue("user-onboard-poison").send_message(text).id)
        message = posted(qid, text, expect=expect, queue="user-onboard-poison")
        self.messages.append(message)
        return message

    # --- events ----------------------------------------------------------------------

    def poll(self) -> int:
        """Read every event visible now (hidden for two hours, not deleted: the harness
        only observes). Storage errors (an outage the part caused) read nothing."""
        queue = self.stack.queue("user-onboard-events")
        new: list[dict[str, Any]] = []
        try:
            for message in queue.receive_messages(messages_per_page=32, visibility_timeout=7200):
                new.append(json.loads(message.content))
        except Exception:
            self._read_errors += 1
        self.events.extend(new)
        self.answers.add(new)
        return len(new)

    def queue_counts(self) -> dict[str, int]:
        return {name: self.stack.count(name) for name in QUEUES_TO_EMPTY}

    def unanswered(self) -> list[Posted]:
        return self.answers.unanswered(self.messages)

    def done(self) -> bool:
        if self.unanswered():
            return False
        try:
            return not any(self.queue_counts().values())
        except Exception:
            return False

    def wait_done(self, timeout: float, *, while_waiting: Callable[[], None] | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if while_waiting is not None:
                while_waiting()
            if self.done():
                return True
            time.sleep(0.1)
        self.poll()
        return self.done()

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if condition():
                return True
            time.sleep(0.1)
        return condition()

    def seen(self, event_id: str) -> bool:
        return any(e.get("id") == event_id for e in self.events)

    # --- judging ---------------------------------------------------------------------

    def observed(self) -> Observed:
        self.poll()
        return Observed(
            events=self.events,
            graph_log=self.graph.requests(),
            seats_before=self.seats_before,
            seats_after=self.seats(),
            held_before=self.held_before,
            issued_ids=self.issued_ids,
            queue_counts=self.queue_counts(),
            holders_after={
                (user_id, str(lic["skuId"]))
                for user_id in self.issued_ids
                for lic in self.graph.user_record(user_id)["assignedLicenses"]
            },
        )

    def judge(self) -> Verdict:
        for host in self.hosts:
            # The work is done (or the part gave up waiting): a SIGKILL freezes the state
            # without a graceful host's drain period.
            self.kill(host)
        observed = self.observed()
        verdict = judge(self.messages, observed)
        self._keep(observed)
        crashes = self.other_crashes()
        verdict.figures |= {
            "host_crashes_other": len(crashes),
            "host_crash_examples": [c[-600:] for c in crashes[:3]],
            "hosts_started": len(self.hosts),
            "host_invocation_errors": sum(
                _count_lines(h.log, (" failed ", "internal error")) for h in self.hosts
            ),
            # Invocations of a message delivered before (a dead host's, a lease run out).
            "host_redeliveries": sum(_redeliveries(h.log) for h in self.hosts),
            "event_read_errors": self._read_errors,
            "graph_connections_reset_by_the_app": self.client_resets,
            "faults": fault_figures(observed.graph_log),
            "duration_s": round(time.monotonic() - self.started, 1),
            **self.figures,
        }
        return verdict

    def _keep(self, observed: Observed) -> None:
        """What the judge saw, for whoever reads a failure: one JSON document a line."""
        lines = {
            "events.jsonl": observed.events,
            "messages.jsonl": [
                {**vars(m), "identifiers": dict(m.identifiers)} for m in self.messages
            ],
            "graph-requests.jsonl": observed.graph_log,
        }
        for name, items in lines.items():
            with (self.state / name).open("w", encoding="utf-8") as out:
                for item in items:
                    out.write(json.dumps(item, default=str) + "\n")


def _count_lines(path: Path, needles: tuple[str, ...]) -> int:
    if not path.exists():
        return 0
    return sum(
        1
        for line in path.read_text(errors="replace").splitlines()
        if line.startswith("[devhost]") and any(n in line for n in needles)
    )


_DEQUEUE: Final = re.compile(r" dequeue=(\d+)/")


def _redeliveries(path: Path) -> int:
    if not path.exists():
        return 0
    counts = (_DEQUEUE.search(line) for line in path.read_text(errors="replace").splitlines())
    return sum(1 for m in counts if m and int(m.group(1)) > 1)


def fault_figures(log: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Graph trouble as the request log shows it."""
    out = {"429": 0, "503": 0, "dropped": 0, "other_5xx": 0, "throttled_by_budget": 0}
    for entry in log:
        status = entry.get("status")
        if entry.get("dropped"):
            out["dropped"] += 1
        elif status == 429:
            body = entry.get("responseBody") or {}
            message = str((body.get("error") or {}).get("message", ""))
            out["throttled_by_budget" if "retry again" in message else "429"] += 1
        elif status == 503:
            out["503"] += 1
        elif isinstance(status, int) and status >= 500:
            out["other_5xx"] += 1
    return out


# --- the suite's own requests ----------------------------------------------------------

LICENSES_E3: Final = [{"skuPartNumber": "ENTERPRISEPACK", "disabledPlans": ["YAMMER_ENTERPRISE"]}]
KIND_MIX: Final = (
    "now",
    "noloc",
    "late",
    "empid",
    "apos",
    "immut",
    "has",
    "pair",
    "two_skus",
    "lag",
    "dollar",
    "unknown_sku",
    "never",
    "invalid",
)


@dataclass(frozen=True)
class Planned:
    """A request of the suite's own: its body and the outcome it must end with."""

    request_id: str
    body: dict[str, Any]
    expect: str
    kind: str


def plan_requests(
    harness: Harness,
    prefix: str,
    kinds: Iterable[str],
    *,
    late_after: float = 4.0,
    never_deadline: float = 20.0,
) -> list[Planned]:
    """Create the users these requests need and return the requests (not posted yet)."""
    out: list[Planned] = []
    for kind in kinds:
        n = harness.next_number()
        rid = f"{prefix}-{n:05d}-{kind}"
        upn = f"{rid.lower()}@contoso.com"
        body: dict[str, Any] = {"requestId": rid, "userPrincipalName": upn, "licenses": LICENSES_E3}
        expect = "licensed"
        if kind == "now":
            harness.add_user(upn)
        elif kind == "noloc":
            harness.add_user(upn, usageLocation=None)
        elif kind == "late":
            harness.add_user(upn, onPremisesSyncEnabled=None, syncAfterSeconds=late_after)
        elif kind == "empid":
            employee = f"E{n:07d}"
            harness.add_user(upn, employeeId=employee)
            body = {"requestId": rid, "employeeId": employee, "licenses": LICENSES_E3}
        elif kind == "apos":
            upn = f"o'{rid.lower()}@contoso.com"
            harness.add_user(upn)
            body["userPrincipalName"] = upn
        elif kind == "dollar":
            upn = f"${rid.lower()}@contoso.com"
            harness.add_user(upn)
            body["userPrincipalName"] = upn
        elif kind == "immut":
            immutable = f"imm'{n}'==/+ {rid}"
            harness.add_user(upn, onPremisesImmutableId=immutable)
            body = {"requestId": rid, "onPremisesImmutableId": immutable, "licenses": LICENSES_E3}
        elif kind == "has":
            harness.add_user(upn, assignedLicenses=[{"skuId": E3, "disabledPlans": []}])
        elif kind == "pair":
            harness.add_user(upn)
            twin = f"{rid}-twin"
            out.append(Planned(twin, {**body, "requestId": twin}, "licensed", kind))
        elif kind == "two_skus":
            harness.add_user(upn)
            body["licenses"] = [{"skuPartNumber": "MCOEV"}, *LICENSES_E3]
        elif kind == "lag":
            harness.add_user(
                upn,
                usageLocation=None,
                lag={"writeNotFound": 2, "keyLookupLag": 1, "usageLocationLag": 1},
            )
        elif kind == "unknown_sku":
            harness.add_user(upn)
            body["licenses"] = [{"skuPartNumber": "NOSUCHSKU"}]
            expect = "failed:unknown_sku"
        elif kind == "never":
            harness.add_user(upn, onPremisesSyncEnabled=None)
            body["syncDeadline"] = utc_in(never_deadline)
            expect = "failed:sync_timeout"
        elif kind == "invalid":
            body = {"requestId": rid, "userPrincipleName": upn, "licenses": LICENSES_E3}
            expect = "rejected:invalid_message"
        else:
            raise ValueError(f"unknown request kind {kind!r}")
        out.append(Planned(rid, body, expect, kind))
    return out


def mix(count: int, kinds: tuple[str, ...] = KIND_MIX) -> list[str]:
    return [kinds[i % len(kinds)] for i in range(count)]


def post_planned(harness: Harness, planned: Iterable[Planned]) -> list[Posted]:
    return [harness.post_json(p.body, expect=p.expect) for p in planned]
