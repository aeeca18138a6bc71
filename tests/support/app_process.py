"""An app process of its own, for tests of what the app's instances share: it reads the
app's settings from its environment, like a Functions host's worker, and prints one JSON
line per step.

    python -m tests.support.app_process handle MESSAGE_JSON MESSAGE_ID
        the app's wiring (`bootstrap.build_service`) handles one `user-onboard` message,
        then closes (sharing any 429 it met); prints {"outcome": ...}
    python -m tests.support.app_process hold WRITES_PER_SECOND
        a pacer on the app's storage takes a block of write turns, prints
        {"reserved_at": epoch seconds, "block": n} and waits on them (until killed)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from shared import bootstrap
from shared.adapters.ledger import ensure_table
from shared.adapters.pacing import TablePacingStore
from shared.adapters.storage import table_service
from shared.decisions.pacing import Pacing
from shared.domain.errors import GraphCall
from shared.names import TABLE_REQUESTS
from shared.service.pacing import SharedPacer


async def handle(body: str, message_id: str) -> None:
    wiring = bootstrap.build_service(bootstrap.settings())
    try:
        outcome = await wiring.service.handle_request(body, message_id)
    finally:
        await wiring.aclose()
    print(json.dumps({"outcome": outcome}), flush=True)


async def hold(writes_per_second: float) -> None:
    tables = table_service(bootstrap.settings().storage)
    ensure_table(tables)
    pacing = Pacing(writes_per_second=writes_per_second)
    pacer = SharedPacer(TablePacingStore(tables.get_table_client(TABLE_REQUESTS)), pacing)
    reserved_at = time.time()
    first = asyncio.create_task(pacer.wait_turn(GraphCall.ASSIGN_LICENSE))
    await first  # the block is taken, the first turn is now
    waiting = [
        asyncio.create_task(pacer.wait_turn(GraphCall.ASSIGN_LICENSE))
        for _ in range(pacing.block - 1)
    ]
    await asyncio.sleep(0)
    print(json.dumps({"reserved_at": reserved_at, "block": pacing.block}), flush=True)
    await asyncio.gather(*waiting)
    await asyncio.sleep(3600)


def main(argv: list[str]) -> int:
    if argv[:1] == ["handle"]:
        asyncio.run(handle(argv[1], argv[2]))
    elif argv[:1] == ["hold"]:
        asyncio.run(hold(float(argv[1])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
