"""Crash points inside the real app, for the stress suite's development hosts.

The stress suite never runs a copy of the app: it runs the repo's `function_app.py`
(its triggers, `shared/` as it is) under the project's development host. What it adds is
a small app folder (`write_app_folder`) holding

- `host.json`, copied from the repo unchanged;
- `function_app.py`, a shim that loads the repo's `function_app.py` under another module
  name, exposes its `app`, and installs the process's service with
  `bootstrap.use(bootstrap.build_service(settings, policy=<pending lease of a few
  seconds>, decorate=CrashPoints(...).wrap))`.

`CrashPoints.wrap` puts a proxy around each port. Every *durable* call (one that changes
storage or the tenant: the `DURABLE` methods below) takes the next number of a
process-wide count. With `STRESS_CRASH_AT=K` the process calls `os._exit(137)` at the
K-th durable call, `before` it is made or `after` it returned (`STRESS_CRASH_WHEN`,
default `before`): a power cut between two durable steps. With `STRESS_CRASH_ON` naming
one durable call (`events.publish`, `topic.publish`, `outbox.hold`...), K counts only the
calls of that one: "die right after the first queue publish" (without `STRESS_CRASH_AT`,
its first call: `STRESS_CRASH_ON=teams.assign_number`). With neither it only counts.
Each call is appended to `STRESS_COUNT_FILE` (when set) as
`<n> <port>.<method> <ok|error|crash-before|crash-after>`, so the harness knows how many
durable steps a batch took and where each host died.

Environment read by the shim: `STRESS_CRASH_AT`, `STRESS_CRASH_WHEN`, `STRESS_CRASH_ON`,
`STRESS_COUNT_FILE`, `STRESS_PENDING_LEASE_SECONDS` (default 5; also the event outbox's
grace, so that what a dead host held is taken over as fast as its pending messages).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, TextIO

from local_stack.function_app_module import import_function_app

REPO: Final = Path(__file__).resolve().parents[2]
CRASH_EXIT_CODE: Final = 137
DEFAULT_PENDING_LEASE_SECONDS: Final = 5

# port name (as `bootstrap.build_service` names it) -> its durable methods: every call
# that writes storage or the tenant (reads and receives are not counted)
DURABLE: Final[Mapping[str, frozenset[str]]] = {
    "pending": frozenset({"park", "reschedule", "complete"}),
    "poison": frozenset({"remove"}),
    "events": frozenset({"publish"}),
    # with an Event Grid topic (EVENT_GRID_TOPIC_ENDPOINT): the topic and the event outbox
    "topic": frozenset({"publish"}),
    "outbox": frozenset({"hold", "keep", "release"}),
    "ledger": frozenset({"open", "decide", "claim", "note", "close", "set_aside", "move"}),
    "retention": frozenset({"track_request", "track_set_aside"}),
    "directory": frozenset(
        {
            "set_usage_location",
            "assign_licenses",
            "add_group_member",
            "reprocess_licenses",
            "provision_on_demand",
        }
    ),
    "teams": frozenset({"assign_number"}),  # (v1.2) an order placed in Teams
}

SHIM: Final = '''"""Stress-suite shim (written by local_stack.stress.crashpoints; do not edit): the
repo's function_app.py, loaded under another name, with crash points around the ports."""

from local_stack.stress.crashpoints import load_app

