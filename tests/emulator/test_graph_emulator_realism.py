"""A tenant on its worst day: replication lag, missing permissions, throttling, batch order."""

from __future__ import annotations

import copy
import re
from typing import Any

import httpx
import pytest

from local_stack.graph_emulator import (
    DEFAULT_TOKEN,
    DirectoryFormatError,
    Emulator,
    ManualClock,
    start_emulator,
)
from local_stack.graph_emulator.__main__ import _arguments
from local_stack.graph_emulator.errors import GraphRefusal
from local_stack.graph_emulator.permissions import (
    KNOWN_PERMISSIONS,
    ROUTE_PERMISSIONS,
    Permissions,
)
from tests.support.graph import JANE_ID, JANE_UPN, SAMPLE_DIRECTORY, TEAMS_SKU

GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NOT_FOUND_MESSAGE = (
    "Resource '{key}' does not exist or one of its queried reference-property objects are not "
    "present."
)
INVALID_LOCATION = "License assignment cannot be done for user with invalid usage location."
TEAMS_LICENSE = {"addLicenses": [{"skuId": TEAMS_SKU, "disabledPlans": []}], "removeLicenses": []}
JSON = {"Content-Type": "application/json"}


def control(emulator: Emulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.control_url, timeout=5.0)


def batch(client: httpx.Client, items: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/$batch", json={"requests": items})


def by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in response.json()["responses"]}


def lag_of(emulator: Emulator, key: str) -> dict[str, int]:
    lag: dict[str, int] = emulator.user_record(key)["_emulator"]["lag"]
    return lag


def teams_seats_used(emulator: Emulator) -> int:
    skus = emulator.directory.subscribed_skus()
    return int(next(s["consumedUnits"] for s in skus if s["skuId"] == TEAMS_SKU))


def directory_with(**top_level: Any) -> dict[str, Any]:
    directory = copy.deepcopy(SAMPLE_DIRECTORY)
    directory.update(top_level)
    return directory


# ------------------------------------------------------------ replication lag


