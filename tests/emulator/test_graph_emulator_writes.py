"""Writes: PATCH usageLocation and assignLicense with Graph's seat and plan rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from local_stack.graph_emulator import Emulator
from tests.support.graph import (
    E3_SKU,
    EXCHANGE_ENTERPRISE_PLAN,
    EXCHANGE_STANDARD_SKU,
    JANE_ID,
    MCOEV_PLAN,
    MCOEV_SKU,
    MCOSTANDARD_PLAN,
    TEAMS_SKU,
)

UNKNOWN_SKU = "11111111-2222-3333-4444-555555555555"


def assign(
    client: httpx.Client,
    user: str,
    add: list[dict[str, Any]],
    remove: list[str] | None = None,
) -> httpx.Response:
    return client.post(
        f"/users/{user}/assignLicense",
        json={"addLicenses": add, "removeLicenses": remove if remove is not None else []},
    )


def consumed(client: httpx.Client, sku_id: str) -> int:
    skus = client.get("/subscribedSkus", params={"$select": "skuId,consumedUnits"}).json()
    return int(next(s["consumedUnits"] for s in skus["value"] if s["skuId"] == sku_id))


def licenses(client: httpx.Client, user: str) -> list[dict[str, Any]]:
    body = client.get(f"/users/{user}", params={"$select": "assignedLicenses"}).json()
    return list(body["assignedLicenses"])


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


# -------------------------------------------------------------------- PATCH


def test_patch_usage_location_is_204_and_visible(graph_client: httpx.Client) -> None:
    """A valid usageLocation is stored; Graph answers 204 with no body."""
    response = graph_client.patch("/users/nolocation@contoso.com", json={"usageLocation": "BE"})
    assert response.status_code == 204
    assert response.content == b""
    body = graph_client.get(
        "/users/nolocation@contoso.com", params={"$select": "usageLocation"}
    ).json()
    assert body["usageLocation"] == "BE"


@pytest.mark.graph_invalid_requests
@pytest.mark.parametrize("value", ["fr", "FRA", "", None, 33])
def test_patch_refuses_a_malformed_usage_location(graph_client: httpx.Client, value: Any) -> None:
    """usageLocation must be a two-letter upper-case code."""
    response = graph_client.patch(f"/users/{JANE_ID}", json={"usageLocation": value})
    assert error_of(response)[:2] == (400, "Request_BadRequest")


def test_patch_of_an_unknown_user_is_404(graph_client: httpx.Client) -> None:
    """Writes to a user that does not exist yet get the same 404 as reads."""
    response = graph_client.patch("/users/ghost@contoso.com", json={"usageLocation": "FR"})
    assert error_of(response)[:2] == (404, "Request_ResourceNotFound")


def test_patch_of_ad_mastered_properties_on_a_synced_user_is_refused(
    graph_client: httpx.Client,
) -> None:
    """A synced user's AD-sourced properties cannot be changed through Graph."""
    response = graph_client.patch(f"/users/{JANE_ID}", json={"displayName": "Jane D."})
    status, _, message = error_of(response)
    assert status == 400
    assert "on-premises mastered Directory Sync objects" in message


@pytest.mark.graph_invalid_requests
def test_patch_with_a_body_that_is_not_json_is_400(graph_client: httpx.Client) -> None:
    """A body Graph cannot parse is BadRequest, and nothing changes."""
    response = graph_client.patch(
        f"/users/{JANE_ID}",
        content=b"{usageLocation: FR",
        headers={"Content-Type": "application/json"},
    )
    assert error_of(response)[:2] == (400, "BadRequest")


# ------------------------------------------------------------ assignLicense


def test_assign_license_returns_the_user_and_takes_a_seat(graph_client: httpx.Client) -> None:
    """A successful assignment answers 200 with the user and consumes one seat."""
    response = assign(graph_client, JANE_ID, [{"skuId": E3_SKU, "disabledPlans": []}])
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == JANE_ID
    assert body["assignedLicenses"] == [{"disabledPlans": [], "skuId": E3_SKU}]
    assert body["@odata.context"].endswith("$metadata#users/$entity")
    assert consumed(graph_client, E3_SKU) == 2  # grouped@contoso.com holds one already


