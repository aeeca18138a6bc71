"""Teams Phone in the Graph emulator: readiness, the number inventory and assignNumber orders.

Every exchange is checked against the OpenAPI excerpt by the `graph_emulator` fixture.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.microsoft_graph_teams_administration_assign_number.assign_number_post_request_body import (  # noqa: E501
    AssignNumberPostRequestBody,
)
from msgraph.generated.models.teams_administration.number_type import NumberType
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory

from local_stack.graph_emulator import (
    DEFAULT_TOKEN,
    DirectoryFormatError,
    Emulator,
    ManualClock,
    start_emulator,
)
from local_stack.graph_emulator import teams_orders as teams_rules
from local_stack.graph_emulator.openapi_check import check_exchange
from shared.domain.teams import (
    INCLUDE_UNKNOWN_ENUM_MEMBERS,
    PHONE_SYSTEM_FEATURE,
    AccountType,
    OperationStatus,
)
from tests.support.graph import JANE_ID, JANE_UPN, MCOEV_SKU, SAMPLE_DIRECTORY, TEAMS_SKU

TENANT = "00000000-0000-0000-0000-000000000001"
SAMPLE_TENANT = Path(__file__).resolve().parents[2] / "local_stack" / "samples" / "directory.json"
ALICE = "alice@contoso.com"
SKY_ID = "3f1d2c4b-5a6e-4f70-8192-a3b4c5d6e7f8"
OWNER_ID = "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9"
CALLING_PLAN_SKU = "0dab259f-bf13-4952-b7f8-7db8f131b28d"
FREE = "+33155550100"  # Operator Connect, unassigned
TAKEN = "+33155550101"  # Operator Connect, assigned to OWNER_ID
PLAN_NUMBER = "+33155550102"  # Calling Plan, unassigned
SERVICE = "+33155550103"  # Operator Connect, conference only
DELAY = 60
NUMBERS = "/admin/teams/telephoneNumberManagement/numberAssignments"
ASSIGN = NUMBERS + "/assignNumber"
VOICE = {"addLicenses": [{"skuId": TEAMS_SKU}, {"skuId": MCOEV_SKU}], "removeLicenses": []}


def teams_directory() -> dict[str, Any]:
    directory = copy.deepcopy(SAMPLE_DIRECTORY)
    directory["skus"].append(
        {
            "skuId": CALLING_PLAN_SKU,
            "skuPartNumber": "MCOPSTN1",
            "enabled": 5,
            "servicePlans": [
                {
                    "servicePlanId": "4ed3ff63-69d7-4fb7-b984-5aec7f605ca8",
                    "servicePlanName": "MCOPSTN1",
                }
            ],
        }
    )
    licensed = [{"skuId": TEAMS_SKU}, {"skuId": MCOEV_SKU}]
    directory["users"] += [
        {
            "id": SKY_ID,
            "userPrincipalName": "sky@contoso.com",
            "usageLocation": "FR",
            "assignedLicenses": licensed,
        },
        {
            "id": OWNER_ID,
            "userPrincipalName": "owner@contoso.com",
            "usageLocation": "FR",
            "assignedLicenses": licensed,
        },
    ]
    for user in directory["users"]:
        if user["userPrincipalName"] == ALICE:
            user["assignedLicenses"] = [{"skuId": TEAMS_SKU}]
    directory["teams"] = {
        "provisioningDelaySeconds": DELAY,
        "moveDelaySeconds": 30,
        "operationStartSeconds": 1,
        "operationRunSeconds": 2,
        "users": [{"user": "sky@contoso.com", "accountType": "sfbOnPremUser"}],
        "numberAssignments": [
            {"telephoneNumber": FREE, "numberType": "operatorConnect", "isoCountryCode": "FR"},
            {
                "telephoneNumber": TAKEN,
                "numberType": "operatorConnect",
                "assignmentTargetId": OWNER_ID,
            },
            {"telephoneNumber": PLAN_NUMBER, "numberType": "callingPlan"},
            {
                "telephoneNumber": SERVICE,
                "numberType": "operatorConnect",
                "capabilities": ["conferenceAssignment"],
            },
        ],
    }
    return directory


@pytest.fixture
def graph_directory() -> dict[str, Any]:
    """The sample tenant with Teams: an sfbOnPremUser, a number owner and an inventory."""
    return teams_directory()


def config(client: httpx.Client, user_id: str, **headers: str) -> httpx.Response:
    return client.get(f"/admin/teams/userConfigurations/{user_id}", headers=headers)


def make_ready(client: httpx.Client, clock: ManualClock, user: str = JANE_ID) -> None:
    """Teams and Phone System licenses on the user, and the time Teams needs to see them."""
    assert client.post(f"/users/{user}/assignLicense", json=VOICE).status_code == 200
    clock.advance(DELAY)


def order(
    client: httpx.Client, number: str, number_type: str, user: str = JANE_ID, **extra: Any
) -> str:
    """Place an assignNumber order; the operation URL from Location."""
    body = {"telephoneNumber": number, "assignmentTargetId": user, "numberType": number_type}
    response = client.post(ASSIGN, json={**body, **extra})
    assert response.status_code == 202, response.text
    assert response.content == b""
    return response.headers["Location"]


def finished(client: httpx.Client, clock: ManualClock, location: str) -> dict[str, Any]:
    clock.advance(3)
    body: dict[str, Any] = client.get(location).json()
    return body


def number(client: httpx.Client, telephone_number: str) -> dict[str, Any]:
    response = client.get(NUMBERS, params={"$filter": f"telephoneNumber eq '{telephone_number}'"})
    assert response.status_code == 200
    (record,) = response.json()["value"]
    return dict(record)


# ------------------------------------------------------------------ readiness


def test_a_user_has_no_teams_configuration_until_teams_sees_the_phone_system_plan(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """404 NotFound before and for provisioningDelaySeconds after the plans, then a Teams user."""
    before = config(graph_client, JANE_ID)
    assert before.status_code == 404
    assert before.json()["error"]["code"] == "NotFound"
    assert graph_client.post(f"/users/{JANE_ID}/assignLicense", json=VOICE).status_code == 200
    graph_clock.advance(DELAY - 1)
    assert config(graph_client, JANE_ID).status_code == 404
    graph_clock.advance(1)
    ready = config(graph_client, JANE_ID)
    assert ready.status_code == 200
    body = ready.json()
    assert body["id"] == JANE_ID
    assert body["userPrincipalName"] == JANE_UPN
    assert body["tenantId"] == TENANT
    assert body["accountType"] == AccountType.USER
    assert body["featureTypes"] == ["Teams", "PhoneSystem"]
    assert body["isEnterpriseVoiceEnabled"] is False
    assert body["telephoneNumbers"] == []


def test_phone_system_joins_feature_types_only_after_its_own_delay(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """A Teams user already known gains 'PhoneSystem' a delay after MCOEV, not before."""
    alice_id = user_id_of(graph_client, ALICE)
    alice = config(graph_client, alice_id).json()
    assert alice["featureTypes"] == ["Teams"]
    add = {"addLicenses": [{"skuId": MCOEV_SKU}], "removeLicenses": []}
    assert graph_client.post(f"/users/{alice_id}/assignLicense", json=add).status_code == 200
    graph_clock.advance(DELAY - 1)
    assert PHONE_SYSTEM_FEATURE not in config(graph_client, alice_id).json()["featureTypes"]
    graph_clock.advance(1)
    after = config(graph_client, alice_id).json()
    assert after["featureTypes"] == ["Teams", str(PHONE_SYSTEM_FEATURE)]
    assert after["modifiedDateTime"] > alice["modifiedDateTime"]
    assert after["createdDateTime"] == alice["createdDateTime"]


def user_id_of(client: httpx.Client, upn: str) -> str:
    return str(client.get(f"/users/{upn}").json()["id"])


def test_a_phone_system_license_from_a_group_reaches_teams_the_same_way(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """Group licensing first (its own delay), then Teams' delay from the license's arrival."""
    group = graph_emulator.add_group(
        {"displayName": "Voice", "licenses": [{"skuId": TEAMS_SKU}, {"skuId": MCOEV_SKU}]}
    )
    reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{JANE_ID}"}
    assert (
        graph_client.post(f"/groups/{group['id']}/members/$ref", json=reference).status_code == 204
    )
    graph_clock.advance(3 + DELAY - 1)  # groupLicenseDelaySeconds is 3 by default
    assert config(graph_client, JANE_ID).status_code == 404
    graph_clock.advance(1)
    assert config(graph_client, JANE_ID).json()["featureTypes"] == ["Teams", "PhoneSystem"]


def test_a_user_can_have_a_provisioning_delay_of_its_own(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """A per-user delay beats the default."""
    graph_emulator.add_teams_user(JANE_UPN, provisioning_delay_seconds=5)
    assert graph_client.post(f"/users/{JANE_ID}/assignLicense", json=VOICE).status_code == 200
    graph_clock.advance(5)
    assert config(graph_client, JANE_ID).json()["featureTypes"] == ["Teams", "PhoneSystem"]
    record = graph_emulator.teams_user(JANE_ID)
    assert record["_emulator"]["provisioningDelaySeconds"] == 5


def test_a_user_known_to_teams_without_teams_plans_is_ineligible_behind_the_prefer_header(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """Licenses removed: unknownFutureValue, or ineligibleUser with include-unknown-enum-members."""
    make_ready(graph_client, graph_clock)
    assert config(graph_client, JANE_ID).status_code == 200
    remove = {"addLicenses": [], "removeLicenses": [TEAMS_SKU, MCOEV_SKU]}
    assert graph_client.post(f"/users/{JANE_ID}/assignLicense", json=remove).status_code == 200
    hidden = config(graph_client, JANE_ID).json()
    assert hidden["accountType"] == AccountType.UNKNOWN_FUTURE_VALUE
    assert hidden["featureTypes"] == []
    shown = config(graph_client, JANE_ID, Prefer=INCLUDE_UNKNOWN_ENUM_MEMBERS).json()
    assert shown["accountType"] == AccountType.INELIGIBLE_USER


def test_an_sfb_on_prem_user_stays_so_until_moved_and_the_move_takes_its_delay(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """sfbOnPremUser (with its licensed features), moved over the control API, then user."""
    sky = config(graph_client, SKY_ID).json()
    assert sky["accountType"] == AccountType.SFB_ON_PREM_USER
    assert PHONE_SYSTEM_FEATURE in sky["featureTypes"]
    control = graph_client.base_url.copy_with(path="/_emulator/teams/users/sky@contoso.com/move")
    moved = graph_client.post(control, json={})
    assert moved.status_code == 200
    assert moved.json()["_emulator"]["moveAt"] is not None
    graph_clock.advance(29)
    assert config(graph_client, SKY_ID).json()["accountType"] == AccountType.SFB_ON_PREM_USER
    graph_clock.advance(1)
    assert config(graph_client, SKY_ID).json()["accountType"] == AccountType.USER


def test_a_configuration_is_read_by_object_id_only_and_selects_properties(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """A UPN or a hostile key is a 404; $select narrows the answer and its context."""
    make_ready(graph_client, graph_clock)
    assert config(graph_client, JANE_UPN).status_code == 404
    assert config(graph_client, quote("x' or accountType eq 'user", safe="")).status_code == 404
    selected = graph_client.get(
        f"/admin/teams/userConfigurations/{JANE_ID}", params={"$select": "accountType,featureTypes"}
    ).json()
    assert set(selected) == {"@odata.context", "accountType", "featureTypes"}
    assert selected["@odata.context"].endswith(
        "#admin/teams/userConfigurations(accountType,featureTypes)/$entity"
    )


def test_readiness_checks_can_be_batched(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """$batch items: one ready user, one unknown to Teams, each with its own status."""
    make_ready(graph_client, graph_clock)
    unlicensed = user_id_of(graph_client, "nolocation@contoso.com")
    items = [
        {"id": key, "method": "GET", "url": f"/admin/teams/userConfigurations/{user}"}
        for key, user in (("ready", JANE_ID), ("sky", SKY_ID), ("none", unlicensed))
    ]
    answers = {
        r["id"]: r
        for r in graph_client.post("/$batch", json={"requests": items}).json()["responses"]
    }
    assert answers["ready"]["status"] == 200
    assert answers["ready"]["body"]["featureTypes"] == ["Teams", "PhoneSystem"]
    assert answers["sky"]["body"]["accountType"] == AccountType.SFB_ON_PREM_USER
    assert answers["none"]["status"] == 404


# -------------------------------------------------------------------- orders


def test_assign_number_is_an_order_that_runs_and_then_puts_the_number_on_the_user(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """202 + Location operations('id'); notStarted, running (number pending), succeeded."""
    make_ready(graph_client, graph_clock)
    location = order(graph_client, FREE, "operatorConnect", locationId="loc-paris")
    assert location.startswith(
        f"{graph_emulator.base_url}/admin/teams/telephoneNumberManagement/operations('"
    )
    first = graph_client.get(location).json()
    assert first["status"] == OperationStatus.NOT_STARTED
    assert first["numbers"] == [
        {"resourceLocation": None, "status": "notStarted", "statusDetail": None}
    ]
    graph_clock.advance(1)
    assert graph_client.get(location).json()["status"] == OperationStatus.RUNNING
    assert number(graph_client, FREE)["activationState"] == "assignmentPending"
    graph_clock.advance(2)
    done = graph_client.get(location).json()
    assert done["status"] == OperationStatus.SUCCEEDED
    (detail,) = done["numbers"]
    assert detail["status"] == "succeeded"
    record = graph_client.get(detail["resourceLocation"]).json()
    assert record["telephoneNumber"] == FREE
    assert record["assignmentTargetId"] == JANE_ID
    assert record["assignmentStatus"] == "userAssigned"
    assert record["assignmentCategory"] == "primary"
    assert record["activationState"] == "activated"
    assert record["locationId"] == "loc-paris"
    ready = config(graph_client, JANE_ID).json()
    assert ready["telephoneNumbers"] == [{"telephoneNumber": FREE, "assignmentCategory": "primary"}]
    assert ready["isEnterpriseVoiceEnabled"] is True


def test_the_sdk_spellings_of_the_action_and_the_operation_work(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """The action spelt microsoft.graph.teamsAdministration.assignNumber, operations/{id}."""
    make_ready(graph_client, graph_clock)
    body = {
        "telephoneNumber": FREE[1:],
        "assignmentTargetId": JANE_ID,
        "numberType": "operatorConnect",
    }
    posted = graph_client.post(
        f"{NUMBERS}/microsoft.graph.teamsAdministration.assignNumber", json=body
    )
    assert posted.status_code == 202
    operation_id = posted.headers["Location"].split("operations('")[1].rstrip("')")
    graph_clock.advance(3)
    done = graph_client.get(f"/admin/teams/telephoneNumberManagement/operations/{operation_id}")
    assert done.json()["status"] == OperationStatus.SUCCEEDED
    assert number(graph_client, FREE)["assignmentTargetId"] == JANE_ID  # '+' added by Teams


FAILURES = [
    pytest.param(
        "+33155559999", "operatorConnect", teams_rules.NUMBER_NOT_FOUND, id="unknown-number"
    ),
    pytest.param(TAKEN, "operatorConnect", teams_rules.ASSIGNED_TO_ANOTHER, id="someone-elses"),
    pytest.param(PLAN_NUMBER, "operatorConnect", teams_rules.NUMBER_NOT_FOUND, id="wrong-type"),
    pytest.param(SERVICE, "operatorConnect", teams_rules.NOT_A_USER_NUMBER, id="service-number"),
    pytest.param(PLAN_NUMBER, "callingPlan", teams_rules.LACKS_LICENSES, id="no-calling-plan"),
]


@pytest.mark.parametrize(("telephone_number", "number_type", "template"), FAILURES)
def test_a_refused_order_fails_with_teams_message_and_changes_nothing(
    graph_client: httpx.Client,
    graph_clock: ManualClock,
    telephone_number: str,
    number_type: str,
    template: str,
) -> None:
    """The operation fails with Teams' statusDetail; the inventory and the user are unchanged."""
    make_ready(graph_client, graph_clock)
    before = graph_client.get(NUMBERS).json()["value"]
    done = finished(graph_client, graph_clock, order(graph_client, telephone_number, number_type))
    words = {"number": telephone_number, "tenant": TENANT, "user": JANE_ID, "kind": "CallingPlan"}
    assert done["status"] == OperationStatus.FAILED
    assert done["numbers"] == [
        {"resourceLocation": None, "status": "failed", "statusDetail": template.format(**words)}
    ]
    assert graph_client.get(NUMBERS).json()["value"] == before
    assert config(graph_client, JANE_ID).json()["telephoneNumbers"] == []


