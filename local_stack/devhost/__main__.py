"""``python -m local_stack.devhost [--app-dir DIR] [--settings FILE] [--once-idle-seconds N]
[--drain-seconds N] [--http-port N] [--http-ready-file PATH]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .host import DevHost, configure_logging

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.devhost",
        description=(
            "Development host: runs the app's queue and timer triggers against Azurite and "
            "serves its HTTP triggers on 127.0.0.1."
        ),
    )
    parser.add_argument(
        "--app-dir", type=Path, default=REPO_ROOT, help="folder with function_app.py, host.json"
    )
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="settings file (default: local.settings.json, else local.settings.sample.json)",
    )
    parser.add_argument(
        "--once-idle-seconds",
        type=float,
        default=None,
        metavar="N",
        help="exit 0 after N seconds with no queue message and no running invocation",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=5.0,
        metavar="N",
        help="on SIGINT/SIGTERM, wait up to N seconds for running invocations (default 5)",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=0,
        metavar="N",
        help="HTTP port on 127.0.0.1 (default 0: a free one, see --http-ready-file)",
    )
    parser.add_argument(
        "--http-ready-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the bound HTTP port to PATH once the host is ready",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.http_port <= 65535:
        parser.error("--http-port must be 0 to 65535")
    configure_logging()
    host = DevHost(
        args.app_dir,
        args.settings,
        once_idle_seconds=args.once_idle_seconds,
        drain_seconds=args.drain_seconds,
        http_port=args.http_port,
        http_ready_file=args.http_ready_file,
    )
    return host.run()


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stderr.flush()
    sys.stdout.flush()
    # Exit like the worker process does, without garbage-collecting the app's objects: an
    # app keeps clients across invocations and Functions gives it no shutdown hook, so
    # their "unclosed session" complaints at interpreter exit would only be noise. This
    # also skips joining a sync function's thread that timed out and still runs.
    os._exit(code)
