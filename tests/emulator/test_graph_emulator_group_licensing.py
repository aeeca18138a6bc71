"""Group-based licensing: members/$ref, delayed processing, license states and reprocessing."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from local_stack.graph_emulator import DirectoryFormatError, Emulator, ManualClock, start_emulator
from local_stack.graph_emulator.clock import iso_z
from tests.support.graph import (
    E3_SKU,
    EXCHANGE_STANDARD_SKU,
    JANE_ID,
    JANE_UPN,
    MCOEV_SKU,
    QUOTE_UPN,
    SAMPLE_DIRECTORY,
    TEAMS_SKU,
)

TEAMS_GROUP = "0f4c2d9e-1b7a-4c55-9a0e-3d2b1c4e5f60"
EXCHANGE_GROUP = "2a9d6c3b-5e4f-4a1b-8c7d-6e5f4a3b2c10"
VOICE_GROUP = "7b3e1f2a-9c8d-4e6f-a5b4-c3d2e1f0a9b8"
BUNDLE_GROUP = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
UNLICENSED_GROUP = "d4c3b2a1-f6e5-4d8c-9b0a-1f2e3d4c5b6a"
UNKNOWN_GROUP = "99999999-9999-4999-8999-999999999999"
ALREADY_MEMBER = (
    "One or more added object references already exist for the following modified "
    "properties: 'members'."
)
NOT_FOUND = (
    "Resource '{key}' does not exist or one of its queried reference-property objects are not "
    "present."
)
STATES = {"$select": "id,usageLocation,assignedLicenses,licenseAssignmentStates"}


def licensing_directory(**top_level: Any) -> dict[str, Any]:
    directory = copy.deepcopy(SAMPLE_DIRECTORY)
    for sku in directory["skus"]:
        if sku["skuId"] == TEAMS_SKU:
            sku["prohibitedUsageLocations"] = ["IE"]
    directory["tenantUsageLocation"] = "FR"
    directory["groups"] = [
        {"id": TEAMS_GROUP, "displayName": "Teams users", "licenses": [{"skuId": TEAMS_SKU}]},
        {
            "id": EXCHANGE_GROUP,
            "displayName": "Exchange kiosk",
            "licenses": [{"skuId": EXCHANGE_STANDARD_SKU, "disabledPlans": []}],
        },
        {"id": VOICE_GROUP, "displayName": "Phone system", "licenses": [{"skuId": MCOEV_SKU}]},
        {
            "id": BUNDLE_GROUP,
            "displayName": "Teams and Exchange",
            "licenses": [{"skuId": TEAMS_SKU}, {"skuId": EXCHANGE_STANDARD_SKU}],
        },
        {"id": UNLICENSED_GROUP, "displayName": "No licenses"},
    ]
    directory.update(top_level)
    return directory


@pytest.fixture
def graph_directory() -> dict[str, Any]:
    """The sample tenant with licensed security groups, Teams prohibited in IE, tenant in FR."""
    return licensing_directory()


def add_member(client: httpx.Client, group_id: str, user_id: str) -> httpx.Response:
    reference = f"https://graph.microsoft.com/v1.0/directoryObjects/{user_id}"
    return client.post(f"/groups/{group_id}/members/$ref", json={"@odata.id": reference})


def user_id(emulator: Emulator, key: str) -> str:
    return str(emulator.user_record(key)["id"])


def states(client: httpx.Client, key: str) -> dict[str, Any]:
    response = client.get(f"/users/{key}", params=STATES)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def group_state(client: httpx.Client, key: str, group_id: str, sku_id: str) -> dict[str, Any]:
    found = [
        s
        for s in states(client, key)["licenseAssignmentStates"]
        if s["assignedByGroup"] == group_id and s["skuId"] == sku_id
    ]
    assert len(found) == 1, found
    state: dict[str, Any] = found[0]
    return state


def consumed(emulator: Emulator, sku_id: str) -> int:
    skus = emulator.directory.subscribed_skus()
    return int(next(s["consumedUnits"] for s in skus if s["skuId"] == sku_id))


def held(client: httpx.Client, key: str) -> list[str]:
    return [lic["skuId"] for lic in states(client, key)["assignedLicenses"]]


def control(emulator: Emulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.control_url, timeout=5.0)


# ------------------------------------------------------------ members/$ref


def test_a_member_add_is_204_and_the_license_becomes_active_after_the_delay(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """No state until processed; then Active, error None, one seat taken, in assignedLicenses."""
    seats = consumed(graph_emulator, TEAMS_SKU)
    added_at = graph_clock.now()
    response = add_member(graph_client, TEAMS_GROUP, JANE_ID)
    assert response.status_code == 204
    assert response.content == b""
    assert states(graph_client, JANE_ID)["licenseAssignmentStates"] == []
    graph_clock.advance(2.9)
    assert states(graph_client, JANE_ID)["licenseAssignmentStates"] == []
    assert consumed(graph_emulator, TEAMS_SKU) == seats
    graph_clock.advance(0.1)
    assert group_state(graph_client, JANE_ID, TEAMS_GROUP, TEAMS_SKU) == {
        "assignedByGroup": TEAMS_GROUP,
        "disabledPlans": [],
        "error": "None",
        "lastUpdatedDateTime": iso_z(added_at + 3),
        "skuId": TEAMS_SKU,
        "state": "Active",
    }
    assert held(graph_client, JANE_ID) == [TEAMS_SKU]
    assert consumed(graph_emulator, TEAMS_SKU) == seats + 1


def test_license_assignment_states_are_returned_only_with_select(
    graph_client: httpx.Client,
) -> None:
    """Like Graph: the default property set has no licenseAssignmentStates."""
    assert "licenseAssignmentStates" not in graph_client.get(f"/users/{JANE_ID}").json()
    listed = graph_client.get(
        "/users",
        params={"$filter": "employeeId eq '000123'", "$select": "id,licenseAssignmentStates"},
    )
    assert listed.json()["value"][0]["licenseAssignmentStates"] == []


def test_adding_an_existing_member_is_400_references_already_exist(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """The second add: 400 Request_BadRequest "One or more added object references..."."""
    assert add_member(graph_client, TEAMS_GROUP, JANE_ID).status_code == 204
    again = add_member(graph_client, TEAMS_GROUP, JANE_ID)
    assert again.status_code == 400
    assert again.json()["error"] == {
        **again.json()["error"],
        "code": "Request_BadRequest",
        "message": ALREADY_MEMBER,
    }


def test_an_unknown_group_or_user_is_404_naming_it(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Request_ResourceNotFound names the group, or the user (also one not visible yet)."""
    unknown_group = add_member(graph_client, UNKNOWN_GROUP, JANE_ID)
    assert unknown_group.status_code == 404
    assert unknown_group.json()["error"]["code"] == "Request_ResourceNotFound"
    assert unknown_group.json()["error"]["message"] == NOT_FOUND.format(key=UNKNOWN_GROUP)
    ghost = "12345678-1234-4123-8123-123456789012"
    unknown_user = add_member(graph_client, TEAMS_GROUP, ghost)
    assert unknown_user.status_code == 404
    assert unknown_user.json()["error"]["message"] == NOT_FOUND.format(key=ghost)
    pending = user_id(graph_emulator, "pending@contoso.com")
    assert add_member(graph_client, TEAMS_GROUP, pending).status_code == 404


