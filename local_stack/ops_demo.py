"""`python -m local_stack.ops_demo`: the on-call tool on a request in every state.

Starts the local stack (Azurite, the Graph emulator with the sample tenant, the
development host), then:

1. posts five requests: licensed, waiting (never synced; `SYNC_TIMEOUT` PT10M), scheduled
   (a start date 30 days ahead; `LICENSE_LEAD_TIME` P1D), failed (an unknown SKU) and
   rejected (a misspelt field);
2. cuts the app's Graph grants to `User.Read.All`, so the next request is `blocked`
   (`assignLicense` answers 403);
3. puts a valid body on `user-onboard-poison`, as the Functions host does after
   `maxDequeueCount` failures (`POISON_HOLD` PT1H: it is held for replay);
4. prints `python -m ops list`, `list pending --limit 2` (cut: it says how many more),
   `show` for each request (one with `--json`) and `list held`;
5. grants `LicenseAssignment.ReadWrite.All` and replays the poisoned message;
6. shows both requests again, replays a second time (refused: the request has its
   outcome) and lists again.

Every command is run as on-call would run it, in a shell whose `AzureWebJobsStorage` is
the demo stack's connection string (its ports are its own, not `make serve`'s, so
`--local` would not reach it), and printed with its exit code. Docs: docs/operations.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from local_stack.stack import REPO, LocalStack

SAMPLES = Path(__file__).resolve().parent / "samples"
STATE = REPO / ".state" / "ops-demo"
SETTINGS = {"SYNC_TIMEOUT": "PT10M", "POISON_HOLD": "PT1H", "LICENSE_LEAD_TIME": "P1D"}
ENTERPRISEPACK = [{"skuPartNumber": "ENTERPRISEPACK"}]


def ops(connection_string: str, *args: str) -> int:
    """Run `python -m ops` against the stack's storage and print what it printed."""
    environment = {**os.environ, "AzureWebJobsStorage": connection_string}
    command = [sys.executable, "-m", "ops", *args]
    done = subprocess.run(  # noqa: S603 - this interpreter, the demo's own arguments
        command, cwd=REPO, env=environment, capture_output=True, text=True, check=False
    )
    print(f"$ python -m ops {' '.join(args)}   (exit {done.returncode})")
    print(done.stdout.rstrip())
    # The tool says which account AzureWebJobsStorage named; here it is always the demo's.
    notes = [line for line in done.stderr.splitlines() if "(AzureWebJobsStorage)" not in line]
    if notes:
        print("\n".join(notes))
    print(flush=True)
    return done.returncode


def request(request_id: str, upn: str, **extra: Any) -> dict[str, Any]:
    return {"requestId": request_id, "userPrincipalName": upn, "licenses": ENTERPRISEPACK, **extra}


def main() -> int:
    ahead = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    shutil.rmtree(STATE, ignore_errors=True)  # a fresh ledger and queues every time
    with LocalStack(STATE, SAMPLES / "directory.json", settings=SETTINGS) as stack:
        assert stack.azurite is not None
        assert stack.graph is not None
        stack.start_host()
        time.sleep(3)  # the host's first poll
        connection = stack.azurite.connection_string
        stack.post(request("OPS-LICENSED", "jane.doe@contoso.com"))
        stack.post(request("OPS-WAITING", "never.synced@contoso.com"))
        stack.post(request("OPS-SCHEDULED", "starting.soon@contoso.com", startDate=ahead))
        unknown_sku = [{"skuPartNumber": "NOPE_SKU"}]
        stack.post(request("OPS-FAILED", "pat.unknown@contoso.com", licenses=unknown_sku))
        typo = {"requestId": "OPS-REJECTED", "userPrincipalName": "lee.emp@contoso.com"}
        stack.post({**typo, "licences": ENTERPRISEPACK})  # "licences": not a field
        stack.wait_for_terminal(["OPS-LICENSED", "OPS-FAILED", "OPS-REJECTED"], 30)

        stack.graph.set_permissions(["User.Read.All"])  # lookups only: writes answer 403
        stack.post(request("OPS-BLOCKED", "lee.emp@contoso.com"))
        poisoned = request(
            "OPS-POISONED", "alex.has@contoso.com", licenses=[{"skuPartNumber": "MCOEV"}]
        )
        message_id = str(stack.queue("user-onboard-poison").send_message(json.dumps(poisoned)).id)
        time.sleep(8)  # the sweep keeps the poisoned message, the blocked request is parked

        print("$ export AzureWebJobsStorage='<the demo stack's connection string>'\n")
        ops(connection, "list")
        ops(connection, "list", "pending", "--limit", "2")
        for request_id in ("LICENSED", "WAITING", "SCHEDULED", "BLOCKED", "FAILED", "REJECTED"):
            ops(connection, "show", f"OPS-{request_id}")
        ops(connection, "show", "OPS-BLOCKED", "--json")
        ops(connection, "show", "OPS-POISONED")
        ops(connection, "list", "held")

        stack.graph.grant("LicenseAssignment.ReadWrite.All")
        ops(connection, "replay", message_id)
        stack.wait_for_terminal(["OPS-POISONED", "OPS-BLOCKED"], 40)
        ops(connection, "show", "OPS-POISONED")
        ops(connection, "show", "OPS-BLOCKED")
        refused = ops(connection, "replay", message_id)
        ops(connection, "list")
    return 0 if refused == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