def test_reassigning_a_sku_uses_no_second_seat_and_replaces_disabled_plans(
    graph_client: httpx.Client,
) -> None:
    """Assigning a held SKU again only updates its disabledPlans."""
    assign(graph_client, JANE_ID, [{"skuId": E3_SKU, "disabledPlans": []}])
    again = assign(graph_client, JANE_ID, [{"skuId": E3_SKU, "disabledPlans": [MCOSTANDARD_PLAN]}])
    assert again.status_code == 200
    assert licenses(graph_client, JANE_ID) == [
        {"disabledPlans": [MCOSTANDARD_PLAN], "skuId": E3_SKU}
    ]
    assert consumed(graph_client, E3_SKU) == 2


def test_removing_a_license_frees_its_seat(graph_client: httpx.Client) -> None:
    """removeLicenses gives the seat back."""
    assign(graph_client, JANE_ID, [{"skuId": TEAMS_SKU, "disabledPlans": []}])
    assert consumed(graph_client, TEAMS_SKU) == 1
    assert assign(graph_client, JANE_ID, [], [TEAMS_SKU]).status_code == 200
    assert consumed(graph_client, TEAMS_SKU) == 0
    assert licenses(graph_client, JANE_ID) == []


def test_group_licenses_show_in_assigned_licenses(graph_client: httpx.Client) -> None:
    """Inherited licenses appear in assignedLicenses and count as seats."""
    assert licenses(graph_client, "grouped@contoso.com") == [{"disabledPlans": [], "skuId": E3_SKU}]
    assert consumed(graph_client, E3_SKU) == 1


def test_a_group_license_cannot_be_removed_directly(graph_client: httpx.Client) -> None:
    """Only the group can take an inherited license away."""
    response = assign(graph_client, "grouped@contoso.com", [], [E3_SKU])
    status, code, message = error_of(response)
    assert (status, code) == (400, "Request_BadRequest")
    assert "inherited from a group" in message


@pytest.mark.graph_invalid_requests
@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"addLicenses": [{"skuId": TEAMS_SKU, "disabledPlans": []}]}, "removeLicenses"),
        ({"removeLicenses": []}, "addLicenses"),
        ({}, "addLicenses, removeLicenses"),
    ],
)
def test_assign_license_needs_both_arrays(
    graph_client: httpx.Client, body: dict[str, Any], missing: str
) -> None:
    """Omitting either array is Graph's 'missing parameters' 400 (msgraph-sdk's pitfall)."""
    response = graph_client.post(f"/users/{JANE_ID}/assignLicense", json=body)
    assert error_of(response) == (
        400,
        "Request_BadRequest",
        "One or more parameters of the operation 'assignLicense' are missing from the request "
        f"payload. The missing parameters are: {missing}.",
    )
    assert licenses(graph_client, JANE_ID) == []


def test_assign_license_without_usage_location_is_refused(graph_client: httpx.Client) -> None:
    """A user without usageLocation cannot get licenses."""
    response = assign(
        graph_client, "nolocation@contoso.com", [{"skuId": TEAMS_SKU, "disabledPlans": []}]
    )
    assert error_of(response) == (
        400,
        "Request_BadRequest",
        "License assignment cannot be done for user with invalid usage location.",
    )


def test_assign_license_of_an_unknown_sku_is_refused(graph_client: httpx.Client) -> None:
    """A skuId the tenant does not own is named in the error."""
    response = assign(graph_client, JANE_ID, [{"skuId": UNKNOWN_SKU, "disabledPlans": []}])
    assert error_of(response) == (
        400,
        "Request_BadRequest",
        f"License {UNKNOWN_SKU} does not correspond to a valid company License.",
    )


def test_assign_license_without_free_seats_is_refused(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """No free seat for a SKU the user lacks: Graph's 'no available licenses' 400."""
    graph_emulator.set_seats("Microsoft_Teams_Enterprise_New", enabled=3, consumedUnits=3)
    response = assign(graph_client, JANE_ID, [{"skuId": TEAMS_SKU, "disabledPlans": []}])
    assert error_of(response) == (
        400,
        "Request_BadRequest",
        f"Subscription {TEAMS_SKU} does not have any available licenses.",
    )
    assert consumed(graph_client, TEAMS_SKU) == 3


def test_seats_run_out_once_the_last_one_is_taken(graph_client: httpx.Client) -> None:
    """Two seats, three users: the third gets 'no available licenses'."""
    first = assign(graph_client, JANE_ID, [{"skuId": EXCHANGE_STANDARD_SKU, "disabledPlans": []}])
    second = assign(
        graph_client, "alice@contoso.com", [{"skuId": EXCHANGE_STANDARD_SKU, "disabledPlans": []}]
    )
    third = assign(
        graph_client, "$admin@contoso.com", [{"skuId": EXCHANGE_STANDARD_SKU, "disabledPlans": []}]
    )
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 400]
    assert "does not have any available licenses" in third.json()["error"]["message"]


