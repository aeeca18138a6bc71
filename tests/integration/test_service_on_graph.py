"""The service on the real Graph adapter and the emulator: how many Graph calls a
request and a sweep cost. Queues are in-memory fakes here; the end-to-end tests use
Azurite."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from local_stack.graph_emulator import Emulator
from shared.bootstrap import build_service
from shared.decisions import Backoff, Pacing
from shared.service import OnboardingService, Policy
from shared.settings import Settings
from tests.fakes import FakeClock, FakeEventSink, FakeLedger, FakePacingStore, FakeQueue
from tests.support.graph import E3_SKU, SAMPLE_DIRECTORY

T = TypeVar("T")
# These tests count Graph requests: at Graph's 20 writes/s, a sweep of 1,000 writes would
# take 50 s for nothing.
COUNTING = Pacing(writes_per_second=10_000.0)


@pytest.fixture
def graph_directory() -> dict[str, Any]:
    directory = copy.deepcopy(SAMPLE_DIRECTORY)
    for sku in directory["skus"]:
        sku["enabled"] = 5000
    return directory


class Harness:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.clock = FakeClock()
        self.pending = FakeQueue(self.clock)
        self.poison = FakeQueue(self.clock)
        self.events = FakeEventSink()
        self.ledger = FakeLedger()

    def run(self, use: Callable[[OnboardingService], Awaitable[T]]) -> T:
        async def main() -> T:
            settings = Settings.from_env(
                {
                    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                    "GRAPH_BASE_URL": self.emulator.base_url,
                }
            )
            wiring = build_service(  # the Graph adapter from settings, the rest in memory
                settings,
                pending=self.pending,
                poison=self.poison,
                events=self.events,
                ledger=self.ledger,
                pacing=FakePacingStore(),
                clock=self.clock,
                policy=Policy(
                    backoff=Backoff(timedelta(minutes=5), timedelta(minutes=30)),
                    sync_timeout=timedelta(hours=24),
                    default_usage_location="FR",
                    pacing=COUNTING,
                ),
            )
            try:
                return await use(wiring.service)
            finally:
                await wiring.aclose()

        return asyncio.run(main())


def request(request_id: str, upn: str) -> str:
    return json.dumps(
        {
            "requestId": request_id,
            "userPrincipalName": upn,
            "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}],
        }
    )


def graph_calls(emulator: Emulator) -> list[tuple[str, str]]:
    return [
        (
            e["method"],
            e["path"].split("/")[-1] if "assignLicense" in e["path"] else e["path"].split("/")[2],
        )
        for e in emulator.requests()
        if e["path"].startswith("/v1.0") and not e["batchItem"]
    ]


def test_a_synced_user_with_a_warm_sku_cache_costs_one_lookup_and_one_assignment(
    graph_emulator: Emulator,
) -> None:
    """Exactly GET user + POST assignLicense; PATCH only when usageLocation is missing."""
    harness = Harness(graph_emulator)
    for n in range(2):
        graph_emulator.add_user(
            {
                "userPrincipalName": f"warm{n}@contoso.com",
                "onPremisesSyncEnabled": True,
                "usageLocation": "FR" if n == 0 else None,
            }
        )

    async def two_requests(service: OnboardingService) -> list[list[tuple[str, str]]]:
        await service.handle_request(
            request("W-0", "jane.doe@contoso.com"), "m0"
        )  # warms the cache
        seen = []
        for n in range(2):
            graph_emulator.clear_requests()
            await service.handle_request(request(f"W-{n + 1}", f"warm{n}@contoso.com"), f"m{n + 1}")
            seen.append(graph_calls(graph_emulator))
        return seen

    with_location, without_location = harness.run(two_requests)
    assert with_location == [("GET", "users"), ("POST", "assignLicense")]
    assert without_location == [("GET", "users"), ("PATCH", "users"), ("POST", "assignLicense")]
    assert len(harness.events.of_type("licensed")) == 3


def test_a_sweep_over_a_thousand_pending_users_makes_at_most_fifty_lookup_requests(
    graph_emulator: Emulator,
) -> None:
    """$batch of 20: 1,000 lookups in 50 requests, then one assignLicense per synced user."""
    graph_emulator.set_throttle(units_per_10s=0)  # counting requests here, not throttling
    upns = [f"p{n}@contoso.com" for n in range(1000)]
    for upn in upns:
        graph_emulator.add_user({"userPrincipalName": upn, "usageLocation": "FR"})
    harness = Harness(graph_emulator)

    async def park_all(service: OnboardingService) -> None:
        for n, upn in enumerate(upns):
            await service.handle_request(request(f"P-{n}", upn), f"m{n}")

    harness.run(park_all)
    assert len(harness.pending.stored) == 1000
    for upn in upns:
        graph_emulator.sync_user(upn)
    graph_emulator.clear_requests()
    harness.clock.advance(timedelta(minutes=5))

    report = harness.run(lambda service: service.sweep())
    calls = graph_calls(graph_emulator)
    batches = [c for c in calls if c == ("POST", "$batch")]
    assert len(batches) <= 50
    assert calls.count(("POST", "assignLicense")) == 1000
    assert report.outcomes["licensed"] == 1000
    assert harness.pending.stored == []
    consumed = next(s for s in graph_emulator.directory.subscribed_skus() if s["skuId"] == E3_SKU)
    assert consumed["consumedUnits"] == 1001  # 1,000 new seats + the group-licensed user's
