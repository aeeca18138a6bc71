"""The on-call tool: where every request stands, and replay of poisoned messages.

  onboarding-ops show REQUEST_ID             where is request X: state, events, deadline
  onboarding-ops list [STATE ...] [--limit N]
                                             parked requests and kept messages; STATE:
                                             pending (= scheduled, waiting, blocked,
                                             provisioning), held, set-aside; at most N of
                                             each (100; 0: all)
  onboarding-ops replay MESSAGE_ID ...       re-post held poisoned messages after a fix
  onboarding-ops replay --all-held           every one still held
  onboarding-ops replay MESSAGE_ID --new-request-id NEW
                                             one already answered, as a new request
  onboarding-ops schema                      the request's JSON Schema

`python -m ops` is the same tool. Where to read, exactly one of: --account NAME (a storage
account in Azure, with your Entra sign-in: `az login`), --connection-string CS (`-` reads it
from standard input, away from the shell history), --local (the local stack of
`make serve`), or else the AzureWebJobsStorage environment variable. With none of them the
tool stops (exit 2): it never picks a storage account by itself. Options go before or
after the subcommand. Exit codes: 0 done, 1 not found or refused, 2 bad usage, 3 storage
unreachable or access denied. Docs: docs/operations.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError

from ops.store import LOCAL_STACK_CONNECTION, Store, account_connection, ensure_table_of
from ops.view import DEFAULT_LIMIT, STATES, describe, list_requests, replay
from shared.adapters.storage import storage_call
from shared.domain.errors import StorageUnavailable
from shared.domain.request_schema import json_schema
from shared.names import QUEUE_REQUESTS, STORAGE_CONNECTION, TABLE_REQUESTS
from shared.settings import StorageConnection

NO_PLACE = (
    "where? give --account NAME (a storage account in Azure, with your Entra sign-in), "
    "--connection-string CS, or --local (the local stack of `make serve`), "
    f"or set {STORAGE_CONNECTION}"
)


@dataclass(frozen=True)
class Place:
    """The storage account to read, and how to name it in a message."""

    connection: StorageConnection
    name: str
    local: bool = False
    from_environment: bool = False  # said on standard error: no option named it


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return 0
    if args.command == "list" and set(args.states) - STATES:
        unknown = sorted(set(args.states) - STATES)
        parser.error(f"list: unknown state(s) {unknown}; one of {sorted(STATES)}")
    if args.command == "replay" and not args.message_ids and not args.all_held:
        parser.error("replay: give message ids or --all-held")
    try:
        place = where(args, os.environ)
        store = Store.open(place.connection)
    except ValueError as exc:  # a malformed connection string or account name
        parser.error(str(exc))
    if place.from_environment:
        print(f"{parser.prog}: reading {place.name} ({STORAGE_CONNECTION})", file=sys.stderr)
    try:
        result = asyncio.run(_run(args, store, place))
    except (AzureError, StorageUnavailable) as exc:
        print(f"{parser.prog}: {_storage_problem(exc, place)}", file=sys.stderr)
        return 3
    finally:
        store.close()
    print(json.dumps(result.to_json(), indent=2) if args.json else result.text())
    return int(getattr(result, "exit_code", 0))


async def _run(args: argparse.Namespace, store: Store, place: Place) -> Any:
    if place.local:  # a local stack that has not run yet has no ledger table
        await storage_call(ensure_table_of, store)
    if args.command == "show":
        return await describe(store, args.request_id, now=datetime.now(UTC))
    if args.command == "list":
        return await list_requests(store, set(args.states), limit=args.limit)
    return await replay(
        store, args.message_ids, all_held=args.all_held, new_request_id=args.new_request_id
    )


def where(args: argparse.Namespace, environ: Mapping[str, str]) -> Place:
    """The one place the options (or else the environment) name; ValueError otherwise."""
    given = [
        option
        for option, value in (
            ("--account", args.account),
            ("--connection-string", args.connection_string),
            ("--local", args.local or None),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(f"give one place to read, not {' and '.join(given)}")
    if args.local:
        return _local()
    if args.account is not None:
        return Place(account_connection(args.account), f"storage account {args.account}")
    text = args.connection_string
    if text == "-":
        text = sys.stdin.readline()
    source = "--connection-string"
    if text is None:
        text, source = environ.get(STORAGE_CONNECTION, ""), STORAGE_CONNECTION
        if not text.strip():
            raise ValueError(NO_PLACE)
        if text.strip() == "UseDevelopmentStorage=true":
            return _local(from_environment=True)
    text = text.strip()
    if "=" not in text:
        raise ValueError(f"{source} is not a storage connection string")
    connection = StorageConnection(connection_string=text)
    name = f"storage account {_account_of(text)}"
    return Place(connection, name, from_environment=source == STORAGE_CONNECTION)


def _local(*, from_environment: bool = False) -> Place:
    connection = StorageConnection(connection_string=LOCAL_STACK_CONNECTION)
    name = "the local stack (Azurite on 127.0.0.1:10001, :10002)"
    return Place(connection, name, local=True, from_environment=from_environment)


def _account_of(connection_string: str) -> str:
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "accountname":
            return value.strip()
    return "(no AccountName)"


def _storage_problem(error: Exception, place: Place) -> str:
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    if isinstance(error, ResourceNotFoundError):
        return (
            f"{place.name} has no {TABLE_REQUESTS} table or {QUEUE_REQUESTS} queue: is it "
            f"the app's storage account? ({first})"
        )
    hint = " (is `make serve` running?)" if place.local else ""
    if place.name.startswith("storage account") and place.connection.connection_string is None:
        hint = " (signed in with `az login`, with the roles of docs/operations.md?)"
    return f"cannot read {place.name}{hint}: {type(error).__name__}: {first}"


def _parser() -> argparse.ArgumentParser:
    prog = "onboarding-ops" if Path(sys.argv[0]).name == "onboarding-ops" else "python -m ops"
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_options(argparse.SUPPRESS)],
    )
    parser.set_defaults(account=None, connection_string=None, local=False, json=False)
    common = [_options(argparse.SUPPRESS)]
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = commands.add_parser("show", parents=common, help="where is a request")
    show.add_argument("request_id", metavar="REQUEST_ID")
    listing = commands.add_parser("list", parents=common, help="what is parked or kept")
    listing.add_argument("states", nargs="*", metavar="STATE", help=f"one of {sorted(STATES)}")
    listing.add_argument(
        "--limit",
        type=_count,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N parked requests and N kept messages (default {DEFAULT_LIMIT}; 0: all)",
    )
    again = commands.add_parser("replay", parents=common, help="re-post poisoned messages")
    again.add_argument("message_ids", nargs="*", metavar="MESSAGE_ID", help="from `list held`")
    again.add_argument("--all-held", action="store_true", help="every message still held")
    again.add_argument(
        "--new-request-id",
        metavar="NEW",
        help="re-post one message already answered, as a new request with this requestId",
    )
    commands.add_parser("schema", parents=common, help="print the request's JSON Schema")
    return parser


def _options(default: Any) -> argparse.ArgumentParser:
    """The options every subcommand takes too; SUPPRESS keeps a subcommand from
    overwriting what was given before it."""
    options = argparse.ArgumentParser(add_help=False)
    place = options.add_argument_group("where to read (exactly one, else AzureWebJobsStorage)")
    place.add_argument("--account", metavar="NAME", default=default, help="Azure, Entra sign-in")
    place.add_argument(
        "--connection-string", metavar="CS", default=default, help="`-`: from standard input"
    )
    place.add_argument(
        "--local", action="store_true", default=default, help="the local stack of `make serve`"
    )
    options.add_argument(
        "--json", action="store_true", default=default, help="machine-readable output"
    )
    return options


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


if __name__ == "__main__":
    sys.exit(main())