def test_a_write_to_a_lagging_user_is_404_and_changes_nothing(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """writeNotFound 2: two PATCHes answer Graph's 404 and do nothing, the third lands."""
    graph_emulator.set_user_lag("alice@contoso.com", write_not_found=2)
    for remaining in (1, 0):
        refused = graph_client.patch("/users/alice@contoso.com", json={"usageLocation": "GB"})
        assert refused.status_code == 404
        error = refused.json()["error"]
        assert error["code"] == "Request_ResourceNotFound"
        assert error["message"] == NOT_FOUND_MESSAGE.format(key="alice@contoso.com")
        assert lag_of(graph_emulator, "alice@contoso.com")["writeNotFound"] == remaining
    assert graph_emulator.user_record("alice@contoso.com")["usageLocation"] == "US"
    assert (
        graph_client.patch("/users/alice@contoso.com", json={"usageLocation": "GB"}).status_code
        == 204
    )
    assert graph_emulator.user_record("alice@contoso.com")["usageLocation"] == "GB"


def test_assign_license_spends_the_same_write_lag_as_patch(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """writeNotFound counts every user write: an assignLicense 404 takes no seat."""
    seats = teams_seats_used(graph_emulator)
    graph_emulator.set_user_lag(JANE_ID, write_not_found=2)
    assert (
        graph_client.post(f"/users/{JANE_ID}/assignLicense", json=TEAMS_LICENSE).status_code == 404
    )
    assert graph_client.patch(f"/users/{JANE_ID}", json={"usageLocation": "FR"}).status_code == 404
    assert teams_seats_used(graph_emulator) == seats
    assert (
        graph_client.post(f"/users/{JANE_ID}/assignLicense", json=TEAMS_LICENSE).status_code == 200
    )
    assert teams_seats_used(graph_emulator) == seats + 1


def test_reads_of_a_user_with_write_lag_still_succeed(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """A lookup finds the user the next write cannot: the read lands on another replica."""
    graph_emulator.set_user_lag(JANE_ID, write_not_found=1)
    assert graph_client.get(f"/users/{JANE_ID}").status_code == 200
    assert graph_client.patch(f"/users/{JANE_ID}", json={"usageLocation": "FR"}).status_code == 404
    assert graph_client.patch(f"/users/{JANE_ID}", json={"usageLocation": "FR"}).status_code == 204


def test_assign_license_after_setting_a_usage_location_sees_the_old_value(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """usageLocationLag 2: after the PATCH, two assignLicense calls are 400 and take no seat."""
    graph_emulator.set_user_lag("nolocation@contoso.com", usage_location_lag=2)
    seats = teams_seats_used(graph_emulator)
    patched = graph_client.patch("/users/nolocation@contoso.com", json={"usageLocation": "FR"})
    assert patched.status_code == 204
    assert lag_of(graph_emulator, "nolocation@contoso.com")["usageLocationPending"] == 2
    for _ in range(2):
        refused = graph_client.post(
            "/users/nolocation@contoso.com/assignLicense", json=TEAMS_LICENSE
        )
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "Request_BadRequest"
        assert refused.json()["error"]["message"] == INVALID_LOCATION
    assert teams_seats_used(graph_emulator) == seats
    done = graph_client.post("/users/nolocation@contoso.com/assignLicense", json=TEAMS_LICENSE)
    assert done.status_code == 200
    assert teams_seats_used(graph_emulator) == seats + 1


def test_usage_location_lag_waits_for_a_patch_and_spares_users_who_had_a_location(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """No PATCH, nothing stale; changing a valid location leaves a valid old value."""
    graph_emulator.set_user_lag("alice@contoso.com", usage_location_lag=3)
    assert (
        graph_client.post("/users/alice@contoso.com/assignLicense", json=TEAMS_LICENSE).status_code
        == 200
    )
    assert (
        graph_client.patch("/users/alice@contoso.com", json={"usageLocation": "GB"}).status_code
        == 204
    )
    assert lag_of(graph_emulator, "alice@contoso.com")["usageLocationPending"] == 0


def test_a_key_lookup_can_404_while_a_filter_already_finds_the_user(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """keyLookupLag 2: /users/{upn} and /users('upn') are 404, $filter finds, then keys work."""
    graph_emulator.set_user_lag(JANE_UPN, key_lookup_lag=2)
    by_key = graph_client.get(f"/users/{JANE_UPN}")
    assert by_key.status_code == 404
    assert by_key.json()["error"]["message"] == NOT_FOUND_MESSAGE.format(key=JANE_UPN)
    found = graph_client.get("/users", params={"$filter": "employeeId eq '000123'"})
    assert [u["id"] for u in found.json()["value"]] == [JANE_ID]
    assert graph_client.get(f"/users('{JANE_UPN}')").status_code == 404
    assert graph_client.get(f"/users/{JANE_ID}").status_code == 200


LAGGING_TENANT = directory_with(
    consistency={"writeNotFound": 1, "keyLookupLag": 1, "usageLocationLag": 0},
    users=[
        {"userPrincipalName": "default@contoso.com", "usageLocation": "FR"},
        {
            "userPrincipalName": "override@contoso.com",
            "usageLocation": "FR",
            "lag": {"writeNotFound": 0, "keyLookupLag": 3},
        },
    ],
)


@pytest.mark.parametrize("graph_emulator", [LAGGING_TENANT], indirect=True)
def test_the_file_sets_lag_defaults_for_every_user_and_a_user_can_override_them(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Top-level consistency applies to each user; a user's lag replaces what it names."""
    assert lag_of(graph_emulator, "default@contoso.com") == {
        "writeNotFound": 1,
        "usageLocationLag": 0,
        "keyLookupLag": 1,
        "usageLocationPending": 0,
    }
    assert graph_client.get("/users/default@contoso.com").status_code == 404
    assert graph_client.get("/users/default@contoso.com").status_code == 200
    assert (
        graph_client.patch("/users/default@contoso.com", json={"usageLocation": "DE"}).status_code
        == 404
    )
    assert (
        graph_client.patch("/users/override@contoso.com", json={"usageLocation": "DE"}).status_code
        == 204
    )
    assert lag_of(graph_emulator, "override@contoso.com")["keyLookupLag"] == 3


def test_the_control_api_sets_lag_defaults_for_new_users_and_counters_of_one_user(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """PUT /consistency affects users added afterwards; PUT /users/{key}/lag affects one now."""
    with control(graph_emulator) as api:
        assert api.get("/consistency").json() == {
            "writeNotFound": 0,
            "usageLocationLag": 0,
            "keyLookupLag": 0,
        }
        defaults = api.put("/consistency", json={"writeNotFound": 1}).json()
        assert defaults["writeNotFound"] == 1
        assert lag_of(graph_emulator, "alice@contoso.com")["writeNotFound"] == 0
        added = api.post("/users", json={"userPrincipalName": "fresh@contoso.com"})
        assert added.json()["_emulator"]["lag"]["writeNotFound"] == 1
        record = api.put("/users/alice@contoso.com/lag", json={"keyLookupLag": 1}).json()
        assert record["_emulator"]["lag"]["keyLookupLag"] == 1
        assert api.get("/users/alice@contoso.com").json()["_emulator"]["lag"]["keyLookupLag"] == 1
    assert (
        graph_client.patch("/users/fresh@contoso.com", json={"usageLocation": "FR"}).status_code
        == 404
    )
    assert (
        graph_client.patch("/users/fresh@contoso.com", json={"usageLocation": "FR"}).status_code
        == 204
    )
    assert graph_client.get("/users/alice@contoso.com").status_code == 404


def test_in_process_lag_helpers_set_defaults_and_one_user(graph_emulator: Emulator) -> None:
    """set_consistency returns the defaults; set_user_lag returns the user's record."""
    defaults = graph_emulator.set_consistency(usage_location_lag=2, key_lookup_lag=1)
    assert defaults == {"writeNotFound": 0, "usageLocationLag": 2, "keyLookupLag": 1}
    added = graph_emulator.add_user({"userPrincipalName": "later@contoso.com"})
    assert added["_emulator"]["lag"]["usageLocationLag"] == 2
    record = graph_emulator.set_user_lag("later@contoso.com", key_lookup_lag=0)
    assert record["_emulator"]["lag"]["keyLookupLag"] == 0
    assert record["_emulator"]["lag"]["usageLocationLag"] == 2


def test_lag_applies_to_batch_items_exactly_like_direct_calls(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """A lagging lookup inside $batch is 404 and its dependent write is 424, never run."""
    graph_emulator.set_user_lag("alice@contoso.com", key_lookup_lag=1, write_not_found=1)
    write = {
        "id": "write",
        "method": "PATCH",
        "url": "/users/alice@contoso.com",
        "headers": JSON,
        "body": {"usageLocation": "GB"},
    }
    lookup = {"id": "lookup", "method": "GET", "url": "/users/alice@contoso.com?$select=id"}
    first = by_id(batch(graph_client, [lookup, {**write, "dependsOn": ["lookup"]}]))
    assert (first["lookup"]["status"], first["write"]["status"]) == (404, 424)
    assert lag_of(graph_emulator, "alice@contoso.com")["writeNotFound"] == 1
    second = by_id(batch(graph_client, [lookup, {**write, "dependsOn": ["lookup"]}]))
    assert (second["lookup"]["status"], second["write"]["status"]) == (200, 404)
    assert second["write"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    third = by_id(batch(graph_client, [write]))
    assert third["write"]["status"] == 204


def test_lag_settings_are_validated(graph_emulator: Emulator) -> None:
    """Unknown keys and negative or non-integer counters: 400 / DirectoryFormatError."""
    with control(graph_emulator) as api:
        assert api.put("/consistency", json={"writeNotFound": -1}).status_code == 400
        assert api.put("/consistency", json={"readLag": 1}).status_code == 400
        assert (
            api.put("/users/alice@contoso.com/lag", json={"keyLookupLag": "2"}).status_code == 400
        )
        assert api.put("/users/ghost@contoso.com/lag", json={"keyLookupLag": 1}).status_code == 404
    with pytest.raises(DirectoryFormatError, match="consistency"):
        start_emulator(directory_with(consistency={"writeNotFound": True}))
    bad_user = directory_with(users=[{"userPrincipalName": "x@contoso.com", "lag": {"x": 1}}])
    with pytest.raises(DirectoryFormatError, match="lag"):
        start_emulator(bad_user)


# --------------------------------------------------------------- permissions

ROUTE_CALLS = [
    ("users.get", "GET", f"/users/{JANE_ID}", None, 200),
    ("users.list", "GET", "/users?$filter=employeeId eq '000123'", None, 200),
    ("users.update", "PATCH", f"/users/{JANE_ID}", {"usageLocation": "FR"}, 204),
    ("users.assignLicense", "POST", f"/users/{JANE_ID}/assignLicense", TEAMS_LICENSE, 200),
    ("subscribedSkus.list", "GET", "/subscribedSkus", None, 200),
]


@pytest.mark.parametrize(("route", "method", "url", "body", "ok"), ROUTE_CALLS)
def test_a_call_without_a_permission_that_covers_it_is_403_until_one_is_granted(
    graph_client: httpx.Client,
    graph_emulator: Emulator,
    route: str,
    method: str,
    url: str,
    body: Any,
    ok: int,
) -> None:
    """Every other route's permissions granted: 403 Authorization_RequestDenied, then success."""
    others = {p for r, *_ in ROUTE_CALLS if r != route for p in ROUTE_PERMISSIONS[r]}
    graph_emulator.set_permissions(others - set(ROUTE_PERMISSIONS[route]))
    refused = graph_client.request(method, url, json=body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "Authorization_RequestDenied"
    assert (
        refused.json()["error"]["message"] == "Insufficient privileges to complete the operation."
    )
    graph_emulator.grant(ROUTE_PERMISSIONS[route][0])  # the least privileged one
    assert graph_client.request(method, url, json=body).status_code == ok


def test_the_least_privileged_permissions_are_the_documented_ones() -> None:
    """The table's first entries: the least privileged permission of each route's page."""
    assert {route: names[0] for route, names in ROUTE_PERMISSIONS.items()} == {
        "users.get": "User.Read.All",
        "users.list": "User.Read.All",
        "users.update": "User.ReadUpdate.All",
        "users.assignLicense": "LicenseAssignment.ReadWrite.All",
        "users.reprocessLicenseAssignment": "User.ReadWrite.All",
        "subscribedSkus.list": "LicenseAssignment.Read.All",
        "groups.get": "GroupMember.Read.All",
        "groups.members.add": "GroupMember.ReadWrite.All",
        "servicePrincipals.synchronization.jobs.schema.get": (
            "CustomSecAttributeProvisioning.Read.All"
        ),
        "servicePrincipals.synchronization.jobs.provisionOnDemand": (
            "Application.ReadWrite.OwnedBy"
        ),
        "teams.userConfigurations.get": "TeamsUserConfiguration.Read.All",
        "teams.numberAssignments.list": "TeamsTelephoneNumber.Read.All",
        "teams.numberAssignments.get": "TeamsTelephoneNumber.Read.All",
        "teams.numberAssignments.assignNumber": "TeamsTelephoneNumber.ReadWrite.All",
        "teams.operations.get": "TeamsTelephoneNumber.Read.All",
    }
    assert all(set(names) <= KNOWN_PERMISSIONS for names in ROUTE_PERMISSIONS.values())


def test_sync_routes_are_refused_with_401_unknown_error_not_403() -> None:
    """Graph answers the synchronization APIs without permission 401 UnknownError, as observed."""
    permissions = Permissions([])
    for route in (
        "servicePrincipals.synchronization.jobs.schema.get",
        "servicePrincipals.synchronization.jobs.provisionOnDemand",
    ):
        with pytest.raises(GraphRefusal) as refused:
            permissions.require(route)
        assert (refused.value.status, refused.value.code) == (401, "UnknownError")
    permissions.grant("Synchronization.ReadWrite.All")
    permissions.require("servicePrincipals.synchronization.jobs.provisionOnDemand")


def test_a_higher_privileged_permission_covers_every_emulated_route(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Directory.ReadWrite.All alone reads, patches, licenses and lists SKUs."""
    graph_emulator.set_permissions(["Directory.ReadWrite.All"])
    for _, method, url, body, ok in ROUTE_CALLS:
        assert graph_client.request(method, url, json=body).status_code == ok


@pytest.mark.parametrize(
    "graph_emulator", [directory_with(permissions=["User.Read.All"])], indirect=True
)
def test_the_directory_file_grants_permissions_and_reads_do_not_allow_writes(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """permissions: [User.Read.All]: reads pass, PATCH, assignLicense and SKUs are refused."""
    assert graph_emulator.permissions() == ["User.Read.All"]
    assert graph_client.get(f"/users/{JANE_ID}").status_code == 200
    assert graph_client.patch(f"/users/{JANE_ID}", json={"usageLocation": "FR"}).status_code == 403
    assert (
        graph_client.post(f"/users/{JANE_ID}/assignLicense", json=TEAMS_LICENSE).status_code == 403
    )
    assert graph_client.get("/subscribedSkus").status_code == 403


def test_the_control_api_grants_and_revokes_permissions_at_runtime(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """GET/PUT /permissions, POST and DELETE /permissions/{name} change the next call."""
    with control(graph_emulator) as api:
        assert api.get("/permissions").json() == {"granted": None}
        assert api.put("/permissions", json={"granted": []}).json() == {"granted": []}
        assert graph_client.get(f"/users/{JANE_ID}").status_code == 403
        granted = api.post("/permissions/User.Read.All").json()
        assert granted == {"granted": ["User.Read.All"]}
        assert graph_client.get(f"/users/{JANE_ID}").status_code == 200
        assert api.delete("/permissions/User.Read.All").json() == {"granted": []}
        assert graph_client.get(f"/users/{JANE_ID}").status_code == 403
        assert api.put("/permissions", json={"granted": None}).json() == {"granted": None}
        assert graph_client.get(f"/users/{JANE_ID}").status_code == 200
        revoked = api.delete("/permissions/Directory.ReadWrite.All").json()["granted"]
        assert "Directory.ReadWrite.All" not in revoked
        assert "User.Read.All" in revoked


def test_unknown_permission_names_are_refused(graph_emulator: Emulator) -> None:
    """A misspelt permission is a 400 in the control API and a DirectoryFormatError in a file."""
    with control(graph_emulator) as api:
        assert api.post("/permissions/User.Read.Everything").status_code == 400
        assert api.put("/permissions", json={"granted": ["user.read.all"]}).status_code == 400
        assert api.put("/permissions", json={"granted": "User.Read.All"}).status_code == 400
        assert api.get("/permissions").json() == {"granted": None}
    with pytest.raises(DirectoryFormatError, match="unknown permission"):
        start_emulator(directory_with(permissions=["Users.Read.All"]))


def test_a_missing_token_is_401_before_any_permission_check(graph_emulator: Emulator) -> None:
    """Without a token the answer is 401 even when no permission is granted."""
    graph_emulator.set_permissions([])
    response = httpx.get(f"{graph_emulator.base_url}/users/{JANE_ID}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_a_refused_call_costs_no_throttling_budget(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Ten 403s with a one-unit budget leave the unit for the first permitted call."""
    graph_emulator.set_throttle(units_per_10s=1)
    graph_emulator.set_permissions([])
    assert {graph_client.get(f"/users/{JANE_ID}").status_code for _ in range(10)} == {403}
    graph_emulator.grant("User.Read.All")
    assert graph_client.get(f"/users/{JANE_ID}").status_code == 200
    assert graph_client.get(f"/users/{JANE_ID}").status_code == 429


def test_permissions_are_checked_per_batch_item(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """With only User.Read.All, a batch's read is 200 and its write is 403."""
    graph_emulator.set_permissions(["User.Read.All"])
    response = batch(
        graph_client,
        [
            {"id": "read", "method": "GET", "url": f"/users/{JANE_ID}?$select=id"},
            {
                "id": "write",
                "method": "PATCH",
                "url": f"/users/{JANE_ID}",
                "headers": JSON,
                "body": {"usageLocation": "FR"},
            },
        ],
    )
    items = by_id(response)
    assert (items["read"]["status"], items["write"]["status"]) == (200, 403)
    assert items["write"]["body"]["error"]["code"] == "Authorization_RequestDenied"


def test_a_reset_restores_the_files_permissions(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Runtime grants are undone by POST /reset like any other tenant change."""
    graph_emulator.set_permissions([])
    graph_emulator.reset()
    assert graph_emulator.permissions() is None
    assert graph_client.get(f"/users/{JANE_ID}").status_code == 200


# ---------------------------------------------------------------- throttling


@pytest.mark.parametrize(
    ("method", "url", "body", "units"),
    [
        ("GET", f"/users/{JANE_ID}", None, 1),
        ("GET", f"/users/{JANE_ID}?$select=id", None, 1),
        ("GET", "/users?$filter=employeeId eq '000123'", None, 2),
        ("GET", "/users?$filter=employeeId eq '000123'&$select=id", None, 1),
        ("GET", "/users?$filter=employeeId eq '000123'&$top=5", None, 1),
        ("GET", "/users?$filter=employeeId eq '000123'&$top=50", None, 2),
        ("GET", "/subscribedSkus", None, 3),
        ("GET", "/subscribedSkus?$select=skuId", None, 2),
        ("PATCH", f"/users/{JANE_ID}", {"usageLocation": "FR"}, 1),
        ("POST", f"/users/{JANE_ID}/assignLicense", TEAMS_LICENSE, 1),
    ],
)
def test_each_call_costs_what_the_identity_and_access_table_says(
    graph_client: httpx.Client, method: str, url: str, body: Any, units: int
) -> None:
    """x-ms-resource-unit: GET users 2, subscribedSkus 3, others 1; $select and $top<20 -1."""
    response = graph_client.request(method, url, json=body)
    assert response.status_code < 300
    assert response.headers["x-ms-resource-unit"] == str(units)


def test_a_429_has_graphs_body_retry_after_and_throttle_headers(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """TooManyRequests "Please retry again later.", Retry-After and x-ms-throttle-* headers."""
    graph_emulator.set_throttle(units_per_10s=3)
    assert graph_client.get("/subscribedSkus").status_code == 200
    throttled = graph_client.get("/subscribedSkus")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert throttled.json()["error"]["message"] == "Please retry again later."
    assert throttled.headers["Retry-After"] == "10"
    assert re.fullmatch(
        f"Tenant_Application/ReadWrite/{GUID}/{GUID}", throttled.headers["x-ms-throttle-scope"]
    )
    assert throttled.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert "x-ms-resource-unit" not in throttled.headers


def test_once_throttled_every_call_of_the_app_waits_for_the_window(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """After a 429 even a call that would fit the budget is refused until the window ends."""
    graph_emulator.set_throttle(units_per_10s=4)
    assert (
        graph_client.get("/users", params={"$filter": "employeeId eq '000123'"}).status_code == 200
    )
    assert graph_client.get("/subscribedSkus").status_code == 429  # 2 + 3 > 4
    graph_clock.advance(4)
    cheap = graph_client.get(f"/users/{JANE_ID}")  # 2 + 1 would fit
    assert cheap.status_code == 429
    assert cheap.headers["Retry-After"] == "6"
    graph_clock.advance(6)
    assert graph_client.get(f"/users/{JANE_ID}").status_code == 200


def test_the_write_quota_refuses_writes_while_reads_still_pass(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """Over 3,000-writes-per-150-s (here 1): writes get the Write scope, reads are served."""
    graph_emulator.set_throttle(writes_per_150s=1)
    assert graph_client.patch(f"/users/{JANE_ID}", json={"usageLocation": "FR"}).status_code == 204
    refused = graph_client.post(f"/users/{JANE_ID}/assignLicense", json=TEAMS_LICENSE)
    assert refused.status_code == 429
    assert refused.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert "/Write/" in refused.headers["x-ms-throttle-scope"]
    assert refused.headers["Retry-After"] == "150"
    assert graph_client.get(f"/users/{JANE_ID}").status_code == 200
    graph_clock.advance(150)
    assert graph_client.patch(f"/users/{JANE_ID}", json={"usageLocation": "FR"}).status_code == 204


def test_the_limit_percentage_header_appears_above_eighty_percent(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """x-ms-throttle-limit-percentage is absent up to 0.8 of the budget, then shows the share."""
    graph_emulator.set_throttle(units_per_10s=10)
    shares = [
        graph_client.get(f"/users/{JANE_ID}").headers.get("x-ms-throttle-limit-percentage")
        for _ in range(10)
    ]
    assert shares == [None] * 8 + ["0.90", "1.00"]


def test_batch_items_are_charged_one_by_one_and_a_429_blocks_the_rest(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Budget 3: a batch of list queries (2 each) gets 200 then 429s; the envelope is 200."""
    graph_emulator.set_throttle(units_per_10s=3)
    items = [
        {"id": str(i), "method": "GET", "url": "/users?$filter=employeeId eq '000123'"}
        for i in range(3)
    ]
    response = batch(graph_client, items)
    assert response.status_code == 200
    answers = by_id(response)
    assert {k: v["status"] for k, v in answers.items()} == {"0": 200, "1": 429, "2": 429}
    assert answers["0"]["headers"]["x-ms-resource-unit"] == "2"
    assert answers["2"]["headers"]["Retry-After"] == "10"
    assert answers["2"]["headers"]["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"


# ----------------------------------------------------------------- $batch order


def twenty_lookups(emulator: Emulator) -> list[dict[str, Any]]:
    for n in range(20):
        emulator.add_user({"userPrincipalName": f"order{n}@contoso.com"})
    return [
        {
            "id": str(n),
            "method": "GET",
            "url": f"/users/order{n}@contoso.com?$select=userPrincipalName",
        }
        for n in range(20)
    ]


def test_batch_responses_come_back_shuffled_and_ids_still_match(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Graph does not promise the order of responses: only the ids pair them with requests."""
    response = batch(graph_client, twenty_lookups(graph_emulator))
    ids = [r["id"] for r in response.json()["responses"]]
    assert ids != [str(n) for n in range(20)]
    assert sorted(ids, key=int) == [str(n) for n in range(20)]
    for item_id, item in by_id(response).items():
        assert item["body"]["userPrincipalName"] == f"order{item_id}@contoso.com"


def test_a_two_item_batch_is_never_answered_in_request_order(graph_client: httpx.Client) -> None:
    """The shuffle avoids the request order, so a positional client fails every run."""
    items = [
        {"id": "a", "method": "GET", "url": f"/users/{JANE_ID}?$select=id"},
        {"id": "b", "method": "GET", "url": "/users/alice@contoso.com?$select=id"},
    ]
    for _ in range(5):
        assert [r["id"] for r in batch(graph_client, items).json()["responses"]] == ["b", "a"]


def test_the_control_api_and_the_helper_switch_batch_shuffling(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """PUT /batch {"shuffle": false} keeps the request order; set_batch_shuffle turns it back."""
    items = twenty_lookups(graph_emulator)
    with control(graph_emulator) as api:
        assert api.get("/batch").json() == {"shuffle": True}
        assert api.put("/batch", json={"shuffle": False}).json() == {"shuffle": False}
        assert api.put("/batch", json={"shuffle": "no"}).status_code == 400
    ordered = [r["id"] for r in batch(graph_client, items).json()["responses"]]
    assert ordered == [str(n) for n in range(20)]
    graph_emulator.set_batch_shuffle(True)
    assert [r["id"] for r in batch(graph_client, items).json()["responses"]] != ordered


def test_the_shuffle_is_reproducible_with_a_fault_seed_and_can_be_off_from_the_start() -> None:
    """Same fault_seed, same order; shuffle_batch=False keeps the request order."""
    orders = []
    for options in ({"fault_seed": 7}, {"fault_seed": 7}, {"shuffle_batch": False}):
        with start_emulator(SAMPLE_DIRECTORY, **options) as emulator:
            headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
            with httpx.Client(base_url=emulator.base_url, headers=headers) as client:
                orders.append(
                    [r["id"] for r in batch(client, twenty_lookups(emulator)).json()["responses"]]
                )
    assert orders[0] == orders[1] != orders[2]
    assert orders[2] == [str(n) for n in range(20)]


def test_the_cli_takes_batch_order_seed_and_write_budget_options() -> None:
    """--no-shuffle-batch, --fault-seed and --writes-per-150s reach start_emulator's options."""
    args = _arguments(
        [
            "--directory",
            "d.json",
            "--no-shuffle-batch",
            "--fault-seed",
            "3",
            "--writes-per-150s",
            "9",
        ]
    )
    assert (args.no_shuffle_batch, args.fault_seed, args.writes_per_150s) == (True, 3, 9)
    assert _arguments(["--directory", "d.json"]).no_shuffle_batch is False
