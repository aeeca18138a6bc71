"""The on-call view of every request, and replay of poisoned messages.

    python -m ops show REQUEST_ID            where is request X: state, events, deadline...
    python -m ops list [STATE ...]           pending, scheduled, blocked, held, set-aside
    python -m ops replay MESSAGE_ID ...      re-post held poisoned messages after a fix
    python -m ops replay --all-held          every one still held
    python -m ops replay MESSAGE_ID --new-request-id NEW   one already answered, as a new request
    python -m ops schema                     the request JSON Schema (in schemas/)

Where: `--account NAME` reads the storage account NAME in Azure with your Entra sign-in
(`az login`; roles in docs/operations.md), `--connection-string`, or the
`AzureWebJobsStorage` environment variable; without any, the local stack of `make serve`.
`--json` prints machine-readable output. Docs: docs/operations.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ops.view import STATES, Store, describe, list_requests, replay
from shared.domain.request_schema import json_schema


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--account", help="storage account name (Azure, Entra sign-in)")
    where.add_argument("--connection-string", help="storage connection string")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="where is a request: its state and events")
    show.add_argument("request_id")
    listing = commands.add_parser("list", help="requests and messages by state")
    listing.add_argument(
        "states",
        nargs="*",
        metavar="STATE",
        help="pending (= scheduled, waiting, blocked), held, set-aside; default: all",
    )
    again = commands.add_parser("replay", help="re-post poisoned messages after a fix")
    again.add_argument("message_ids", nargs="*", help="poison message ids (from `list held`)")
    again.add_argument("--all-held", action="store_true", help="every message still held")
    again.add_argument(
        "--new-request-id",
        help="re-post one message already answered, as a new request with this requestId",
    )
    commands.add_parser("schema", help="print the request's JSON Schema")
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
        return 0
    store = Store.open(
        account=args.account,
        connection_string=args.connection_string
        or _environment_connection()
        or (None if args.account else _local_stack()),
    )
    try:
        result: Any
        if args.command == "show":
            result = asyncio.run(describe(store, args.request_id, now=datetime.now(UTC)))
        elif args.command == "list":
            unknown = set(args.states) - STATES
            if unknown:
                parser.error(f"list: unknown state(s) {sorted(unknown)}; one of {sorted(STATES)}")
            result = asyncio.run(list_requests(store, set(args.states)))
        else:
            if not args.message_ids and not args.all_held:
                parser.error("replay: give message ids or --all-held")
            result = asyncio.run(
                replay(
                    store,
                    args.message_ids,
                    all_held=args.all_held,
                    new_request_id=args.new_request_id,
                )
            )
    finally:
        store.close()
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.text())
    return int(getattr(result, "exit_code", 0))


def _environment_connection() -> str | None:
    value = os.environ.get("AzureWebJobsStorage", "")  # noqa: SIM112 - the Functions name
    return value if value and value != "UseDevelopmentStorage=true" else None


def _local_stack() -> str:
    from local_stack.azurite import connection_string_for
    from local_stack.serve import AZURITE_PORT, AZURITE_TABLE_PORT

    return connection_string_for(AZURITE_PORT, AZURITE_TABLE_PORT)


if __name__ == "__main__":
    sys.exit(main())
