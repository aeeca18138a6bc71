"""`make post FILE=...`: put a message file on `user-onboard` of the running stack, or with
`make post HTTP=1 FILE=...` (`--http`) POST it to the HTTP front door.

The file holds one request (a JSON object) or several (a JSON array of objects); each
becomes one message, sent as plain text like an HR system using azure-storage-queue.
The connection is `AzureWebJobsStorage` from the environment, else `make serve`'s Azurite.

Over HTTP, it does what an HR system does: a client-credentials token from the Entra ID
issuer (`API_AUTHORITY`/`API_TENANT_ID`, scope `api://<API_AUDIENCE>/.default`, from the
environment, else local.settings(.sample).json: `make serve`'s emulator) for a client of
the directory's `identity` section (`--client`, default the sample HR system `hr`), then
`POST <host>/api/onboarding-requests` per request (`--host-url`, default `make serve`'s
http://127.0.0.1:7071), printing each answer's status, `Location` and body. The exit code
is 1 when any request was not accepted (no 2xx).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azure.storage.queue import QueueClient

from local_stack.azurite import connection_string_for
from local_stack.entra_client import TokenRequest, TokenRequestError, fetch_token
from local_stack.serve import AZURITE_PORT, AZURITE_TABLE_PORT, HTTP_PORT, SAMPLES
from local_stack.stack import sample_settings

ROUTE = "/api/onboarding-requests"


def connection_string() -> str:
    value = os.environ.get("AzureWebJobsStorage", "")  # noqa: SIM112 - the Functions name
    if value and value != "UseDevelopmentStorage=true":
        return value
    return connection_string_for(AZURITE_PORT, AZURITE_TABLE_PORT)


def token_request(
    settings: Mapping[str, str], directory: Mapping[str, Any], client: str
) -> TokenRequest:
    """The token request of `client` (name or client id in the directory's identity
    section) for the API the settings name."""
    missing = [n for n in ("API_AUDIENCE", "API_TENANT_ID") if not settings.get(n, "").strip()]
    if missing:
        raise LookupError(f"{' and '.join(missing)} not set: the HTTP front door is off")
    for entry in (directory.get("identity") or {}).get("clients", []):
        if client in (entry.get("name"), entry.get("clientId")):
            return TokenRequest(
                authority=settings.get("API_AUTHORITY") or "https://login.microsoftonline.com",
                tenant_id=entry.get("tenantId") or settings["API_TENANT_ID"],
                client_id=entry["clientId"],
                client_secret=entry["secret"],
                scope=f"api://{settings['API_AUDIENCE']}/.default",
            )
    raise LookupError(f"no client {client!r} in the directory's identity section")


def http_request(host_url: str, token: str, message: object) -> urllib.request.Request:
    """One POST of a request to the front door, as an HR system sends it."""
    return urllib.request.Request(  # noqa: S310 - a URL the operator gave
        host_url.rstrip("/") + ROUTE,
        data=json.dumps(message).encode("utf-8"),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )


def send(request: urllib.request.Request) -> tuple[int, str | None, str]:
    """(status, Location, body) of the answer, whatever the status."""
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, answer.headers.get("Location"), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location"), error.read().decode(errors="replace")


def post_http(messages: list[Any], host_url: str, client: str, directory_file: Path) -> int:
    settings = {
        **sample_settings(),
        **{k: v for k, v in os.environ.items() if k.startswith("API_")},
    }
    directory = json.loads(directory_file.read_text(encoding="utf-8"))
    try:
        token = fetch_token(token_request(settings, directory, client))
    except (LookupError, TokenRequestError, OSError) as error:
        print(f"no token: {error}", file=sys.stderr)
        return 1
    refused = 0
    for message in messages:
        status, location, body = send(http_request(host_url, token, message))
        request_id = message.get("requestId", "?") if isinstance(message, dict) else "?"
        print(f"{request_id}: {status} Location: {location or '-'}\n{body}")
        refused += not 200 <= status < 300
    return 1 if refused else 0


def post_queue(messages: list[Any]) -> int:
    with QueueClient.from_connection_string(connection_string(), "user-onboard") as queue:
        for message in messages:
            sent = queue.send_message(json.dumps(message))
            print(f"posted {message.get('requestId', '?')} as queue message {sent.id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.post", description=__doc__)
    parser.add_argument("file", type=Path, help="a request (JSON object) or several (array)")
    parser.add_argument("--http", action="store_true", help="POST to the HTTP front door")
    parser.add_argument("--host-url", default=f"http://127.0.0.1:{HTTP_PORT}")
    parser.add_argument("--client", default="hr", help="a client of the directory's identity")
    parser.add_argument("--directory", type=Path, default=SAMPLES / "directory.json")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    document = json.loads(args.file.read_text())
    messages = document if isinstance(document, list) else [document]
    if args.http:
        return post_http(messages, args.host_url, args.client, args.directory)
    return post_queue(messages)


if __name__ == "__main__":
    sys.exit(main())
