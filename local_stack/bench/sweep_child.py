"""One timer-trigger sweep, in a fresh interpreter: `python -m local_stack.bench.sweep_child`.

Run by `local_stack.bench` once the pending queue holds the parked requests, so the peak
RSS is that of a worker that imported the app and ran one sweep, not of the benchmark
process (which also hosts the Graph emulator). Needs the app settings in the environment
(`AzureWebJobsStorage`, `GRAPH_BASE_URL`, ...). Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any


def max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def sweep_once() -> dict[str, Any]:
    """Build the service as the Functions worker does, then time one `sweep()`."""
    from shared import bootstrap

    service = bootstrap.service()
    before = max_rss_kib()
    started = time.perf_counter()
    report = await service.sweep()
    seconds = time.perf_counter() - started
    await bootstrap.aclose()
    return {
        "sweep_seconds": seconds,
        "summary": report.summary(),
        "outcomes": dict(report.outcomes),
        "set_aside": report.set_aside[:3],
        "stopped_by_budget": report.stopped_by_budget,
        "max_rss_kib_before": before,
        "max_rss_kib_after": max_rss_kib(),
    }


def main() -> int:
    import function_app  # noqa: F401 - as the worker does before the first invocation

    result = asyncio.run(sweep_once())
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
