"""Command line: run the stand-in until SIGTERM or SIGINT.

Prints one line, `event-grid listening on <endpoint>`, once the socket is bound, and
writes the port to `--ready-file` if given, so run scripts can use `--port 0`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from local_stack.http_handler import serve_until_signalled

from .auth import DEFAULT_KEY, DEFAULT_TOKEN
from .server import start_event_grid
from .subscriptions import SubscriptionError


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.event_grid", description="Local Event Grid topic stand-in"
    )
    parser.add_argument(
        "--storage", help="connection string of the storage (Azurite) to deliver to"
    )
    parser.add_argument("--config", type=Path, help='JSON file {"subscriptions": [...]}')
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1", help="loopback only")
    parser.add_argument("--key", default=DEFAULT_KEY, help="the topic's access key (aeg-sas-key)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the bearer token taken")
    parser.add_argument(
        "--no-local-auth", action="store_true", help="refuse keys and SAS (disableLocalAuth)"
    )
    parser.add_argument(
        "--retry-scale", type=float, default=0.1, help="scales Event Grid's retry schedule"
    )
    parser.add_argument("--ready-file", type=Path, help="write the bound port here when ready")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        config = json.loads(args.config.read_text(encoding="utf-8")) if args.config else {}
        standin = start_event_grid(
            storage_connection_string=args.storage,
            subscriptions=config.get("subscriptions", []),
            host=args.host,
            port=args.port,
            key=args.key,
            token=args.token,
            local_auth=not args.no_local_auth,
            retry_scale=args.retry_scale,
        )
    except (OSError, ValueError, SubscriptionError) as exc:
        print(f"event-grid: {exc}", file=sys.stderr)
        return 2
    return serve_until_signalled(
        standin, "event-grid", standin.port, standin.endpoint, args.ready_file
    )


if __name__ == "__main__":
    sys.exit(main())
