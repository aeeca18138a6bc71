"""`make serve`: keep the local stack running until Ctrl-C.

Azurite on 127.0.0.1:10001 (queues) and :10002 (tables), the Graph emulator on
127.0.0.1:8765 (also the local Entra ID issuer, API_AUTHORITY), loaded with
`samples/directory.json`, and the Event Grid stand-in on 127.0.0.1:8766 with its two sample
consumers (the ports in local.settings.sample.json), plus the development host, whose HTTP
triggers listen on 127.0.0.1:7071 as `func start`'s do. With `--no-host`, run the real
Functions host yourself (`func start`) instead.
Data stays in `.state/serve/` between runs; `make clean` removes it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from local_stack.stack import REPO, LocalStack

SAMPLES = Path(__file__).resolve().parent / "samples"
AZURITE_PORT = 10001
AZURITE_TABLE_PORT = 10002
GRAPH_PORT = 8765
HTTP_PORT = 7071  # func start's default port, so `make post HTTP=1` finds either host
EVENT_GRID_PORT = 8766


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-host", action="store_true", help="do not start the development host")
    parser.add_argument("--directory", type=Path, default=SAMPLES / "directory.json")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = LocalStack(
        REPO / ".state" / "serve",
        args.directory,
        azurite_port=AZURITE_PORT,
        azurite_table_port=AZURITE_TABLE_PORT,
        graph_port=GRAPH_PORT,
        host_http_port=HTTP_PORT,
        event_grid=True,
        event_grid_options={"port": EVENT_GRID_PORT},
    )
    stack.start()
    try:
        assert stack.azurite is not None
        assert stack.graph is not None
        if not args.no_host:
            stack.start_host()
        print(
            f"Azurite:         queues {stack.azurite.queue_endpoint}, tables :{AZURITE_TABLE_PORT}"
        )
        print(f"Graph emulator:  {stack.graph.base_url}  (control API {stack.graph.control_url})")
        assert stack.event_grid is not None
        consumers = ", ".join(
            f"{s['name']} -> {stack.subscription_queue(s['name'])}"
            for s in stack.event_grid_subscriptions
        )
        print(f"Event Grid:      {stack.event_grid.endpoint}  (consumers: {consumers})")
        print(
            f"Entra issuer:    {stack.graph.authority}  (API_AUTHORITY; clients in the directory)"
        )
        print(
            "Development host: "
            + (
                "not started (run `func start`)"
                if args.no_host
                else "running, log in .state/serve/devhost.log"
            )
        )
        if not args.no_host:
            print(f"HTTP triggers:   http://127.0.0.1:{HTTP_PORT}/api/...")
        print("Post a request:  make post FILE=local_stack/samples/one-request.json")
        print("Post over HTTP:  make post HTTP=1 FILE=local_stack/samples/one-request.json")
        print(
            "Watch events:    make watch   (a consumer: make watch CONSUMER=telephony)"
            "   Stop: Ctrl-C",
            flush=True,
        )
        while not stop.wait(1.0):
            if stack.host is not None and stack.host.poll() is not None:
                print("The development host exited; see .state/serve/devhost.log", file=sys.stderr)
                return 1
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
