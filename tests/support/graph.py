"""Pytest plugin: a running Graph emulator whose every exchange is checked against the excerpt.

Register with `pytest_plugins = ["tests.support.graph"]` in the root conftest.
Fixtures:

- `graph_directory`: the tenant to load (override it, or parametrize
  `graph_emulator` indirectly with a directory dict);
- `graph_clock`: the emulator's `ManualClock` (advance it instead of sleeping);
- `graph_emulator`: the running `Emulator` on an ephemeral loopback port. At
  teardown every logged exchange (responses, request bodies, `$select`, each
  `$batch` item) is checked with `openapi_check.check_exchange`, and the test
  fails listing the violations. A test that sends invalid requests on purpose
  marks itself `@pytest.mark.graph_invalid_requests`: its responses are still
  checked, its request bodies are not;
- `graph_client`: an `httpx.Client` on the emulator's base URL with the token.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local_stack.graph_emulator import DEFAULT_TOKEN, Emulator, ManualClock, start_emulator
from local_stack.graph_emulator.openapi_check import check_exchange

INVALID_REQUESTS_MARKER = "graph_invalid_requests"

MCOEV_SKU = "e43b5b99-8dfb-405f-9987-dc307f34bcbd"
MCOEV_PLAN = "4828c8ec-dc2e-4779-b502-87ac9ce28ab7"
TEAMS_SKU = "7e74bd05-2c47-404e-829a-ba95c66fe8e5"
TEAMS1_PLAN = "57ff2da0-773e-42df-b2af-ffb7a2317929"
E3_SKU = "6fd2c87f-b296-42f0-b197-1e91e994b900"
EXCHANGE_ENTERPRISE_PLAN = "efb87545-963c-4e0d-99df-69c6916d9eb0"
SHAREPOINT_PLAN = "5dbe027f-2339-4123-9542-606e4d348a72"
MCOSTANDARD_PLAN = "0feaeb32-d00e-4d66-bd5a-43b5b83db82c"
EXCHANGE_STANDARD_SKU = "4b9405b0-7788-4568-add1-99614e613b69"
EXCHANGE_STANDARD_PLAN = "9aaf7827-d63c-4b61-89c3-182f06f82e5c"

JANE_ID = "6e7b768e-07e2-4810-8459-485f84f8f204"
JANE_UPN = "jane.doe@contoso.com"
GUEST_UPN = "ext.user_fabrikam.com#EXT#@contoso.onmicrosoft.com"
DOLLAR_UPN = "$admin@contoso.com"
QUOTE_UPN = "o'brien@contoso.com"
HOSTILE_EMPLOYEE_ID = "x' or startswith(userPrincipalName,'a"

SAMPLE_DIRECTORY: dict[str, Any] = {
    "skus": [
        {
            "skuId": MCOEV_SKU,
            "skuPartNumber": "MCOEV",
            "enabled": 5,
            "servicePlans": [{"servicePlanId": MCOEV_PLAN, "servicePlanName": "MCOEV"}],
        },
        {
            "skuId": TEAMS_SKU,
            "skuPartNumber": "Microsoft_Teams_Enterprise_New",
            "enabled": 10,
            "servicePlans": [{"servicePlanId": TEAMS1_PLAN, "servicePlanName": "TEAMS1"}],
        },
        {
            "skuId": E3_SKU,
            "skuPartNumber": "ENTERPRISEPACK",
            "enabled": 3,
            "servicePlans": [
                {
                    "servicePlanId": EXCHANGE_ENTERPRISE_PLAN,
                    "servicePlanName": "EXCHANGE_S_ENTERPRISE",
                },
                {"servicePlanId": SHAREPOINT_PLAN, "servicePlanName": "SHAREPOINTENTERPRISE"},
                {"servicePlanId": MCOSTANDARD_PLAN, "servicePlanName": "MCOSTANDARD"},
            ],
        },
        {
            "skuId": EXCHANGE_STANDARD_SKU,
            "skuPartNumber": "EXCHANGESTANDARD",
            "enabled": 2,
            "servicePlans": [
                {"servicePlanId": EXCHANGE_STANDARD_PLAN, "servicePlanName": "EXCHANGE_S_STANDARD"}
            ],
        },
    ],
    "planRules": {
        "mutuallyExclusive": [["EXCHANGE_S_STANDARD", "EXCHANGE_S_ENTERPRISE"]],
        "prerequisites": {"MCOEV": ["TEAMS1", "MCOSTANDARD"]},
    },
    "users": [
        {
            "id": JANE_ID,
            "userPrincipalName": JANE_UPN,
            "displayName": "Jane Doe",
            "givenName": "Jane",
            "surname": "Doe",
            "employeeId": "000123",
            "onPremisesImmutableId": "aGVsbG8gd29ybGQ=",
            "onPremisesSyncEnabled": True,
            "usageLocation": "FR",
            "accountEnabled": True,
        },
        {"userPrincipalName": GUEST_UPN, "displayName": "External User", "usageLocation": "DE"},
        {"userPrincipalName": DOLLAR_UPN, "displayName": "Dollar Admin", "usageLocation": "FR"},
        {"userPrincipalName": QUOTE_UPN, "employeeId": HOSTILE_EMPLOYEE_ID, "usageLocation": "IE"},
        {"userPrincipalName": "alice@contoso.com", "employeeId": "000200", "usageLocation": "US"},
        {"userPrincipalName": "nolocation@contoso.com", "employeeId": "000300"},
        {
            "userPrincipalName": "grouped@contoso.com",
            "usageLocation": "FR",
            "groupLicenses": [E3_SKU],
        },
        {
            "userPrincipalName": "pending@contoso.com",
            "employeeId": "000999",
            "appearAfterSeconds": 30,
            "syncAfterSeconds": 60,
        },
    ],
}


def pytest_configure(config: pytest.Config) -> None:
    """Register the opt-out marker (safe if this plugin is registered twice)."""
    config.addinivalue_line(
        "markers",
        f"{INVALID_REQUESTS_MARKER}: the test sends invalid Graph requests on purpose; "
        "only the emulator's responses are checked against the OpenAPI excerpt",
    )


@pytest.fixture
def graph_directory() -> dict[str, Any]:
    """The tenant the emulator starts with; override to use another."""
    return copy.deepcopy(SAMPLE_DIRECTORY)


@pytest.fixture
def graph_clock() -> ManualClock:
    """The emulator's clock: time moves only when the test advances it."""
    return ManualClock()


