"""`make bench`: cold start (with and without Application Insights), intake throughput, a
1,000-user sweep, a 503 storm, a forced sync against the regular sync cycle, a big day
under Graph's throttling (`local_stack.bench.bigday`), a sweep over a backlog under
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
        [--bigday-users 3000] [--bigday-processes 1,4,8] [--time-scale 1]
        [--bigday-throttle bucket|window|off] [--http-requests 300] [--http-clients 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from local_stack.bench.coldstart import cold_start, show_cold
from local_stack.bench.common import STATE
from local_stack.bench.forced_sync import forced_sync, show_forced
from local_stack.bench.front_door import front_door, show_front_door
from local_stack.bench.intake import intake, show_batch, storm
from local_stack.bench.sweep import show_backlog, show_sweep, sweep
from local_stack.stack import REPO

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
        "--time-scale", type=float, default=1.0, help="big day: time runs S times faster"
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
        from local_stack.bench.bigday import cli as bench_bigday

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
