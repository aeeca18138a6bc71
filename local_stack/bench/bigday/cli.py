"""The big-day benchmark (issue 20): N synced users (3,000 by default) posted at once while
the app's Graph write budget is already spent, throttling on at Graph's rates, the app at
production settings, with 1, 4 and 8 queue-trigger processes; time divided by a scale S
(default 1: production time; a machine fast enough for S times Graph's rate can take
S = 5) so a run takes minutes. See `local_stack.bench.bigday` and docs/benchmarks.md
("Big day").

    python -m local_stack.bench.bigday [--users 3000] [--processes 1,4,8] [--time-scale 1]
        [--model bucket|window|off] [--units-per-10s 8000] [--no-storage-count] [--timeout S]

Prints a Markdown table and writes the raw figures to `.state/bench/bigday.json`. The
floor is writes / (Graph's 20 writes/s x S); the projection multiplies a 50,000-hire
day's floor (2,500 s at 20 writes/s) by each run's ratio to its floor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from local_stack.bench.bigday.run import GRAPH_WRITES_PER_SECOND, STATE, BigDay, run
from local_stack.bench.bigday.scale import NOT_SCALED, SCALED, TimeScale

BIG_DAY_HIRES = 50_000


def bigday(
    users: int = 3000,
    processes: Sequence[int] = (1, 4, 8),
    time_scale: float = 5.0,
    model: str = "bucket",
    units_per_10s: int = 8000,
    count_storage: bool = True,
    timeout: float | None = None,
) -> dict[str, Any]:
    """One run per process count; the figures, the projection and what was scaled."""
    runs = []
    for count in processes:
        config = BigDay(
            users=users,
            processes=count,
            scale=TimeScale(time_scale),
            model=model,
            units_per_10s=units_per_10s,
            count_storage=count_storage,
            timeout=timeout,
        )
        started = time.monotonic()
        figures = run(config)
        figures["wall_seconds"] = time.monotonic() - started
        figures["projection"] = projection(figures.get("ratio_to_floor"))
        runs.append(figures)
        print(row(figures), flush=True)
    return {"runs": runs, "scaled": list(SCALED), "not_scaled": list(NOT_SCALED)}


def projection(ratio: float | None, hires: int = BIG_DAY_HIRES) -> dict[str, Any]:
    """A day of `hires` synced users in production time, at the measured ratio."""
    floor_minutes = hires / GRAPH_WRITES_PER_SECOND / 60
    return {
        "hires": hires,
        "floor_minutes": floor_minutes,
        "minutes": ratio * floor_minutes if ratio is not None else None,
    }


HEADER = (
    "| queue-trigger processes | writes | floor | last terminal event | × floor | bound by "
    "| 429s (per write) | of which on reads | storage requests / user (of which pacing) | outcomes "
    "| no terminal event | peak RSS per host | queue hosts' CPU / user "
    "| 50,000 hires (production) |\n"
    "| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: "
    "| ---: |"
)


def row(figures: Mapping[str, Any]) -> str:
    """One Markdown table row."""

    def num(value: float | None, spec: str, unit: str = "") -> str:
        return "-" if value is None else f"{value:{spec}}{unit}"

    rss = [v for v in figures["peak_rss_mib"]["queue"] if v is not None]
    timer = [v for v in figures["peak_rss_mib"]["timer"] if v is not None]
    outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(figures["outcomes"].items()))
    if figures["poison_queue"]:
        outcomes += f", poison queue {figures['poison_queue']}"
    minutes = figures["projection"]["minutes"]
    cells = [
        str(figures["processes"]),
        f"{figures['writes']:,}",
        num(figures["floor_seconds"], ".1f", " s"),
        num(figures["seconds_to_last_terminal"], ".1f", " s")
        + ("" if figures["finished"] else " (timed out)"),
        num(figures["ratio_to_floor"], ".2f"),
        figures["bound_by"],
        f"{figures['throttled_total']:,} ({num(figures['throttled_per_write'], '.2f')})",
        f"{figures['graph'].get('reads_429', 0):,}",
        num(figures["storage_per_user"], ".2f")
        + f" ({num(figures.get('pacing_per_user'), '.2f')} pacing)",
        outcomes or "-",
        f"{figures['without_terminal_event']:,}",
        f"{max(rss):.0f} MiB (timer {max(timer):.0f})" if rss and timer else "-",
        num(figures.get("cpu_ms_per_user"), ".1f", " ms"),
        num(minutes, ".0f", " min"),
    ]
    return "| " + " | ".join(cells) + " |"


def show(result: Mapping[str, Any]) -> None:
    runs = result["runs"]
    if not runs:
        return
    first = runs[0]
    print(
        f"\n9. Big day: {first['users']:,} synced users posted at once, write budget spent, "
        f"throttling on ({first['throttle_model']} model, {first['units_per_10s']:,} units "
        f"per 10 s, 3,000 writes per 150 s), time scale {first['time_scale']:g}"
    )
    print(HEADER)
    for figures in runs:
        print(row(figures))
    floor = runs[0]["projection"]["floor_minutes"]
    print(
        f"  50,000 hires: floor {floor:.1f} min at Graph's write rate; the last column "
        "multiplies it by the measured ratio."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.bench.bigday", description=__doc__)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--processes", default="1,4,8", help="comma-separated process counts")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--model", choices=("bucket", "window", "off"), default="bucket")
    parser.add_argument("--units-per-10s", type=int, default=8000)
    parser.add_argument("--no-storage-count", action="store_true")
    parser.add_argument("--timeout", type=float, help="seconds per run")
    args = parser.parse_args(argv)
    processes = [int(p) for p in args.processes.split(",") if p.strip()]
    print(
        f"Big day on {os.cpu_count()} CPU(s): {args.users:,} users, processes {processes}, "
        f"time scale {args.time_scale:g}, {args.model} model",
        flush=True,
    )
    print(HEADER, flush=True)
    result = bigday(
        args.users,
        processes,
        args.time_scale,
        args.model,
        args.units_per_10s,
        not args.no_storage_count,
        args.timeout,
    )
    result["date"] = datetime.now().astimezone().isoformat(timespec="seconds")
    result["arguments"] = vars(args)
    show(result)
    STATE.parent.mkdir(parents=True, exist_ok=True)
    out = STATE.parent / "bigday.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nraw figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
