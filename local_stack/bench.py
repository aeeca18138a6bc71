"""`make bench`: cold start (with and without Application Insights), intake throughput, a
1,000-user sweep, a 503 storm, a forced sync against the regular sync cycle, a big day
under Graph's throttling (`local_stack.bench_bigday`), a sweep over a backlog under
Graph's throttling, and requests per second through the HTTP front door against the
queue, measured on the local stack (Azurite, the Graph emulator, the development host).

Every figure in docs/benchmarks.md comes from this module; it prints a table and writes
the raw figures to `.state/bench/results.json`. There are no timing assertions: figures
depend on the machine. Each benchmark starts (and always stops) a stack of its own under
`.state/bench/<name>`, so one benchmark's warm caches never flatter the next.

    python -m local_stack.bench [--only coldstart,intake,sweep,storm,forcedsync,bigday,backlog,
        frontdoor]
        [--runs 3] [--users 200] [--pending 1000] [--storm-users 100] [--forced-users 20]
        [--backlog 1000]
        [--bigday-users 3000] [--bigday-processes 1,4,8] [--time-scale 5]
        [--bigday-throttle bucket|window|off] [--http-requests 300] [--http-clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
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
BENCHMARKS = (
    "coldstart",
    "intake",
    "sweep",
    "storm",
    "forcedsync",
    "bigday",
    "backlog",
    "frontdoor",
)
# Graph's throttling as the big day has it (a large tenant's resource units, 3,000 writes
# per 150 s, the documented token bucket), at Graph's own speed.
GRAPH_THROTTLE = {"units_per_10s": 8000, "writes_per_150s": 3000, "throttle_model": "bucket"}
GRAPH_WRITES_PER_SECOND = 3000 / 150


# --- shared helpers -------------------------------------------------------------------


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


# --- 1. cold start --------------------------------------------------------------------


def cold_start(runs: int) -> dict[str, Any]:
    """`runs` fresh interpreters per path; each licenses a user of its own."""
    modes = ("app", "telemetry", "typed")
    names = {mode: upns(f"cold.{mode}", runs) for mode in modes}
    every = [upn for group in names.values() for upn in group]
    samples: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    with LocalStack(fresh_state("coldstart"), directory(every, synced=True)) as stack:
        assert stack.graph is not None
        stack.graph.set_throttle(0, 0)
        env = stack.app_environment()
        for n in range(runs):
            for mode in modes:  # interleaved: drift hits every path alike
                stack.graph.clear_requests()
                sample, wall = run_child(
                    ["local_stack.bench_coldstart", mode, names[mode][n]],
                    {**env, **TELEMETRY_SETTINGS} if mode == "telemetry" else env,
                    timeout=120,
                    what=f"cold start ({mode})",
                )
                sample["process_wall_seconds"] = wall
                sample["graph_requests"] = graph_calls(stack.graph.requests())["total"]
                samples[mode].append(sample)
    return {mode: summarize_cold(group) for mode, group in samples.items()}


def summarize_cold(group: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    def med(point: str, key: str) -> float:
        return median([float(s[point][key]) for s in group])

    out: dict[str, Any] = {
        "runs": len(group),
        "outcomes": sorted({str(s["outcome"]) for s in group}),
        "import_seconds": med("imported", "seconds"),
        "import_max_rss_mib": mib(med("imported", "max_rss_kib")),
        "import_modules": med("imported", "modules"),
        "import_model_modules": med("imported", "model_modules"),
        "first_request_seconds": med("first_request", "seconds"),
        "first_request_max_rss_mib": mib(med("first_request", "max_rss_kib")),
        "first_request_modules": med("first_request", "modules"),
        "first_request_model_modules": med("first_request", "model_modules"),
        "process_wall_seconds": median([float(s["process_wall_seconds"]) for s in group]),
        "graph_requests": median([float(s["graph_requests"]) for s in group]),
        "first_request_seconds_all": [round(s["first_request"]["seconds"], 3) for s in group],
    }
    if group[0].get("telemetry_ready"):
        out["telemetry_ready_seconds"] = med("telemetry_ready", "seconds")
        out["telemetry_ready_max_rss_mib"] = mib(med("telemetry_ready", "max_rss_kib"))
        out["telemetry_ready_modules"] = med("telemetry_ready", "modules")
    if group[0].get("first_user"):
        out["first_user_seconds"] = med("first_user", "seconds")
        out["first_user_model_modules"] = med("first_user", "model_modules")
    return out


# --- 2. intake throughput -------------------------------------------------------------


def intake(count: int, timeout: float = 120.0) -> dict[str, Any]:
    """`count` synced users posted to user-onboard on a freshly started host."""
    users = upns("intake", count)
    with LocalStack(
        fresh_state("intake"),
        directory(users, synced=True),
        settings=HOST_SETTINGS,
        emulator_options=NO_THROTTLE,
    ) as stack:
        assert stack.graph is not None
        stack.start_host()
        wait_for_host(stack)
        stack.graph.clear_requests()
        return run_batch(stack, users, "INTAKE", timeout)


def run_batch(
    stack: LocalStack, users: Sequence[str], prefix: str, timeout: float
) -> dict[str, Any]:
    """Post one request per user, wait for every terminal event, count what happened."""
    assert stack.graph is not None
    ids = [f"{prefix}-{n:05d}" for n in range(len(users))]
    first_post = datetime.now().astimezone()
    started = time.monotonic()
    for request_id, upn in zip(ids, users, strict=True):
        stack.post(request(request_id, upn))
    posted = time.monotonic() - started
    terminal = stack.wait_for_terminal(ids, timeout)
    observed = time.monotonic() - started
    mine = {rid: terminal[rid] for rid in ids if rid in terminal}
    last = max((event_time(e) for e in mine.values()), default=first_post)
    seconds = (last - first_post).total_seconds()
    calls = graph_calls(stack.graph.requests())
    outcomes = Counter(e["type"].rsplit(".", 1)[-1] for e in mine.values())
    progress = Counter(
        e["type"].rsplit(".", 1)[-1] for e in stack.events_seen if e.get("subject") in set(ids)
    )
    return {
        "requests": len(ids),
        "terminal": len(mine),
        "outcomes": dict(outcomes),
        "events": dict(progress),
        "post_seconds": posted,
        "seconds_to_last_terminal": seconds,
        "seconds_observed": observed,
        "requests_per_second": len(mine) / seconds if seconds > 0 else 0.0,
        "graph": dict(calls),
        "graph_per_request": {k: v / len(ids) for k, v in calls.items()},
        "poison": stack.count("user-onboard-poison"),
    }


# --- 3. sweep over pending users ------------------------------------------------------


async def park(stack: LocalStack, users: Sequence[str], concurrency: int = 16) -> float:
    """Admit every request through `handle_request` (users not synced yet): each lands on
    user-onboard-pending, due one second later."""
    from shared.bootstrap import build_service
    from shared.decisions import Backoff
    from shared.service import Policy
    from shared.settings import Settings

    wiring = build_service(
        Settings.from_env(stack.app_environment()),
        policy=Policy(
            backoff=Backoff(timedelta(seconds=1), timedelta(seconds=2)),
            sync_timeout=timedelta(hours=1),
        ),
    )
    service = wiring.service
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int, upn: str) -> str:
        async with gate:
            body = json.dumps(request(f"SWEEP-{n:05d}", upn))
            return await service.handle_request(body, f"bench-{n}")

    started = time.monotonic()
    try:
        outcomes = await asyncio.gather(*(one(n, upn) for n, upn in enumerate(users)))
    finally:
        await wiring.aclose()
    if set(outcomes) != {"waiting"}:
        raise RuntimeError(f"parking gave {Counter(outcomes)}")
    return time.monotonic() - started


def sweep(count: int, *, throttled: bool = False) -> dict[str, Any]:
    """Park `count` requests, sync their users, then time one sweep in a fresh worker.
    `throttled`: Graph's throttling on at its own rates, and the app's write budget spent
    just before the sweep (a backlog after a busy day)."""
    users = upns("backlog" if throttled else "sweep", count)
    with LocalStack(
        fresh_state("backlog" if throttled else "sweep"),
        directory(users, synced=False),
        settings=HOST_SETTINGS,
        emulator_options=GRAPH_THROTTLE if throttled else NO_THROTTLE,
    ) as stack:
        assert stack.graph is not None
        park_seconds = asyncio.run(park(stack, users))
        for upn in users:
            stack.graph.sync_user(upn)
        time.sleep(2.0)  # every parked message is visible one second after it was parked
        pending_before = stack.count("user-onboard-pending")
        stack.graph.clear_requests()
        if throttled:
            stack.graph.service.throttle.configure()
            stack.graph.service.throttle.admit(f"Bearer {stack.graph.token}", 1, 3000)
        result, wall = run_child(
            ["local_stack.bench_sweep"],
            stack.app_environment(),
            timeout=300,
            what="the sweep process",
        )
        log = stack.graph.requests()
        result.update(
            users=count,
            park_seconds=park_seconds,
            process_wall_seconds=wall,
            pending_before=pending_before,
            pending_after=stack.count("user-onboard-pending"),
            graph=dict(graph_calls(log)),
            batch_items_max=max(
                (len(e["body"]["requests"]) for e in log if e["path"].endswith("/$batch")),
                default=0,
            ),
            throttled=sum(1 for e in log if e.get("status") == 429),
            floor_seconds=count / GRAPH_WRITES_PER_SECOND if throttled else None,
        )
    return result


# --- 4. 503 storm ---------------------------------------------------------------------


def storm(count: int, timeout: float = 120.0) -> dict[str, Any]:
    """Intake while half of all /users calls (lookups, $batch items, assignLicense) answer
    503: everything should still end licensed, nothing poisoned."""
    users = upns("storm", count)
    with LocalStack(
        fresh_state("storm"),
        directory(users, synced=True),
        settings=HOST_SETTINGS,
        emulator_options={**NO_THROTTLE, "fault_seed": 7},
    ) as stack:
        assert stack.graph is not None
        stack.start_host()
        wait_for_host(stack)
        stack.graph.clear_requests()
        stack.graph.add_fault(path="^/users", status=503, rate=0.5)
        result = run_batch(stack, users, "STORM", timeout)
        result["graph_503_items"] = sum(
            1 for e in stack.graph.requests() if e.get("batchItem") and e.get("status") == 503
        )
    return result


# --- 5. forced sync (Cloud Sync on demand) against the regular cycle ----------------


SYNC_JOB = {
    "servicePrincipalId": "00d41b14-7958-45ad-9d75-d52fa29e02a1",
    "jobId": "AD2AADProvisioning.fd1c9b9e8077402c8bc03a7186c8f976",
    "ruleId": "6c409270-f78a-4bc6-af23-7cf3ab6482fe",
    "templateId": "AD2AADProvisioning",
}
SYNC_CYCLE_SECONDS = 30
# The committed sample's recheck delays (make run's), so the regular path is bound by the
# cycle rather than by the backoff; the forced path rechecks min(30 s, initial delay) later.
FORCED_SYNC_SETTINGS = {
    **HOST_SETTINGS,
    "RECHECK_INITIAL_DELAY": "PT2S",
    "RECHECK_MAX_DELAY": "PT4S",
    "CLOUD_SYNC_JOB": f"{SYNC_JOB['servicePrincipalId']}/{SYNC_JOB['jobId']}",
}


def distinguished_name(upn: str) -> str:
    return f"CN={upn.split('@')[0]},OU=Staff,DC=contoso,DC=com"


def forced_sync(count: int, spacing: float = 3.0, timeout: float = 120.0) -> dict[str, Any]:
    """`count` users still in AD only (not in Entra), one request every `spacing` seconds,
    alternately with and without `onPremisesDistinguishedName`, so both kinds arrive at
    every phase of the regular cycle. Measures each request from its post to the `time`
    of its terminal event."""
    users = upns("forced", count)
    tenant = directory([], synced=False)
    # Each account appears in AD (awaiting sync) just before its request is posted, as when
    # HR posts right after the account is created: created all at the start, the later ones
    # would be synced by the first cycle before their requests arrived.
    accounts = [
        {
            "userPrincipalName": upn,
            "displayName": upn.split("@")[0],
            "usageLocation": "FR",
            "awaitingSync": True,
            "onPremisesDistinguishedName": distinguished_name(upn),
        }
        for upn in users
    ]
    tenant["synchronization"] = {
        "jobs": [SYNC_JOB],
        "cycleSeconds": SYNC_CYCLE_SECONDS,
        "onDemandDelaySeconds": 3,
    }
    with LocalStack(
        fresh_state("forcedsync"),
        tenant,
        settings=FORCED_SYNC_SETTINGS,
        emulator_options=NO_THROTTLE,
    ) as stack:
        assert stack.graph is not None
        stack.start_host()
        wait_for_host(stack)
        stack.graph.clear_requests()
        posted: dict[str, tuple[bool, datetime]] = {}
        for n, upn in enumerate(users):
            forced = n % 2 == 0
            body = request(f"FORCED-{n:05d}", upn)
            if forced:
                body["onPremisesDistinguishedName"] = distinguished_name(upn)
            stack.graph.add_user(accounts[n])
            posted[body["requestId"]] = (forced, datetime.now().astimezone())
            stack.post(body)
            stack.drain_events()
            time.sleep(spacing)
        terminal = stack.wait_for_terminal(posted, timeout)
        seconds: dict[bool, list[float]] = {True: [], False: []}
        outcomes: Counter[str] = Counter()
        for request_id, (forced, at) in posted.items():
            event = terminal.get(request_id)
            if event is None:
                outcomes["no terminal event"] += 1
                continue
            outcomes[event["type"].rsplit(".", 1)[-1]] += 1
            seconds[forced].append((event_time(event) - at).total_seconds())
        calls = stack.graph.requests()
        on_demand = [e for e in calls if e["path"].endswith("/provisionOnDemand")]
        return {
            "requests": count,
            "spacing_seconds": spacing,
            "cycle_seconds": SYNC_CYCLE_SECONDS,
            "outcomes": dict(outcomes),
            "forced": summarize_latency(seconds[True]),
            "regular": summarize_latency(seconds[False]),
            "provision_on_demand_calls": len(on_demand),
            "provision_on_demand_refused": sum(1 for e in on_demand if e["status"] >= 400),
            "graph": dict(graph_calls(calls)),
            "poison": stack.count("user-onboard-poison"),
        }


def summarize_latency(values: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "median": median(ordered) if ordered else None,
        "min": ordered[0] if ordered else None,
        "max": ordered[-1] if ordered else None,
        "all": [round(v, 1) for v in ordered],
    }


def show_forced(result: Mapping[str, Any]) -> None:
    def cell(group: Mapping[str, Any], key: str) -> str:
        value = group[key]
        return "-" if value is None else f"{value:.1f}"

    forced, regular = result["forced"], result["regular"]
    rows = [
        ("post to terminal event (s)", "with DN (forced sync)", "without DN (regular cycle)"),
        ("requests", str(forced["count"]), str(regular["count"])),
        ("median", cell(forced, "median"), cell(regular, "median")),
        (
            "min / max",
            f"{cell(forced, 'min')} / {cell(forced, 'max')}",
            f"{cell(regular, 'min')} / {cell(regular, 'max')}",
        ),
    ]
    table(
        f"5. Users not in Entra yet, one request every {result['spacing_seconds']:.0f} s, "
        f"regular sync cycle {result['cycle_seconds']} s",
        rows,
    )
    print(
        f"  outcomes {dict(result['outcomes'])}; provisionOnDemand calls "
        f"{result['provision_on_demand_calls']} ({result['provision_on_demand_refused']} "
        f"refused); poison {result['poison']}"
    )
    print(f"  forced: {forced['all']}\n  regular: {regular['all']}")


# --- output ---------------------------------------------------------------------------


# --- 7. the HTTP front door against the queue -------------------------------------------


def front_door(count: int, clients: int, runs: int, timeout: float = 180.0) -> dict[str, Any]:
    """The same `count` requests posted over HTTP and to the queue, `runs` times each,
    alternating, each on a fresh stack (`local_stack.bench_front_door`); per path, the run
    with the median acceptance rate, and every run's rates."""
    from local_stack.bench_front_door import run_path

    sample = json.loads(SAMPLE_DIRECTORY.read_text())
    done: dict[str, list[dict[str, Any]]] = {"http": [], "queue": []}
    for run in range(runs):
        for path in done:
            users = upns(f"door-{path}-{run}", count)
            tenant = {**directory(users, synced=True), "identity": sample["identity"]}
            with LocalStack(
                fresh_state(f"frontdoor-{path}"),
                tenant,
                settings=HOST_SETTINGS,
                emulator_options=NO_THROTTLE,
            ) as stack:
                stack.start_host()
                wait_for_host(stack)
                requests = [request(f"DOOR-{path}-{n:05d}", u) for n, u in enumerate(users)]
                done[path].append(run_path(stack, path, requests, clients, timeout))
    result: dict[str, Any] = {}
    for path, results in done.items():
        ranked = sorted(results, key=lambda r: float(r["accepted_per_second"]))
        result[path] = {
            **ranked[len(ranked) // 2],
            "runs_accepted_per_second": [r["accepted_per_second"] for r in results],
            "runs_handled_per_second": [r["handled_per_second"] for r in results],
        }
    return result


def show_front_door(result: Mapping[str, Any]) -> None:
    http, queue = result["http"], result["queue"]

    def both(cell: Any) -> tuple[str, str]:
        return cell(http), cell(queue)

    rows = [
        ("figure", "POST /api/onboarding-requests", "send_message to user-onboard"),
        ("requests / clients", *both(lambda r: f"{r['requests']} / {r['clients']}")),
        ("answers", *both(lambda r: " ".join(f"{k}={v}" for k, v in r["statuses"].items()))),
        ("accepting all of them (s)", *both(lambda r: f"{r['accept_seconds']:.2f}")),
        ("accepted per second", *both(lambda r: f"{r['accepted_per_second']:.1f}")),
        (
            "  every run",
            *both(lambda r: ", ".join(f"{v:.1f}" for v in r["runs_accepted_per_second"])),
        ),
        (
            "latency per call, median / p95 (ms)",
            *both(lambda r: f"{r['latency_ms_median']:.1f} / {r['latency_ms_p95']:.1f}"),
        ),
        ("outcomes", *both(lambda r: " ".join(f"{k}={v}" for k, v in r["outcomes"].items()))),
        (
            "first post to last terminal event (s)",
            *both(lambda r: f"{r['seconds_to_last_terminal']:.2f}"),
        ),
        ("handled per second", *both(lambda r: f"{r['handled_per_second']:.1f}")),
        (
            "  every run",
            *both(lambda r: ", ".join(f"{v:.1f}" for v in r["runs_handled_per_second"])),
        ),
    ]
    table(
        f"7. The HTTP front door against the queue ({http['requests']} requests, "
        f"{http['clients']} clients; the median of {len(http['runs_accepted_per_second'])} "
        "runs by acceptance rate)",
        rows,
    )


def table(title: str, rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n{title}")
    for n, row in enumerate(rows):
        print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def show_cold(result: Mapping[str, Any]) -> None:
    modes = [m for m in ("app", "telemetry", "typed") if m in result]
    heads = {"app": "app (raw JSON)", "telemetry": "app + App Insights", "typed": "typed models"}

    def row(label: str, cell: Any) -> tuple[str, ...]:
        return (label, *(cell(result[m]) for m in modes))

    rows = [
        ("median of runs", *(heads[m] for m in modes)),
        row("import function_app (s)", lambda r: f"{r['import_seconds']:.2f}"),
        row("  peak RSS after import (MiB)", lambda r: f"{r['import_max_rss_mib']:.0f}"),
        row(
            "  modules / msgraph models",
            lambda r: f"{r['import_modules']:.0f} / {r['import_model_modules']:.0f}",
        ),
        row("first request done (s)", lambda r: f"{r['first_request_seconds']:.2f}"),
        row("  peak RSS (MiB)", lambda r: f"{r['first_request_max_rss_mib']:.0f}"),
        row(
            "  modules / msgraph models",
            lambda r: f"{r['first_request_modules']:.0f} / {r['first_request_model_modules']:.0f}",
        ),
        row("  Graph requests", lambda r: f"{r['graph_requests']:.0f}"),
        row(
            "exporter ready (s) / peak RSS (MiB)",
            lambda r: (
                f"{r['telemetry_ready_seconds']:.2f} / {r['telemetry_ready_max_rss_mib']:.0f}"
                if "telemetry_ready_seconds" in r
                else "-"
            ),
        ),
        row("process wall, spawn to exit (s)", lambda r: f"{r['process_wall_seconds']:.2f}"),
    ]
    table(f"1. Cold start ({result['app']['runs']} fresh interpreters per path)", rows)
    for mode in modes:
        print(f"  {mode}: first request per run {result[mode]['first_request_seconds_all']}")
    typed = result.get("typed")
    if typed and "first_user_seconds" in typed:
        print(
            f"  typed: first user fetched at {typed['first_user_seconds']:.2f} s with "
            f"{typed['first_user_model_modules']:.0f} msgraph model modules loaded"
        )


def show_batch(title: str, result: Mapping[str, Any]) -> None:
    per = result["graph_per_request"]
    rows = [
        ("figure", "value"),
        ("requests / reached a terminal event", f"{result['requests']} / {result['terminal']}"),
        ("outcomes", " ".join(f"{k}={v}" for k, v in sorted(result["outcomes"].items()))),
        ("events seen", " ".join(f"{k}={v}" for k, v in sorted(result["events"].items()))),
        ("posting all messages (s)", f"{result['post_seconds']:.2f}"),
        ("first post to last terminal event (s)", f"{result['seconds_to_last_terminal']:.2f}"),
        ("requests/s", f"{result['requests_per_second']:.1f}"),
        ("Graph HTTP requests", str(result["graph"].get("total", 0))),
        (
            "  per request: lookup / assignLicense",
            f"{per.get('user lookup', 0):.2f} / {per.get('assignLicense', 0):.2f}",
        ),
        (
            "  subscribedSkus / $batch (total)",
            f"{result['graph'].get('subscribedSkus', 0)} / {result['graph'].get('$batch', 0)}",
        ),
        (
            "  answered 5xx (+ $batch items)",
            f"{result['graph'].get('5xx answers', 0)}"
            + (f" (+{result['graph_503_items']})" if "graph_503_items" in result else ""),
        ),
        ("messages on user-onboard-poison", str(result["poison"])),
    ]
    table(title, rows)


def show_sweep(result: Mapping[str, Any]) -> None:
    graph = result["graph"]
    rows = [
        ("figure", "value"),
        ("pending requests parked (due)", f"{result['pending_before']}"),
        ("one sweep(), wall (s)", f"{result['sweep_seconds']:.2f}"),
        ("sweep report", str(result["summary"])),
        ("left on user-onboard-pending", str(result["pending_after"])),
        (
            "$batch requests (max items each)",
            f"{graph.get('$batch', 0)} ({result['batch_items_max']})",
        ),
        ("Graph HTTP requests in all", str(graph.get("total", 0))),
        (
            "  assignLicense / subscribedSkus / other",
            f"{graph.get('assignLicense', 0)} / {graph.get('subscribedSkus', 0)} / "
            f"{graph.get('user lookup', 0) + graph.get('other', 0)}",
        ),
        (
            "peak RSS before / after sweep (MiB)",
            f"{mib(result['max_rss_kib_before']):.0f} / {mib(result['max_rss_kib_after']):.0f}",
        ),
        ("worker process, spawn to exit (s)", f"{result['process_wall_seconds']:.2f}"),
        ("(setup) parking via handle_request (s)", f"{result['park_seconds']:.2f}"),
    ]
    table(f"3. One sweep over {result['users']} due pending requests (users now synced)", rows)


def show_backlog(result: Mapping[str, Any]) -> None:
    graph = result["graph"]
    seconds, floor = result["sweep_seconds"], result["floor_seconds"]
    writes = graph.get("assignLicense", 0)
    rows = [
        ("figure", "value"),
        ("pending requests parked (due), write budget spent", f"{result['pending_before']}"),
        ("one sweep(), wall (s)", f"{seconds:.2f}"),
        ("floor: the writes at 20 writes/s (s)", f"{floor:.1f}"),
        ("x floor", f"{seconds / floor:.2f}"),
        ("writes per second", f"{result['users'] / seconds:.1f}"),
        ("sweep report", str(result["summary"])),
        ("left on user-onboard-pending", str(result["pending_after"])),
        ("assignLicense sent (429s among all calls)", f"{writes} ({result['throttled']})"),
    ]
    table(
        f"8. One sweep over a backlog of {result['users']} synced users, Graph's write budget "
        "spent, throttling on at Graph's rates",
        rows,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.bench", description=__doc__)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    parser.add_argument("--runs", type=int, default=3, help="cold starts per path")
    parser.add_argument("--users", type=int, default=200, help="intake requests")
    parser.add_argument("--pending", type=int, default=1000, help="parked requests to sweep")
    parser.add_argument("--storm-users", type=int, default=100, help="requests in the 503 storm")
    parser.add_argument(
        "--forced-users", type=int, default=20, help="requests in the forced-sync benchmark"
    )
    parser.add_argument("--bigday-users", type=int, default=3000, help="big day: users")
    parser.add_argument("--backlog", type=int, default=1000, help="parked users to sweep")
    parser.add_argument(
        "--bigday-processes", default="1,4,8", help="big day: queue-trigger process counts"
    )
    parser.add_argument(
        "--time-scale", type=float, default=5.0, help="big day: time runs S times faster"
    )
    parser.add_argument(
        "--bigday-throttle",
        choices=("bucket", "window", "off"),
        default="bucket",
        help="big day: the emulator's throttling model",
    )
    parser.add_argument("--http-requests", type=int, default=300, help="front door requests")
    parser.add_argument("--http-clients", type=int, default=8, help="front door clients")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    STATE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(
        f"Benchmarks on {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}; "
        "each starts its own Azurite + Graph emulator (throttling off but in the big day)",
        flush=True,
    )
    results: dict[str, Any] = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "arguments": vars(args),
    }
    if "coldstart" in chosen:
        results["coldstart"] = cold_start(args.runs)
        show_cold(results["coldstart"])
    if "intake" in chosen:
        results["intake"] = intake(args.users)
        show_batch(
            f"2. Intake of {args.users} synced users through the development host",
            results["intake"],
        )
    if "sweep" in chosen:
        results["sweep"] = sweep(args.pending)
        show_sweep(results["sweep"])
    if "storm" in chosen:
        results["storm"] = storm(args.storm_users)
        show_batch(
            f"4. Intake of {args.storm_users} users while 50% of /users calls answer 503",
            results["storm"],
        )
    if "forcedsync" in chosen:
        results["forcedsync"] = forced_sync(args.forced_users)
        show_forced(results["forcedsync"])
    if "bigday" in chosen:
        from local_stack import bench_bigday

        results["bigday"] = bench_bigday.bigday(
            args.bigday_users,
            [int(p) for p in args.bigday_processes.split(",") if p.strip()],
            args.time_scale,
            args.bigday_throttle,
        )
        bench_bigday.show(results["bigday"])
    if "backlog" in chosen:
        results["backlog"] = sweep(args.backlog, throttled=True)
        show_backlog(results["backlog"])
    if "frontdoor" in chosen:
        results["frontdoor"] = front_door(args.http_requests, args.http_clients, args.runs)
        show_front_door(results["frontdoor"])
    (STATE / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(
        f"\nDone in {time.monotonic() - started:.0f} s; raw figures in "
        f"{(STATE / 'results.json').relative_to(REPO)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
