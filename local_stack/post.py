"""`make post FILE=...`: put a message file on `user-onboard` of the running stack.

The file holds one request (a JSON object) or several (a JSON array of objects); each
becomes one message, sent as plain text like an HR system using azure-storage-queue.
The connection is `AzureWebJobsStorage` from the environment, else `make serve`'s Azurite.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from azure.storage.queue import QueueClient

from local_stack.azurite import connection_string_for
from local_stack.serve import AZURITE_PORT, AZURITE_TABLE_PORT


def connection_string() -> str:
    value = os.environ.get("AzureWebJobsStorage", "")  # noqa: SIM112 - the Functions name
    if value and value != "UseDevelopmentStorage=true":
        return value
    return connection_string_for(AZURITE_PORT, AZURITE_TABLE_PORT)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m local_stack.post FILE.json", file=sys.stderr)
        return 2
    document = json.loads(Path(args[0]).read_text())
    messages = document if isinstance(document, list) else [document]
    with QueueClient.from_connection_string(connection_string(), "user-onboard") as queue:
        for message in messages:
            sent = queue.send_message(json.dumps(message))
            print(f"posted {message.get('requestId', '?')} as queue message {sent.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