@pytest.mark.graph_invalid_requests
def test_a_malformed_member_reference_is_400(graph_client: httpx.Client) -> None:
    """No @odata.id, a URL that is not a directory object, or an id that is not a GUID."""
    url = f"/groups/{TEAMS_GROUP}/members/$ref"
    assert graph_client.post(url, json={"id": JANE_ID}).status_code == 400
    assert graph_client.post(url).status_code == 400
    not_an_object = {"@odata.id": "https://graph.microsoft.com/v1.0/groups"}
    assert graph_client.post(url, json=not_an_object).status_code == 400
    not_a_guid = {"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/jane"}
    refused = graph_client.post(url, json=not_a_guid)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_BadRequest"


def test_a_member_add_for_a_user_with_write_lag_is_404_and_adds_nothing(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """writeNotFound covers member adds like every user write; the retry lands."""
    graph_emulator.set_user_lag(JANE_ID, write_not_found=1)
    lagging = add_member(graph_client, TEAMS_GROUP, JANE_ID)
    assert lagging.status_code == 404
    assert lagging.json()["error"]["message"] == NOT_FOUND.format(key=JANE_ID)
    assert graph_emulator.user_record(JANE_ID)["_emulator"]["memberOf"] == []
    assert add_member(graph_client, TEAMS_GROUP, JANE_ID).status_code == 204


def test_a_member_add_by_users_reference_inside_a_batch_works_like_a_direct_one(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """A $batch item POST .../members/$ref with a users/{id} reference is 204 too."""
    item = {
        "id": "1",
        "method": "POST",
        "url": f"/groups/{TEAMS_GROUP}/members/$ref",
        "headers": {"Content-Type": "application/json"},
        "body": {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{JANE_ID}"},
    }
    response = graph_client.post("/$batch", json={"requests": [item]})
    assert response.json()["responses"][0]["status"] == 204
    graph_clock.advance(3)
    assert group_state(graph_client, JANE_ID, TEAMS_GROUP, TEAMS_SKU)["state"] == "Active"


# ------------------------------------------------------------ processing rules


def test_a_count_violation_waits_for_reprocess_after_seats_are_added(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """No seat: Error CountViolation, no seat taken, no retry; reprocess after seats: Active."""
    graph_emulator.set_seats("EXCHANGESTANDARD", consumedUnits=2)
    assert add_member(graph_client, EXCHANGE_GROUP, JANE_ID).status_code == 204
    graph_clock.advance(3)
    failed = group_state(graph_client, JANE_ID, EXCHANGE_GROUP, EXCHANGE_STANDARD_SKU)
    assert (failed["state"], failed["error"]) == ("Error", "CountViolation")
    assert EXCHANGE_STANDARD_SKU not in held(graph_client, JANE_ID)
    assert consumed(graph_emulator, EXCHANGE_STANDARD_SKU) == 2
    graph_emulator.set_seats("EXCHANGESTANDARD", enabled=3)
    graph_clock.advance(3600)  # Entra does not retry on its own
    still = group_state(graph_client, JANE_ID, EXCHANGE_GROUP, EXCHANGE_STANDARD_SKU)
    assert still["error"] == "CountViolation"
    reprocessed = graph_client.post(f"/users/{JANE_ID}/reprocessLicenseAssignment")
    assert reprocessed.status_code == 200
    assert reprocessed.json()["id"] == JANE_ID
    assert reprocessed.json()["assignedLicenses"] == []
    graph_clock.advance(2)
    pending = group_state(graph_client, JANE_ID, EXCHANGE_GROUP, EXCHANGE_STANDARD_SKU)
    assert pending["error"] == "CountViolation"  # until the processing is due
    graph_clock.advance(1)
    active = group_state(graph_client, JANE_ID, EXCHANGE_GROUP, EXCHANGE_STANDARD_SKU)
    assert (active["state"], active["error"]) == ("Active", "None")
    assert consumed(graph_emulator, EXCHANGE_STANDARD_SKU) == 3


def test_a_plan_that_cannot_stack_is_a_mutually_exclusive_violation(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """E3's Exchange Enterprise held directly, then a group with Exchange Standard: Error."""
    e3 = {"addLicenses": [{"skuId": E3_SKU, "disabledPlans": []}], "removeLicenses": []}
    assert graph_client.post(f"/users/{JANE_ID}/assignLicense", json=e3).status_code == 200
    seats = consumed(graph_emulator, EXCHANGE_STANDARD_SKU)
    add_member(graph_client, EXCHANGE_GROUP, JANE_ID)
    graph_clock.advance(3)
    state = group_state(graph_client, JANE_ID, EXCHANGE_GROUP, EXCHANGE_STANDARD_SKU)
    assert (state["state"], state["error"]) == ("Error", "MutuallyExclusiveViolation")
    assert consumed(graph_emulator, EXCHANGE_STANDARD_SKU) == seats
    assert held(graph_client, JANE_ID) == [E3_SKU]


def test_a_plan_without_its_prerequisite_is_a_dependency_violation(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """MCOEV needs TEAMS1 or MCOSTANDARD: Error, then Active once Teams is held and reprocessed."""
    alice = user_id(graph_emulator, "alice@contoso.com")
    add_member(graph_client, VOICE_GROUP, alice)
    graph_clock.advance(3)
    state = group_state(graph_client, alice, VOICE_GROUP, MCOEV_SKU)
    assert (state["state"], state["error"]) == ("Error", "DependencyViolation")
    teams = {"addLicenses": [{"skuId": TEAMS_SKU, "disabledPlans": []}], "removeLicenses": []}
    assert graph_client.post(f"/users/{alice}/assignLicense", json=teams).status_code == 200
    assert graph_client.post(f"/users/{alice}/reprocessLicenseAssignment").status_code == 200
    graph_clock.advance(3)
    assert group_state(graph_client, alice, VOICE_GROUP, MCOEV_SKU)["state"] == "Active"
    assert sorted(held(graph_client, alice)) == sorted([TEAMS_SKU, MCOEV_SKU])


def test_a_prohibited_usage_location_is_a_prohibited_in_usage_location_violation(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """Teams prohibited in IE: a member whose usageLocation is IE gets Error, no seat."""
    seats = consumed(graph_emulator, TEAMS_SKU)
    irish = user_id(graph_emulator, QUOTE_UPN)
    add_member(graph_client, TEAMS_GROUP, irish)
    graph_clock.advance(3)
    state = group_state(graph_client, irish, TEAMS_GROUP, TEAMS_SKU)
    assert (state["state"], state["error"]) == ("Error", "ProhibitedInUsageLocationViolation")
    assert consumed(graph_emulator, TEAMS_SKU) == seats


def test_a_user_without_a_usage_location_gets_the_tenants_for_group_licensing(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """tenantUsageLocation FR: the license is Active and the user's usageLocation is FR."""
    nolocation = user_id(graph_emulator, "nolocation@contoso.com")
    assert states(graph_client, nolocation)["usageLocation"] is None
    add_member(graph_client, TEAMS_GROUP, nolocation)
    graph_clock.advance(3)
    assert group_state(graph_client, nolocation, TEAMS_GROUP, TEAMS_SKU)["state"] == "Active"
    assert states(graph_client, nolocation)["usageLocation"] == "FR"


def test_a_tenant_location_that_the_sku_prohibits_is_a_violation_too(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """The inherited location is checked like the user's own (tenant in IE, Teams not there)."""
    graph_emulator.set_tenant_usage_location("IE")
    nolocation = user_id(graph_emulator, "nolocation@contoso.com")
    add_member(graph_client, TEAMS_GROUP, nolocation)
    graph_clock.advance(3)
    state = group_state(graph_client, nolocation, TEAMS_GROUP, TEAMS_SKU)
    assert state["error"] == "ProhibitedInUsageLocationViolation"


def test_a_user_holding_the_sku_directly_keeps_one_seat(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """Direct and group assignments of one SKU: two states, one assignedLicenses entry, one seat."""
    teams = {"addLicenses": [{"skuId": TEAMS_SKU, "disabledPlans": []}], "removeLicenses": []}
    graph_client.post(f"/users/{JANE_ID}/assignLicense", json=teams)
    seats = consumed(graph_emulator, TEAMS_SKU)
    add_member(graph_client, TEAMS_GROUP, JANE_ID)
    graph_clock.advance(3)
    body = states(graph_client, JANE_ID)
    assert [(s["assignedByGroup"], s["state"]) for s in body["licenseAssignmentStates"]] == [
        (None, "Active"),
        (TEAMS_GROUP, "Active"),
    ]
    assert held(graph_client, JANE_ID) == [TEAMS_SKU]
    assert consumed(graph_emulator, TEAMS_SKU) == seats
    removal = {"addLicenses": [], "removeLicenses": [TEAMS_SKU]}
    assert graph_client.post(f"/users/{JANE_ID}/assignLicense", json=removal).status_code == 200
    assert held(graph_client, JANE_ID) == [TEAMS_SKU]  # the group still gives it
    assert consumed(graph_emulator, TEAMS_SKU) == seats


def test_a_group_license_cannot_be_removed_directly(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """assignLicense removing an inherited license: 400 "...inherited from a group membership"."""
    add_member(graph_client, TEAMS_GROUP, JANE_ID)
    graph_clock.advance(3)
    removal = {"addLicenses": [], "removeLicenses": [TEAMS_SKU]}
    refused = graph_client.post(f"/users/{JANE_ID}/assignLicense", json=removal)
    assert refused.status_code == 400
    assert "inherited from a group membership" in refused.json()["error"]["message"]


def test_one_failing_license_keeps_the_groups_other_licenses_from_the_user(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """Teams + Exchange Standard without an Exchange seat: both Error, no seat of either taken."""
    graph_emulator.set_seats("EXCHANGESTANDARD", enabled=0)
    teams_seats = consumed(graph_emulator, TEAMS_SKU)
    add_member(graph_client, BUNDLE_GROUP, JANE_ID)
    graph_clock.advance(3)
    exchange = group_state(graph_client, JANE_ID, BUNDLE_GROUP, EXCHANGE_STANDARD_SKU)
    teams = group_state(graph_client, JANE_ID, BUNDLE_GROUP, TEAMS_SKU)
    assert (exchange["state"], exchange["error"]) == ("Error", "CountViolation")
    assert (teams["state"], teams["error"]) == ("Error", "Other")
    assert consumed(graph_emulator, TEAMS_SKU) == teams_seats
    assert held(graph_client, JANE_ID) == []


def test_a_group_without_licenses_takes_members_and_changes_no_license(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """Membership only: 204, nothing pending, no states."""
    assert add_member(graph_client, UNLICENSED_GROUP, JANE_ID).status_code == 204
    record = graph_emulator.user_record(JANE_ID)["_emulator"]
    assert record["memberOf"] == [UNLICENSED_GROUP]
    assert record["pendingLicenseProcessing"] == []


def test_reprocessing_a_user_in_no_licensed_group_is_200_and_changes_nothing(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """POST reprocessLicenseAssignment (no body) answers the user; a lagging user is 404."""
    response = graph_client.post(f"/users/{JANE_ID}/reprocessLicenseAssignment")
    assert response.status_code == 200
    assert response.json()["userPrincipalName"] == JANE_UPN
    graph_emulator.set_user_lag(JANE_ID, write_not_found=1)
    assert graph_client.post(f"/users/{JANE_ID}/reprocessLicenseAssignment").status_code == 404


# ------------------------------------------------------------- file and control


FILE_MEMBERS = licensing_directory(
    groups=[
        {
            "id": TEAMS_GROUP,
            "displayName": "Teams users",
            "licenses": [{"skuId": TEAMS_SKU}],
            "members": [JANE_ID, "alice@contoso.com"],
        }
    ]
)


@pytest.mark.parametrize("graph_emulator", [FILE_MEMBERS], indirect=True)
def test_the_files_memberships_are_processed_at_start(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Members listed in the file hold the group's licenses from the start, with seats."""
    assert group_state(graph_client, JANE_ID, TEAMS_GROUP, TEAMS_SKU)["state"] == "Active"
    assert consumed(graph_emulator, TEAMS_SKU) == 2
    group = graph_emulator.group_record(TEAMS_GROUP)
    assert group["members"] == [JANE_ID, user_id(graph_emulator, "alice@contoso.com")]


def test_the_control_api_adds_groups_sets_licenses_and_delay_and_reads_states(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """POST /groups, PUT /groups/{id}/licenses, PUT /licensing, GET .../licenseAssignmentStates."""
    new_group = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
    with control(graph_emulator) as api:
        assert api.get("/licensing").json() == {
            "groupLicenseDelaySeconds": 3,
            "tenantUsageLocation": "FR",
        }
        assert api.put("/licensing", json={"groupLicenseDelaySeconds": 10}).status_code == 200
        created = api.post("/groups", json={"id": new_group, "displayName": "Later licensed"})
        assert created.status_code == 201
        assert created.json()["licenses"] == []
        assert add_member(graph_client, new_group, JANE_ID).status_code == 204
        licensed = api.put(
            f"/groups/{new_group}/licenses", json={"licenses": [{"skuId": TEAMS_SKU}]}
        )
        assert licensed.json()["pendingLicenseProcessing"] == [
            {"userId": JANE_ID, "dueAt": iso_z(graph_clock.now() + 10)}
        ]
        record = api.get(f"/users/{JANE_ID}").json()["_emulator"]
        assert record["memberOf"] == [new_group]
        assert len(record["pendingLicenseProcessing"]) == 1
        graph_clock.advance(10)
        found = api.get(f"/users/{JANE_ID}/licenseAssignmentStates").json()
        assert [(s["assignedByGroup"], s["state"]) for s in found] == [(new_group, "Active")]
        assert api.get(f"/groups/{new_group}").json()["pendingLicenseProcessing"] == []
        assert api.put(f"/groups/{new_group}/licenses", json={"licenses": []}).status_code == 200
        assert api.get(f"/users/{JANE_ID}/licenseAssignmentStates").json() == []
        assert api.put("/licensing", json={"groupLicenseDelaySeconds": -1}).status_code == 400
        assert api.put("/licensing", json={"tenantUsageLocation": "France"}).status_code == 400
        assert api.get(f"/groups/{UNKNOWN_GROUP}").status_code == 404
        bad_sku = {"licenses": [{"skuId": UNKNOWN_GROUP}]}
        assert api.put(f"/groups/{new_group}/licenses", json=bad_sku).status_code == 400
    assert graph_emulator.license_states(JANE_ID) == []


def test_the_in_process_helpers_manage_groups_and_the_delay(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """add_group, set_group_licenses, set_group_license_delay and license_states."""
    graph_emulator.set_group_license_delay(0)
    group = graph_emulator.add_group(
        {"displayName": "Helpers", "licenses": [{"skuId": TEAMS_SKU}], "members": [JANE_UPN]}
    )
    assert graph_emulator.license_states(JANE_ID)[0]["state"] == "Active"
    graph_emulator.set_group_licenses(group["id"], [{"skuId": TEAMS_SKU}, {"skuId": E3_SKU}])
    assert {s["skuId"] for s in graph_emulator.license_states(JANE_ID)} == {TEAMS_SKU, E3_SKU}
    assert graph_emulator.group_record(group["id"])["displayName"] == "Helpers"


@pytest.mark.parametrize(
    ("groups", "match"),
    [
        ([{"licenses": [{"skuId": UNKNOWN_GROUP}]}], "not one of the tenant's SKUs"),
        ([{"securityEnabled": False, "licenses": [{"skuId": TEAMS_SKU}]}], "security groups"),
        ([{"members": ["ghost@contoso.com"]}], "member"),
        ([{"licenses": [{"skuId": TEAMS_SKU, "disabledPlans": [E3_SKU]}]}], "not part of"),
        ([{"id": TEAMS_GROUP}, {"id": TEAMS_GROUP}], "duplicate group"),
        ([{"owners": []}], "unknown keys"),
    ],
)
def test_groups_in_the_directory_file_are_validated(groups: list[Any], match: str) -> None:
    """Unknown SKUs or plans, licensed non-security groups, unknown members: a format error."""
    with pytest.raises(DirectoryFormatError, match=match):
        start_emulator(licensing_directory(groups=groups))


def test_licensing_settings_in_the_file_are_validated() -> None:
    """tenantUsageLocation is two upper-case letters; the delay and prohibited list are checked."""
    with pytest.raises(DirectoryFormatError, match="tenantUsageLocation"):
        start_emulator(licensing_directory(tenantUsageLocation="fr"))
    with pytest.raises(DirectoryFormatError, match="groupLicenseDelaySeconds"):
        start_emulator(licensing_directory(groupLicenseDelaySeconds="3s"))
    directory = licensing_directory()
    directory["skus"][0]["prohibitedUsageLocations"] = ["Ireland"]
    with pytest.raises(DirectoryFormatError, match="prohibitedUsageLocations"):
        start_emulator(directory)
