"""One cold start, in a fresh interpreter: `python -m local_stack.bench.coldstart_child MODE UPN`.

Run by `local_stack.bench` once per sample, so every figure comes from a process that has
imported nothing yet (as a new Functions worker). Needs `AzureWebJobsStorage` and
`GRAPH_BASE_URL` (Azurite and the Graph emulator) in the environment. Prints one JSON
object with checkpoints: seconds since the script started, peak RSS, loaded modules.

Modes:
- `app`: `import function_app`, then the first `bootstrap.service().handle_request(...)`
  (lookup, subscribedSkus, assignLicense, event published): raw JSON through the adapter.
- `telemetry`: as `app`, with `APPLICATIONINSIGHTS_CONNECTION_STRING` set (by the caller)
  so `function_app` starts the Azure Monitor exporter on its background thread; also
  records when that set-up has finished (`telemetry_ready`).
- `typed`: `import function_app`, then the same three Graph calls with msgraph-sdk's typed
  responses (`.get()` / `.post()` returning models), the path whose cold start
  docs/graph-facts.md ("msgraph-sdk in a serverless function") describes.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import asyncio  # noqa: E402 - the clock starts before any import
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

MODELS_PREFIX = "msgraph.generated.models."


def checkpoint() -> dict[str, Any]:
    """Where the process stands now: elapsed time, peak RSS (KiB on Linux), modules."""
    return {
        "seconds": time.perf_counter() - STARTED,
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "modules": len(sys.modules),
        "model_modules": sum(1 for name in sys.modules if name.startswith(MODELS_PREFIX)),
    }


def request_body(upn: str) -> str:
    return json.dumps(
        {
            "requestId": f"COLD-{upn.split('@')[0]}",
            "userPrincipalName": upn,
            "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}],
        }
    )


async def app_path(upn: str) -> dict[str, Any]:
    """The app's own first invocation, as the queue trigger runs it."""
    from shared import bootstrap

    outcome = await bootstrap.service().handle_request(request_body(upn), "cold-start")
    done = checkpoint()
    result: dict[str, Any] = {"outcome": outcome, "first_user": None, "done": done}
    if os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        from shared import telemetry

        ready = await asyncio.to_thread(telemetry.wait_until_ready, 60.0)
        result["telemetry_ready"] = checkpoint() if ready else None
    await bootstrap.aclose()  # after the checkpoint: closing is not part of the cold start
    return result


async def typed_path(upn: str) -> dict[str, Any]:
    """The same three Graph calls, parsed into msgraph-sdk models."""
    import httpx
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph import GraphServiceClient
    from msgraph.generated.models.assigned_license import AssignedLicense
    from msgraph.generated.subscribed_skus.subscribed_skus_request_builder import (
        SubscribedSkusRequestBuilder,
    )
    from msgraph.generated.users.item.assign_license.assign_license_post_request_body import (
        AssignLicensePostRequestBody,
    )
    from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

    from shared.adapters.graph import SKU_FIELDS, USER_FIELDS, build_adapter

    async with httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0)) as http:
        adapter = build_adapter(os.environ["GRAPH_BASE_URL"], local=True, http=http)
        client = GraphServiceClient(request_adapter=adapter)
        user_query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=list(USER_FIELDS)
        )
        user = await client.users.by_user_id(upn).get(
            RequestConfiguration(query_parameters=user_query)
        )
        first_user = checkpoint()
        sku_query = SubscribedSkusRequestBuilder.SubscribedSkusRequestBuilderGetQueryParameters(
            select=list(SKU_FIELDS)
        )
        skus = await client.subscribed_skus.get(RequestConfiguration(query_parameters=sku_query))
        if user is None or user.id is None or skus is None or not skus.value:
            raise RuntimeError("the emulator answered without the user or the SKUs")
        sku = next(s for s in skus.value if s.sku_part_number == "ENTERPRISEPACK")
        body = AssignLicensePostRequestBody(
            add_licenses=[AssignedLicense(sku_id=sku.sku_id, disabled_plans=[])],
            remove_licenses=[],
        )
        await client.users.by_user_id(user.id).assign_license.post(body)
        done = checkpoint()
    return {"outcome": "licensed", "first_user": first_user, "done": done}


def main(argv: list[str]) -> int:
    mode, upn = argv
    import function_app  # noqa: F401 - the import is what is measured

    imported = checkpoint()
    run = typed_path if mode == "typed" else app_path
    result = asyncio.run(run(upn))
    result.update(imported=imported, first_request=result.pop("done"), mode=mode)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