@pytest.fixture
def graph_emulator(
    request: pytest.FixtureRequest, graph_directory: dict[str, Any], graph_clock: ManualClock
) -> Iterator[Emulator]:
    """A running emulator; at teardown, every exchange must match the OpenAPI excerpt."""
    directory = getattr(request, "param", None) or graph_directory
    emulator = start_emulator(copy.deepcopy(directory), clock=graph_clock)
    try:
        yield emulator
        log = emulator.requests()
    finally:
        emulator.stop()
    check_requests = request.node.get_closest_marker(INVALID_REQUESTS_MARKER) is None
    violations = openapi_violations(log, check_requests=check_requests)
    if violations:
        pytest.fail(
            "Graph exchanges that do not match the OpenAPI excerpt:\n  " + "\n  ".join(violations),
            pytrace=False,
        )


def openapi_violations(log: list[dict[str, Any]], *, check_requests: bool = True) -> list[str]:
    """Check a request log; batch items are checked through their `$batch` exchange."""
    violations: list[str] = []
    for entry in log:
        if entry["batchItem"] or entry["dropped"] or not entry["path"].startswith("/v1.0"):
            continue
        violations += check_exchange(
            entry["method"],
            entry["path"],
            entry["status"],
            entry["responseBody"],
            entry["body"],
            query=entry["query"],
            check_request=check_requests,
        )
    return violations


@pytest.fixture
def graph_client(graph_emulator: Emulator) -> Iterator[httpx.Client]:
    """An HTTP client on the emulator's Graph root, carrying the development token."""
    with httpx.Client(
        base_url=graph_emulator.base_url,
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        timeout=5.0,
    ) as client:
        yield client
