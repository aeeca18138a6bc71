"""`make watch`: print the events on `user-onboard-events` as they arrive, until Ctrl-C.

It consumes them, as an HR system would (receive, then delete); `--peek` only looks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from azure.storage.queue import QueueClient

from local_stack.post import connection_string


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peek", action="store_true", help="show without removing (once)")
    args = parser.parse_args(argv)
    with QueueClient.from_connection_string(connection_string(), "user-onboard-events") as queue:
        if args.peek:
            for message in queue.peek_messages(max_messages=32):
                print(json.dumps(json.loads(message.content), indent=2))
            return 0
        print("Waiting for events on user-onboard-events (Ctrl-C to stop)...", flush=True)
        try:
            while True:
                for message in queue.receive_messages(messages_per_page=32, visibility_timeout=30):
                    event = json.loads(message.content)
                    print(json.dumps(event, indent=2), flush=True)
                    queue.delete_message(message)
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