def test_an_order_for_a_user_teams_does_not_see_yet_fails_until_it_does(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """Unknown to Teams, then licensed but not yet voice-enabled, then assigned: each in turn."""
    unknown = finished(graph_client, graph_clock, order(graph_client, FREE, "operatorConnect"))
    assert unknown["numbers"][0]["statusDetail"] == teams_rules.USER_NOT_FOUND.format(
        user=JANE_ID, tenant=TENANT
    )
    add = {"addLicenses": [{"skuId": TEAMS_SKU}], "removeLicenses": []}
    assert graph_client.post(f"/users/{JANE_ID}/assignLicense", json=add).status_code == 200
    graph_clock.advance(DELAY)
    add = {"addLicenses": [{"skuId": MCOEV_SKU}], "removeLicenses": []}
    assert graph_client.post(f"/users/{JANE_ID}/assignLicense", json=add).status_code == 200
    lacking = finished(graph_client, graph_clock, order(graph_client, FREE, "operatorConnect"))
    assert lacking["numbers"][0]["statusDetail"] == teams_rules.LACKS_LICENSES.format(
        user=JANE_ID, kind="OperatorConnect"
    )
    graph_clock.advance(DELAY)
    done = finished(graph_client, graph_clock, order(graph_client, FREE, "operatorConnect"))
    assert done["status"] == OperationStatus.SUCCEEDED


def test_an_order_is_decided_with_the_tenant_as_it_is_when_due(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """Due before Phone System reaches Teams: fails; placed before but due after: succeeds."""
    assert graph_client.post(f"/users/{JANE_ID}/assignLicense", json=VOICE).status_code == 200
    early = order(graph_client, FREE, "operatorConnect")
    graph_clock.advance(DELAY - 2)
    late = order(graph_client, FREE, "operatorConnect")  # due 1 s after Teams sees MCOEV
    graph_clock.advance(3)
    assert graph_client.get(early).json()["status"] == OperationStatus.FAILED
    assert graph_client.get(late).json()["status"] == OperationStatus.SUCCEEDED


def test_an_sfb_on_prem_user_cannot_get_a_number_until_moved(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """Homed in Skype for Business Server: the order fails; after the move it succeeds."""
    refused = finished(
        graph_client, graph_clock, order(graph_client, FREE, "operatorConnect", SKY_ID)
    )
    assert refused["numbers"][0]["statusDetail"] == teams_rules.SFB_ON_PREM.format(user=SKY_ID)
    graph_emulator.move_to_teams("sky@contoso.com", delay_seconds=0)
    done = finished(graph_client, graph_clock, order(graph_client, FREE, "operatorConnect", SKY_ID))
    assert done["status"] == OperationStatus.SUCCEEDED


def test_assigning_the_number_a_user_already_has_succeeds_and_updates_its_location(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """Idempotent, like Set-CsPhoneNumberAssignment on an assigned number (its Example 4)."""
    make_ready(graph_client, graph_clock)
    finished(graph_client, graph_clock, order(graph_client, FREE, "operatorConnect"))
    again = finished(
        graph_client, graph_clock, order(graph_client, FREE, "operatorConnect", locationId="loc-2")
    )
    assert again["status"] == OperationStatus.SUCCEEDED
    assert number(graph_client, FREE)["locationId"] == "loc-2"
    numbers = config(graph_client, JANE_ID).json()["telephoneNumbers"]
    assert numbers == [{"telephoneNumber": FREE, "assignmentCategory": "primary"}]


def test_a_new_primary_number_replaces_the_users_previous_one(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """One primary number per user: the old one goes back to unassigned."""
    make_ready(graph_client, graph_clock)
    finished(graph_client, graph_clock, order(graph_client, FREE, "operatorConnect"))
    finished(graph_client, graph_clock, order(graph_client, "+33155550150", "directRouting"))
    assert number(graph_client, FREE)["assignmentStatus"] == "unassigned"
    assert number(graph_client, FREE)["assignmentTargetId"] is None
    direct = number(graph_client, "+33155550150")
    assert (direct["numberType"], direct["assignmentTargetId"]) == ("directRouting", JANE_ID)
    numbers = config(graph_client, JANE_ID).json()["telephoneNumbers"]
    assert numbers == [{"telephoneNumber": "+33155550150", "assignmentCategory": "primary"}]


def test_two_orders_for_one_number_are_decided_in_turn(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """The first order wins; the second finds the number taken."""
    make_ready(graph_client, graph_clock)
    first = order(graph_client, FREE, "operatorConnect", JANE_ID)
    second = order(graph_client, FREE, "operatorConnect", OWNER_ID)
    graph_clock.advance(3)
    assert graph_client.get(first).json()["status"] == OperationStatus.SUCCEEDED
    lost = graph_client.get(second).json()
    assert lost["numbers"][0]["statusDetail"] == teams_rules.ASSIGNED_TO_ANOTHER.format(number=FREE)


def test_an_injected_failure_fails_the_next_order_only(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """failNext: Teams' transient 'Service is unavailable', then orders succeed again."""
    make_ready(graph_client, graph_clock)
    control = graph_client.base_url.copy_with(path="/_emulator/teams/operations/failNext")
    assert graph_client.post(control, json={}).json() == {
        "failNext": [teams_rules.SERVICE_UNAVAILABLE]
    }
    failed = finished(graph_client, graph_clock, order(graph_client, FREE, "operatorConnect"))
    assert failed["numbers"][0]["statusDetail"] == "Service is unavailable. Please try again"
    assert (
        finished(graph_client, graph_clock, order(graph_client, FREE, "operatorConnect"))["status"]
        == OperationStatus.SUCCEEDED
    )
    log = graph_emulator.teams_operations()
    assert [(e["status"], e["injectedFailure"]) for e in log] == [
        ("failed", True),
        ("succeeded", False),
    ]


def test_an_unknown_operation_is_a_404(graph_client: httpx.Client) -> None:
    """An operation id Teams never gave out."""
    answer = graph_client.get("/admin/teams/telephoneNumberManagement/operations('bm9wZQ')")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NotFound"


BAD_BODIES = [
    pytest.param({"telephoneNumber": "0155550100"}, "Invalid TelephoneNumber", id="not-e164"),
    pytest.param({"telephoneNumber": "tel:+33155550100"}, "Invalid TelephoneNumber", id="tel-uri"),
    pytest.param({"telephoneNumber": "+33 1 55 55 01 00"}, "Invalid TelephoneNumber", id="spaces"),
    pytest.param({"telephoneNumber": "+33155550100;ext=12"}, "Invalid TelephoneNumber", id="ext"),
    pytest.param(
        {"numberType": "mobile"}, "Cannot convert the literal 'mobile'", id="unknown-type"
    ),
    pytest.param({"numberType": "internalError"}, "cannot be assigned", id="internal-type"),
    pytest.param(
        {"assignmentCategory": "main"}, "Cannot convert the literal 'main'", id="category"
    ),
    pytest.param(
        {"assignmentTargetId": "jane.doe@contoso.com"}, "Invalid assignmentTargetId", id="upn"
    ),
    pytest.param(
        {"telephoneNumber": None}, "missing parameters are: telephoneNumber", id="missing"
    ),
    pytest.param({"extension": "12"}, "'extension' in the request payload", id="unknown-parameter"),
    pytest.param({"locationId": 5}, "locationId", id="location-type"),
]


@pytest.mark.graph_invalid_requests
@pytest.mark.parametrize(("change", "message"), BAD_BODIES)
def test_a_bad_assign_number_body_is_a_400_at_once_and_orders_nothing(
    graph_emulator: Emulator, graph_client: httpx.Client, change: dict[str, Any], message: str
) -> None:
    """Validation happens before any order exists."""
    body = {"telephoneNumber": FREE, "assignmentTargetId": JANE_ID, "numberType": "operatorConnect"}
    answer = graph_client.post(ASSIGN, json={**body, **change})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"
    assert message in answer.json()["error"]["message"]
    assert graph_emulator.teams_operations() == []


@pytest.mark.graph_invalid_requests
def test_a_body_that_is_not_json_or_empty_is_a_400(
    graph_emulator: Emulator, graph_client: httpx.Client
) -> None:
    """Not JSON, or no body at all: refused, nothing ordered."""
    garbled = graph_client.post(
        ASSIGN, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert garbled.status_code == 400
    assert graph_client.post(ASSIGN).status_code == 400
    assert graph_emulator.teams_operations() == []


# ------------------------------------------------------------------- numbers


def test_number_assignments_filter_and_page_as_documented(graph_client: httpx.Client) -> None:
    """eq clauses joined by and, enum values in any case, null; $top/$skip with a nextLink."""

    def numbers(**params: str) -> list[str]:
        answer = graph_client.get(NUMBERS, params=params)
        assert answer.status_code == 200, answer.text
        return [n["telephoneNumber"] for n in answer.json()["value"]]

    assert numbers(
        **{"$filter": "numberType eq 'OperatorConnect' and assignmentTargetId eq null"}
    ) == [
        FREE,
        SERVICE,
    ]
    assert numbers(**{"$filter": f"assignmentTargetId eq '{OWNER_ID}'"}) == [TAKEN]
    assert numbers(**{"$filter": "telephoneNumber eq '33155550102'"}) == [PLAN_NUMBER]
    page = graph_client.get(NUMBERS, params={"$top": "3"}).json()
    assert len(page["value"]) == 3
    rest = graph_client.get(page["@odata.nextLink"]).json()
    assert [n["telephoneNumber"] for n in rest["value"]] == [SERVICE]
    assert "@odata.nextLink" not in rest


@pytest.mark.parametrize(
    "expression",
    [
        "capabilities/any(c:c eq 'userAssignment')",
        f"telephoneNumber eq '{FREE}' or assignmentTargetId eq null",
        "assignmentStatus ne 'unassigned'",
        "city eq 'Paris'",
        f"telephoneNumber eq '{FREE}",
    ],
)
def test_filters_the_emulator_does_not_support_are_refused_not_widened(
    graph_client: httpx.Client, expression: str
) -> None:
    """An injected 'or', a lambda, ne, city, an unterminated literal: 400, never more rows."""
    answer = graph_client.get(NUMBERS, params={"$filter": expression})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"


def test_an_unknown_number_assignment_id_is_a_404(graph_client: httpx.Client) -> None:
    """A numberAssignment id that names no number."""
    assert graph_client.get(f"{NUMBERS}/bm9wZQ").status_code == 404


# ----------------------------------------------------- permissions, throttling


TEAMS_ROUTES = [
    (
        "GET",
        f"/admin/teams/userConfigurations/{SKY_ID}",
        None,
        200,
        "TeamsUserConfiguration.Read.All",
    ),
    ("GET", NUMBERS, None, 200, "TeamsTelephoneNumber.Read.All"),
    (
        "POST",
        ASSIGN,
        {"telephoneNumber": FREE, "assignmentTargetId": JANE_ID, "numberType": "operatorConnect"},
        202,
        "TeamsTelephoneNumber.ReadWrite.All",
    ),
    (
        "GET",
        "/admin/teams/telephoneNumberManagement/operations/bm9wZQ",
        None,
        404,
        "TeamsTelephoneNumber.Read.All",
    ),
]


@pytest.mark.parametrize(("method", "url", "body", "ok", "least"), TEAMS_ROUTES)
def test_each_teams_route_is_403_without_its_permission(
    graph_emulator: Emulator,
    graph_client: httpx.Client,
    method: str,
    url: str,
    body: Any,
    ok: int,
    least: str,
) -> None:
    """Everything but the route's permissions granted: 403; the least privileged one suffices."""
    others = {
        "User.ReadWrite.All",
        "LicenseAssignment.ReadWrite.All",
        "Directory.ReadWrite.All",
        "TeamsUserConfiguration.Read.All",
        "TeamsTelephoneNumber.Read.All",
        "TeamsTelephoneNumber.ReadWrite.All",
    }
    graph_emulator.set_permissions(others - {least, "TeamsTelephoneNumber.ReadWrite.All"})
    refused = graph_client.request(method, url, json=body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "Authorization_RequestDenied"
    graph_emulator.grant(least)
    assert graph_client.request(method, url, json=body).status_code == ok


def test_read_write_also_reads_numbers_and_operations(
    graph_emulator: Emulator, graph_client: httpx.Client
) -> None:
    """TeamsTelephoneNumber.ReadWrite.All alone lists numbers and reads operations."""
    graph_emulator.set_permissions(["TeamsTelephoneNumber.ReadWrite.All"])
    location = order(graph_client, FREE, "operatorConnect")
    assert graph_client.get(location).status_code == 200
    assert graph_client.get(NUMBERS).status_code == 200
    assert config(graph_client, JANE_ID).status_code == 403


def test_teams_routes_are_throttled_on_teams_budget_not_in_resource_units(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """Reads and writes per second apart; 429 with Retry-After; no x-ms-resource-unit."""
    graph_emulator.set_teams(readsPerSecond=2, writesPerSecond=1)
    first = config(graph_client, SKY_ID)
    assert first.status_code == 200
    assert "x-ms-resource-unit" not in first.headers
    assert config(graph_client, SKY_ID).status_code == 200
    throttled = config(graph_client, SKY_ID)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    order(graph_client, FREE, "operatorConnect")  # writes have their own budget
    body = {"telephoneNumber": FREE, "assignmentTargetId": JANE_ID, "numberType": "callingPlan"}
    assert graph_client.post(ASSIGN, json=body).status_code == 429
    assert graph_client.get(f"/users/{JANE_ID}").status_code == 200  # the identity budget is apart
    graph_clock.advance(1)
    assert config(graph_client, SKY_ID).status_code == 200


def test_batch_items_are_charged_to_the_teams_budget_one_by_one(
    graph_emulator: Emulator, graph_client: httpx.Client
) -> None:
    """Three readiness checks on a budget of two: one of them is 429 with Retry-After."""
    graph_emulator.set_teams(readsPerSecond=2)
    url = f"/admin/teams/userConfigurations/{SKY_ID}"
    items = [{"id": str(i), "method": "GET", "url": url} for i in range(3)]
    answers = graph_client.post("/$batch", json={"requests": items}).json()["responses"]
    assert sorted(a["status"] for a in answers) == [200, 200, 429]
    assert next(a for a in answers if a["status"] == 429)["headers"]["Retry-After"] == "1"


def test_an_order_in_a_batch_keeps_its_location_header(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """The item's headers carry Location, so a batched order can be followed."""
    make_ready(graph_client, graph_clock)
    body = {"telephoneNumber": FREE, "assignmentTargetId": JANE_ID, "numberType": "operatorConnect"}
    item = {
        "id": "1",
        "method": "POST",
        "url": ASSIGN,
        "body": body,
        "headers": {"Content-Type": "application/json"},
    }
    (answer,) = graph_client.post("/$batch", json={"requests": [item]}).json()["responses"]
    assert answer["status"] == 202
    assert "operations('" in answer["headers"]["Location"]


# ------------------------------------------------------- control and directory


def test_the_control_api_shows_and_changes_teams(
    graph_emulator: Emulator, graph_client: httpx.Client
) -> None:
    """Settings, a number added and read back by its number, bad input refused."""
    root = graph_client.base_url.copy_with(path="/_emulator/teams")
    settings = graph_client.get(root).json()
    assert settings["provisioningDelaySeconds"] == DELAY
    assert settings["readsPerSecond"] == 30
    changed = graph_client.put(root, json={"operationRunSeconds": 10, "writesPerSecond": 5}).json()
    assert (changed["operationRunSeconds"], changed["writesPerSecond"]) == (10, 5)
    added = graph_client.post(
        root.copy_with(path="/_emulator/teams/numbers"),
        json={"telephoneNumber": "+33155550177", "numberType": "callingPlan"},
    )
    assert added.status_code == 201
    read = graph_client.get(root.copy_with(path="/_emulator/teams/numbers/33155550177")).json()
    assert read["assignmentStatus"] == "unassigned"
    assert graph_client.put(root, json={"provisioningDelaySeconds": -1}).status_code == 400
    assert graph_client.put(root, json={"delay": 1}).status_code == 400
    moving = root.copy_with(path=f"/_emulator/teams/users/{JANE_UPN}/move")
    assert graph_client.post(moving, json={}).status_code == 400  # not an sfbOnPremUser
    unknown = root.copy_with(path="/_emulator/teams/users/nobody@contoso.com")
    assert graph_client.get(unknown).status_code == 404


@pytest.mark.parametrize(
    "teams_section",
    [
        {"numberAssignments": [{"telephoneNumber": FREE, "numberType": "callingPlan"}] * 2},
        {"numberAssignments": [{"telephoneNumber": FREE, "numberType": "mobile"}]},
        {"numberAssignments": [{"telephoneNumber": "tel:1", "numberType": "callingPlan"}]},
        {
            "numberAssignments": [
                {
                    "telephoneNumber": FREE,
                    "numberType": "callingPlan",
                    "assignmentTargetId": "nobody",
                }
            ]
        },
        {"users": [{"user": "nobody@contoso.com", "accountType": "sfbOnPremUser"}]},
        {"users": [{"user": JANE_UPN, "accountType": "robot"}]},
        {"provisioningDelay": 5},
    ],
)
def test_a_bad_teams_section_is_refused_when_loaded(
    graph_emulator: Emulator, teams_section: dict[str, Any]
) -> None:
    """Duplicates, unknown types, users and keys: DirectoryFormatError, not a quiet default."""
    directory = teams_directory()
    directory["teams"] = teams_section
    with pytest.raises(DirectoryFormatError):
        graph_emulator.reset(directory)


def test_reset_brings_the_inventory_and_the_users_back(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """After an assignment and a move, a reset restores the file's Teams state."""
    make_ready(graph_client, graph_clock)
    finished(graph_client, graph_clock, order(graph_client, FREE, "operatorConnect"))
    graph_emulator.move_to_teams(SKY_ID, delay_seconds=0)
    graph_emulator.reset()
    assert graph_emulator.teams_number(FREE)["assignmentStatus"] == "unassigned"
    assert graph_emulator.teams_operations() == []
    assert config(graph_client, SKY_ID).json()["accountType"] == AccountType.SFB_ON_PREM_USER


# ---------------------------------------------------------------- msgraph-sdk


class _DevelopmentToken(AccessTokenProvider):  # type: ignore[misc]  # kiota is untyped here
    """The emulator's fixed token, for loopback only."""

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        return DEFAULT_TOKEN

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator(["127.0.0.1"])


def test_msgraph_sdk_reads_readiness_orders_a_number_and_follows_the_operation(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """The SDK's request builders and models (as the app will use them) on these routes."""
    make_ready(graph_client, graph_clock)

    async def scenario() -> tuple[Any, str, Any]:
        # msgraph-core wraps the client's transport in one without aclose: close the real one.
        transport = httpx.AsyncHTTPTransport()
        async with httpx.AsyncClient(transport=transport) as http:
            adapter = GraphRequestAdapter(
                BaseBearerTokenAuthenticationProvider(_DevelopmentToken()),
                client=GraphClientFactory.create_with_default_middleware(client=http),
            )
            adapter.base_url = graph_emulator.base_url
            graph = GraphServiceClient(request_adapter=adapter)
            teams = graph.admin.teams
            user = await teams.user_configurations.by_teams_user_configuration_id(JANE_ID).get()
            inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
            body = AssignNumberPostRequestBody(
                telephone_number=FREE,
                assignment_target_id=JANE_ID,
                number_type=NumberType.OperatorConnect,
            )
            await teams.telephone_number_management.number_assignments.microsoft_graph_teams_administration_assign_number.post(  # noqa: E501
                body, RequestConfiguration(options=[inspect])
            )
            (location,) = inspect.response_headers.get("location")
            graph_clock.advance(3)
            operation_id = location.split("operations('")[1].rstrip("')")
            operations = teams.telephone_number_management.operations
            operation = await operations.by_telephone_number_long_running_operation_id(
                operation_id
            ).get()
        await transport.aclose()
        return user, location, operation

    user, location, operation = asyncio.run(scenario())
    assert user.account_type == "user"
    assert user.feature_types == ["Teams", "PhoneSystem"]
    assert "/telephoneNumberManagement/operations('" in location
    assert operation.status == "succeeded"
    assert operation.numbers[0].resource_location.endswith(graph_emulator.teams_number(FREE)["id"])


# ------------------------------------------------------------- OpenAPI check


def test_the_openapi_check_knows_the_teams_routes_and_their_bodies() -> None:
    """Good exchanges pass; a bad body, a bad enum and an unknown property are reported."""
    good = {"telephoneNumber": FREE, "assignmentTargetId": JANE_ID, "numberType": "callingPlan"}
    sdk_path = f"/v1.0{NUMBERS}/microsoft.graph.teamsAdministration.assignNumber"
    assert check_exchange("POST", sdk_path, 202, None, good) == []
    bad = {"telephoneNumber": FREE, "numberType": "mobile", "extension": "1"}
    problems = " ".join(check_exchange("POST", f"/v1.0{ASSIGN}", 202, None, bad))
    assert "'assignmentTargetId' is a required property" in problems
    assert "'mobile' is not one of" in problems
    assert "'extension' was unexpected" in problems
    operation = {
        "id": "QQ",
        "createdDateTime": "2026-01-01T00:00:00Z",
        "status": "succeeded",
        "numbers": [{"resourceLocation": None, "status": "succeeded", "statusDetail": None}],
    }
    path = "/v1.0/admin/teams/telephoneNumberManagement/operations('QQ')"
    assert check_exchange("GET", path, 200, operation) == []
    assert check_exchange("GET", path, 200, {**operation, "status": "done"}) != []
    configuration = f"/v1.0/admin/teams/userConfigurations/{JANE_ID}"
    assert check_exchange("GET", configuration, 200, {"accountType": "robot"}) != []
    assert check_exchange("GET", configuration, 200, {"accountType": "sfbOnPremUser"}) == []


def test_a_user_entry_carries_its_own_teams_options(graph_emulator: Emulator) -> None:
    """A user's `teams` key (file or control API) sets its Teams options with the user."""
    added = graph_emulator.add_user(
        {
            "userPrincipalName": "pat.skype@contoso.com",
            "usageLocation": "FR",
            "assignedLicenses": [{"skuId": TEAMS_SKU}, {"skuId": MCOEV_SKU}],
            "teams": {"accountType": "sfbOnPremUser", "isEnterpriseVoiceEnabled": True},
        }
    )
    shown = graph_emulator.teams_user(added["id"])["configuration"]
    assert shown["accountType"] == AccountType.SFB_ON_PREM_USER
    assert shown["isEnterpriseVoiceEnabled"] is True
    assert shown["featureTypes"] == ["Teams", "PhoneSystem"]
    with pytest.raises(DirectoryFormatError):
        graph_emulator.add_user(
            {"userPrincipalName": "bad.teams@contoso.com", "teams": {"user": JANE_UPN}}
        )


def test_the_shipped_sample_tenant_loads_with_or_without_its_users() -> None:
    """Tests and tools empty the sample's users: its Teams section must not depend on them."""
    sample = json.loads(SAMPLE_TENANT.read_text(encoding="utf-8"))
    with start_emulator(copy.deepcopy(sample), clock=ManualClock()) as emulator:
        sky = emulator.teams_user("sky.onprem@contoso.com")["configuration"]
        assert sky["accountType"] == AccountType.SFB_ON_PREM_USER
        assert emulator.teams_user("dana.phone@contoso.com")["configuration"] is None
        assert emulator.teams_number("+33155550100")["assignmentStatus"] == "unassigned"
    sample["users"] = []
    with start_emulator(sample, clock=ManualClock()) as emulator:
        assert len(emulator.teams_numbers()) == 3
