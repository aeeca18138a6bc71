"""What the benchmarks share: the stack's settings for them, a tenant of synced (or not yet
synced) users, a child process's figures, Graph's request log by kind, and the tables
they print."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from local_stack.stack import REPO, LocalStack

STATE = REPO / ".state" / "bench"

SAMPLE_DIRECTORY = REPO / "local_stack" / "samples" / "directory.json"

SKU = "ENTERPRISEPACK"

SEATS = 100_000

# Throttling off in the emulator: these figures are the app's and the stack's, not
# Graph's budget (3,500 units per 10 s by default in the emulator).
NO_THROTTLE = {"units_per_10s": 0, "writes_per_150s": 0}

# The host's settings beyond the committed sample: a deadline no benchmark reaches and
# short rechecks, so parked requests come back within seconds.
HOST_SETTINGS = {
    "SYNC_TIMEOUT": "PT10M",
    "RECHECK_INITIAL_DELAY": "PT1S",
    "RECHECK_MAX_DELAY": "PT2S",
    "SWEEP_SCHEDULE": "*/2 * * * * *",
}

HOST_READY_SECONDS = 60.0

# Application Insights on: a connection string whose ingestion endpoint is a closed local
# port (there is no Azure here), so the exporter is set up as in Azure and its uploads
# fail fast. The set-up is what a cold start pays for.
TELEMETRY_SETTINGS = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (
        "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        "IngestionEndpoint=http://127.0.0.1:9/"
    )
}

# Graph's throttling as the big day has it (a large tenant's resource units, 3,000 writes
# per 150 s, the documented token bucket), at Graph's own speed.
GRAPH_THROTTLE = {"units_per_10s": 8000, "writes_per_150s": 3000, "throttle_model": "bucket"}

GRAPH_WRITES_PER_SECOND = 3000 / 150


def run_child(
    module_and_args: list[str], env: dict[str, str], *, timeout: float, what: str
) -> tuple[dict[str, Any], float]:
    """Run `python -m MODULE ARGS` in a fresh process; its last stdout line is JSON figures."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", *module_and_args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures, wall


def directory(upns: Iterable[str], *, synced: bool) -> dict[str, Any]:
    """The sample tenant's SKUs with plenty of seats, and the given users (usageLocation
    FR, so the only write is assignLicense)."""
    sample = json.loads(SAMPLE_DIRECTORY.read_text())
    skus = [dict(sku, enabled=SEATS) for sku in sample["skus"]]
    users = [
        {
            "userPrincipalName": upn,
            "displayName": upn.split("@")[0],
            "onPremisesSyncEnabled": True if synced else None,
            "usageLocation": "FR",
        }
        for upn in upns
    ]
    return {"skus": skus, "planRules": sample.get("planRules", {}), "users": users}


def upns(prefix: str, count: int) -> list[str]:
    return [f"{prefix}.{n:05d}@contoso.com" for n in range(count)]


def request(request_id: str, upn: str) -> dict[str, Any]:
    return {"requestId": request_id, "userPrincipalName": upn, "licenses": [{"skuPartNumber": SKU}]}


def fresh_state(name: str) -> Path:
    path = STATE / name
    shutil.rmtree(path, ignore_errors=True)
    return path


def graph_calls(log: Sequence[Mapping[str, Any]]) -> Counter[str]:
    """HTTP requests the emulator received, by kind; `$batch` items counted apart."""
    kinds: Counter[str] = Counter()
    for entry in log:
        method, path = entry["method"], entry["path"]
        if entry.get("batchItem"):
            kinds["$batch item"] += 1
            continue
        kinds["total"] += 1
        if path.endswith("/$batch"):
            kinds["$batch"] += 1
        elif path.endswith("/assignLicense"):
            kinds["assignLicense"] += 1
        elif "/subscribedSkus" in path:
            kinds["subscribedSkus"] += 1
        elif method == "GET" and "/users" in path:
            kinds["user lookup"] += 1
        elif method == "PATCH":
            kinds["PATCH user"] += 1
        else:
            kinds["other"] += 1
        if entry.get("status") and entry["status"] >= 500:
            kinds["5xx answers"] += 1
    return kinds


def wait_for_host(stack: LocalStack) -> None:
    """Until the development host has indexed the functions and polls its queues."""
    deadline = time.monotonic() + HOST_READY_SECONDS
    while "[devhost] ready" not in stack.host_log():
        if stack.host is not None and stack.host.poll() is not None:
            raise RuntimeError(f"the development host exited:\n{stack.host_log()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("the development host did not become ready")
        time.sleep(0.1)


def event_time(event: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def mib(kib: float) -> float:
    return kib / 1024


def table(title: str, rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n{title}")
    for n, row in enumerate(rows):
        print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))
