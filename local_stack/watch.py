"""`make watch`: print the events on `user-onboard-events` as they arrive, until Ctrl-C.

It consumes them, as an HR system would (receive, then delete); `--peek` only looks.
`--consumer NAME` (`make watch CONSUMER=telephony`) reads an Event Grid consumer's queue
instead (`samples/event-grid-subscriptions.json`), whose messages Event Grid wrote
base64-encoded: what a consumer sees once it decodes them.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time

from azure.storage.queue import QueueClient

from local_stack.event_grid import parse_subscription
from local_stack.post import connection_string
from local_stack.stack import sample_subscriptions

EVENTS_QUEUE = "user-onboard-events"


def queue_of(consumer: str | None) -> str:
    """The queue to read: the events queue, or a sample consumer's."""
    if consumer is None:
        return EVENTS_QUEUE
    for document in sample_subscriptions():
        if document["name"] == consumer:
            return parse_subscription(document).queue_name
    names = ", ".join(d["name"] for d in sample_subscriptions())
    raise SystemExit(f"no consumer named {consumer!r} (the sample consumers: {names})")


def event_of(content: str, consumer: str | None) -> object:
    text = base64.b64decode(content).decode("utf-8") if consumer else content
    return json.loads(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peek", action="store_true", help="show without removing (once)")
    parser.add_argument("--consumer", help="an Event Grid consumer's queue (hr-system, ...)")
    args = parser.parse_args(argv)
    name = queue_of(args.consumer)
    with QueueClient.from_connection_string(connection_string(), name) as queue:
        if args.peek:
            for message in queue.peek_messages(max_messages=32):
                print(json.dumps(event_of(message.content, args.consumer), indent=2))
            return 0
        print(f"Waiting for events on {name} (Ctrl-C to stop)...", flush=True)
        try:
            while True:
                for message in queue.receive_messages(messages_per_page=32, visibility_timeout=30):
                    event = event_of(message.content, args.consumer)
                    print(json.dumps(event, indent=2), flush=True)
                    queue.delete_message(message)
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