app = load_app({repo!r})
'''


class CrashPoints:
    """Counts durable port calls across the process; exits at the chosen one."""

    def __init__(
        self,
        crash_at: int | None = None,
        when: str = "before",
        count_file: Path | None = None,
        exit: Callable[[int], object] = os._exit,
        on: str | None = None,
    ) -> None:
        if when not in ("before", "after"):
            raise ValueError("STRESS_CRASH_WHEN must be 'before' or 'after'")
        known = {f"{port}.{method}" for port, methods in DURABLE.items() for method in methods}
        if on is not None and on not in known:
            raise ValueError(f"STRESS_CRASH_ON must be one of {sorted(known)}")
        self.crash_at = crash_at
        self.when = when
        self.on = on
        self.count = 0
        self._counts_on = 0
        self._exit = exit
        self._lock = threading.Lock()
        self._log: TextIO | None = (
            count_file.open("a", encoding="utf-8", buffering=1) if count_file else None
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CrashPoints:
        at = env.get("STRESS_CRASH_AT", "").strip()
        count_file = env.get("STRESS_COUNT_FILE", "").strip()
        return cls(
            crash_at=int(at) if at else None,
            when=env.get("STRESS_CRASH_WHEN", "before").strip() or "before",
            count_file=Path(count_file) if count_file else None,
            on=env.get("STRESS_CRASH_ON", "").strip() or None,
        )

    def wrap(self, name: str, port: Any) -> Any:
        """`bootstrap.build_service`'s `decorate`: a counting proxy for a known port."""
        methods = DURABLE.get(name)
        return _Proxy(self, name, port, methods) if methods else port

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _next(self, what: str) -> tuple[int, bool]:
        """The call's number, and whether it is the one to crash at."""
        with self._lock:
            self.count += 1
            if self.on is None:
                return self.count, self.count == self.crash_at
            if what != self.on:
                return self.count, False
            self._counts_on += 1
            return self.count, self._counts_on == (self.crash_at or 1)

    def _note(self, n: int, what: str, how: str) -> None:
        if self._log is not None:
            self._log.write(f"{n} {what} {how}\n")

    def _crash(self, n: int, what: str, how: str) -> None:
        self._note(n, what, how)
        sys.stderr.write(f"[stress] crash point {n} ({what}, {how}): exiting\n")
        sys.stderr.flush()
        self._exit(CRASH_EXIT_CODE)

    async def call(self, what: str, method: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        n, here = self._next(what)
        if here and self.when == "before":
            self._crash(n, what, "crash-before")
        try:
            result = await method(*args, **kw)
        except BaseException:
            self._note(n, what, "error")
            raise
        if here and self.when == "after":
            self._crash(n, what, "crash-after")
        self._note(n, what, "ok")
        return result


class _Proxy:
    """The port with its durable methods counted; everything else passes through."""

    def __init__(self, points: CrashPoints, name: str, port: Any, methods: frozenset[str]):
        self._points = points
        self._name = name
        self._port = port
        self._methods = methods

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._port, attribute)
        if attribute not in self._methods:
            return value
        what = f"{self._name}.{attribute}"
        points = self._points

        async def counted(*args: Any, **kwargs: Any) -> Any:
            return await points.call(what, value, *args, **kwargs)

        return counted


def load_app(repo: str | Path = REPO, env: Mapping[str, str] | None = None) -> Any:
    """What the shim runs at import: the repo's `app`, with the crash-point service."""
    env = os.environ if env is None else env
    module = import_function_app(repo)

    from shared import bootstrap

    settings = bootstrap.settings()
    lease = int(env.get("STRESS_PENDING_LEASE_SECONDS") or DEFAULT_PENDING_LEASE_SECONDS)
    policy = dataclasses.replace(
        bootstrap.policy_from(settings),
        pending_lease=timedelta(seconds=lease),
        outbox_grace=timedelta(seconds=lease),
    )
    points = CrashPoints.from_env(env)
    bootstrap.use(bootstrap.build_service(settings, policy=policy, decorate=points.wrap))
    return module.app


def write_app_folder(folder: Path, repo: Path = REPO) -> Path:
    """The stress app folder: the repo's host.json and the crash-point shim."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(repo / "host.json", folder / "host.json")
    (folder / "function_app.py").write_text(SHIM.format(repo=str(repo)), encoding="utf-8")
    return folder


@dataclasses.dataclass(frozen=True)
class CountLine:
    n: int
    what: str
    how: str


def read_count_file(path: Path) -> list[CountLine]:
    """The durable calls a host logged (see the module docstring)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit():
            out.append(CountLine(int(parts[0]), parts[1], parts[2]))
    return out
