"""Command line: run the emulator until SIGTERM or SIGINT.

Prints exactly one line, `graph-emulator listening on <base_url>`, once the
socket is bound, and optionally writes the port to `--ready-file`, so run
scripts can wait for readiness without polling and use `--port 0`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from local_stack.http_handler import serve_until_signalled

from .clock import ManualClock
from .directory import DirectoryFormatError
from .server import start_emulator
from .service import DEFAULT_TOKEN
from .throttle import DEFAULT_UNITS_PER_10S, DEFAULT_WRITES_PER_150S, MODELS


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.graph_emulator", description="Local Microsoft Graph emulator"
    )
    parser.add_argument("--directory", required=True, type=Path, help="directory JSON file")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1", help="loopback only")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="bearer token Graph calls need")
    parser.add_argument("--ready-file", type=Path, help="write the bound port here when ready")
    parser.add_argument("--units-per-10s", type=int, default=DEFAULT_UNITS_PER_10S)
    parser.add_argument("--writes-per-150s", type=int, default=DEFAULT_WRITES_PER_150S)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="Graph's throttling clock runs this many times faster (windows, Retry-After)",
    )
    parser.add_argument(
        "--throttle-model", choices=MODELS, default="window", help="see throttle.py"
    )
    parser.add_argument(
        "--fault-seed", type=int, help="seeds fault rates and the $batch shuffle (reproducible)"
    )
    parser.add_argument(
        "--no-shuffle-batch",
        action="store_true",
        help="answer $batch items in request order (Graph does not promise any order)",
    )
    parser.add_argument(
        "--manual-clock", action="store_true", help="time moves only via POST /_emulator/clock"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run until a termination signal; return the exit status."""
    args = _arguments(argv)
    try:
        directory = json.loads(args.directory.read_text(encoding="utf-8"))
        emulator = start_emulator(
            directory,
            host=args.host,
            port=args.port,
            token=args.token,
            units_per_10s=args.units_per_10s,
            writes_per_150s=args.writes_per_150s,
            fault_seed=args.fault_seed,
            shuffle_batch=not args.no_shuffle_batch,
            time_scale=args.time_scale,
            throttle_model=args.throttle_model,
            clock=ManualClock() if args.manual_clock else None,
        )
    except (OSError, ValueError, DirectoryFormatError) as exc:
        print(f"graph-emulator: {exc}", file=sys.stderr)
        return 2
    return serve_until_signalled(
        emulator, "graph-emulator", emulator.port, emulator.base_url, args.ready_file
    )


if __name__ == "__main__":
    sys.exit(main())
