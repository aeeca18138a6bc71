"""`make stress`: the stress suite, judged from the outside (docs/reliability.md).

    python -m local_stack.stress [--short] [--only kills,walk,...] [--seed N]
        [--bodies N] [--requests N]

Prints a table of figures per part, writes `.state/stress/results.json`, and exits 1 if
any part's judge fails (or a host crashed by itself).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime

from local_stack.stress.bodies import DEFAULT_SEED
from local_stack.stress.harness import STATE
from local_stack.stress.parts import PARTS, Options, PartResult

COLUMNS = (
    ("part", "part"),
    ("ok", "ok"),
    ("requests", "requests"),
    ("bodies", "bodies"),
    ("kills", "kills"),
    ("crash_points", "crash pts"),
    ("faults_injected", "faults"),
    ("duplicates_posted", "dups posted"),
    ("lost", "lost"),
    ("duplicated_terminal_ids", "dup ids"),
    ("poisoned_valid", "poisoned"),
    ("unescaped_graph_values", "unescaped"),
    ("wrong_outcome", "wrong"),
    ("seat_mismatches", "seats"),
    ("host_crashes_other", "other crashes"),
    ("duration_s", "time s"),
)


def table(rows: list[dict[str, object]]) -> str:
    cells = [[title for _, title in COLUMNS]]
    for row in rows:
        cells.append(
            [
                ("yes" if row.get(key) else "NO") if key == "ok" else str(row.get(key, ""))
                for key, _ in COLUMNS
            ]
        )
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.stress", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the small version of each part")
    parser.add_argument("--only", default="", help=f"comma-separated parts: {', '.join(PARTS)}")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--bodies", type=int, default=None, help="hostile bodies (10,000)")
    parser.add_argument("--requests", type=int, default=None, help="requests per part")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(PARTS)
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}")
    options = Options(args.short, args.seed, args.bodies, args.requests)
    started = time.monotonic()
    results: list[PartResult] = []
    for name in names:
        print(f"[stress] {name} ...", file=sys.stderr, flush=True)
        result = PARTS[name](options)
        results.append(result)
        row = result.to_json()
        state = "ok" if result.ok else "FAILED: " + " | ".join(row["examples"])
        print(f"[stress] {name}: {state} ({row['duration_s']} s)", file=sys.stderr, flush=True)
    rows = [r.to_json() for r in results]
    print(table(rows))
    total = time.monotonic() - started
    print(f"\n{len(results)} part(s) in {total:.0f} s; details in {STATE / 'results.json'}")
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "results.json").write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "options": vars(args),
                "total_s": round(total, 1),
                "parts": rows,
            },
            indent=2,
            default=str,
        )
    )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