def test_mutually_exclusive_plans_are_refused(graph_client: httpx.Client) -> None:
    """Exchange Plan 1 next to E3's Exchange is a conflict; nothing is assigned."""
    response = assign(
        graph_client,
        JANE_ID,
        [
            {"skuId": E3_SKU, "disabledPlans": []},
            {"skuId": EXCHANGE_STANDARD_SKU, "disabledPlans": []},
        ],
    )
    status, code, message = error_of(response)
    assert (status, code) == (400, "Request_BadRequest")
    assert "are mutually exclusive" in message
    assert licenses(graph_client, JANE_ID) == []
    assert consumed(graph_client, E3_SKU) == 1


def test_disabling_the_conflicting_plan_resolves_the_conflict(graph_client: httpx.Client) -> None:
    """With E3's Exchange disabled, Exchange Plan 1 can be added."""
    response = assign(
        graph_client,
        JANE_ID,
        [
            {"skuId": E3_SKU, "disabledPlans": [EXCHANGE_ENTERPRISE_PLAN]},
            {"skuId": EXCHANGE_STANDARD_SKU, "disabledPlans": []},
        ],
    )
    assert response.status_code == 200


def test_a_plan_without_its_prerequisite_is_refused(graph_client: httpx.Client) -> None:
    """MCOEV alone lacks a Teams plan: 'depends on the service plan(s)'."""
    response = assign(graph_client, JANE_ID, [{"skuId": MCOEV_SKU, "disabledPlans": []}])
    status, code, message = error_of(response)
    assert (status, code) == (400, "Request_BadRequest")
    assert message == (
        "The service plan MCOEV depends on the service plan(s) TEAMS1, MCOSTANDARD which are "
        "not enabled on the user."
    )
    assert consumed(graph_client, MCOEV_SKU) == 0


def test_a_prerequisite_in_the_same_call_satisfies_the_rule(graph_client: httpx.Client) -> None:
    """MCOEV with a Teams license in one call is accepted and takes both seats."""
    response = assign(
        graph_client,
        JANE_ID,
        [{"skuId": TEAMS_SKU, "disabledPlans": []}, {"skuId": MCOEV_SKU, "disabledPlans": []}],
    )
    assert response.status_code == 200
    assert (consumed(graph_client, TEAMS_SKU), consumed(graph_client, MCOEV_SKU)) == (1, 1)


def test_removing_the_prerequisite_of_an_assigned_plan_is_refused(
    graph_client: httpx.Client,
) -> None:
    """Taking Teams away from a user with MCOEV would strand MCOEV."""
    assign(
        graph_client,
        JANE_ID,
        [{"skuId": TEAMS_SKU, "disabledPlans": []}, {"skuId": MCOEV_SKU, "disabledPlans": []}],
    )
    response = assign(graph_client, JANE_ID, [], [TEAMS_SKU])
    assert "depends on the service plan(s)" in response.json()["error"]["message"]


def test_a_disabled_plan_of_another_sku_is_refused(graph_client: httpx.Client) -> None:
    """disabledPlans may only name plans of that SKU."""
    response = assign(graph_client, JANE_ID, [{"skuId": TEAMS_SKU, "disabledPlans": [MCOEV_PLAN]}])
    assert error_of(response)[:2] == (400, "Request_BadRequest")
    assert licenses(graph_client, JANE_ID) == []


def test_a_failed_assignment_changes_nothing(graph_client: httpx.Client) -> None:
    """All-or-nothing: a valid addition next to an invalid one is not applied."""
    response = assign(
        graph_client,
        JANE_ID,
        [{"skuId": TEAMS_SKU, "disabledPlans": []}, {"skuId": UNKNOWN_SKU, "disabledPlans": []}],
    )
    assert response.status_code == 400
    assert licenses(graph_client, JANE_ID) == []
    assert consumed(graph_client, TEAMS_SKU) == 0
