"""Entra Cloud Sync: the job's schema, provisionOnDemand, its rate limit and the regular cycle."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from local_stack.graph_emulator import DirectoryFormatError, Emulator, ManualClock, start_emulator
from local_stack.graph_emulator.clock import iso_z
from tests.support.graph import JANE_UPN, SAMPLE_DIRECTORY

SP_ID = "3e916d82-dd59-4944-824d-93092908fd8d"
JOB_ID = "AD2AADProvisioning.fd1c9b9e8077402c8bc03a7186c8f976.791b065b-71d9-42b7-9745-8f6a00f2339b"
RULE_ID = "6c409270-f78a-4bc6-af23-7cf3ab6482fe"
JOB_PATH = f"/servicePrincipals/{SP_ID}/synchronization/jobs/{JOB_ID}"
ADELE_DN = "CN=Adele Vance,OU=Staff,DC=corp,DC=contoso,DC=com"
ADELE_UPN = "adele.vance@contoso.com"
JANE_DN = "CN=Jane Doe,OU=Staff,DC=corp,DC=contoso,DC=com"
SYNC_SELECT = {"$select": "id,onPremisesSyncEnabled,onPremisesLastSyncDateTime"}


def sync_directory(cycle_seconds: float = 0) -> dict[str, Any]:
    directory = copy.deepcopy(SAMPLE_DIRECTORY)
    directory["synchronization"] = {
        "jobs": [{"servicePrincipalId": SP_ID, "jobId": JOB_ID, "ruleId": RULE_ID}],
        "cycleSeconds": cycle_seconds,
        "onDemandDelaySeconds": 3,
    }
    for user in directory["users"]:
        if user["userPrincipalName"] == JANE_UPN:
            user["onPremisesDistinguishedName"] = JANE_DN
    directory["users"].append(
        {
            "userPrincipalName": ADELE_UPN,
            "displayName": "Adele Vance",
            "employeeId": "000500",
            "onPremisesDistinguishedName": ADELE_DN,
            "usageLocation": "FR",
            "awaitingSync": True,
        }
    )
    return directory


@pytest.fixture
def graph_directory() -> dict[str, Any]:
    """The sample tenant with one Cloud Sync job and Adele, who is in AD but not yet in Entra."""
    return sync_directory()


def on_demand(dn: str, rule_id: str = RULE_ID) -> dict[str, Any]:
    return {
        "parameters": [
            {"ruleId": rule_id, "subjects": [{"objectId": dn, "objectTypeName": "user"}]}
        ]
    }


def decoded(response: httpx.Response) -> tuple[dict[str, Any], dict[str, Any]]:
    """provisionOnDemand's key and value are JSON documents inside strings."""
    body = response.json()
    return json.loads(body["key"]), json.loads(body["value"])


def control(emulator: Emulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.control_url, timeout=5.0)


# -------------------------------------------------------------------- schema


def test_the_schema_names_the_jobs_ad_to_entra_rule(graph_client: httpx.Client) -> None:
    """GET .../schema: the job's rule with Active Directory -> Azure Active Directory."""
    response = graph_client.get(f"{JOB_PATH}/schema")
    assert response.status_code == 200
    schema = response.json()
    assert schema["id"] == JOB_ID
    (rule,) = schema["synchronizationRules"]
    assert rule["id"] == RULE_ID
    assert rule["name"] == "AD2AADProvisioning"
    assert (rule["sourceDirectoryName"], rule["targetDirectoryName"]) == (
        "Active Directory",
        "Azure Active Directory",
    )
    assert rule["editable"] is True
    assert rule["priority"] == 1
    assert rule["objectMappings"][0]["sourceObjectName"] == "user"
    assert [d["name"] for d in schema["directories"]] == [
        "Active Directory",
        "Azure Active Directory",
    ]


def test_the_schema_supports_select_of_its_properties(graph_client: httpx.Client) -> None:
    """$select=synchronizationRules returns only the rules; an unknown property is a 400."""
    selected = graph_client.get(f"{JOB_PATH}/schema", params={"$select": "synchronizationRules"})
    assert set(selected.json()) == {"@odata.context", "synchronizationRules"}
    assert selected.json()["synchronizationRules"][0]["id"] == RULE_ID


def test_an_unknown_service_principal_or_job_is_a_graph_404(graph_client: httpx.Client) -> None:
    """The unknown id is named in Request_ResourceNotFound, for the schema and on demand."""
    other_sp = "00000000-0000-0000-0000-0000000000aa"
    unknown_sp = graph_client.get(
        f"/servicePrincipals/{other_sp}/synchronization/jobs/{JOB_ID}/schema"
    )
    assert unknown_sp.status_code == 404
    assert unknown_sp.json()["error"]["code"] == "Request_ResourceNotFound"
    assert other_sp in unknown_sp.json()["error"]["message"]
    other_job = "AD2AADProvisioning.00000000000000000000000000000000"
    unknown_job = graph_client.post(
        f"/servicePrincipals/{SP_ID}/synchronization/jobs/{other_job}/provisionOnDemand",
        json=on_demand(ADELE_DN),
    )
    assert unknown_job.status_code == 404
    assert other_job in unknown_job.json()["error"]["message"]


# --------------------------------------------------------- provisionOnDemand


def test_provision_on_demand_makes_an_awaiting_user_appear_after_the_delay(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """200 Success (Create) at once; the user exists, synced, onDemandDelaySeconds later."""
    assert graph_client.get(f"/users/{ADELE_UPN}").status_code == 404
    found = graph_client.get("/users", params={"$filter": "employeeId eq '000500'"})
    assert found.json()["value"] == []
    started = graph_clock.now()
    response = graph_client.post(f"{JOB_PATH}/provisionOnDemand", json=on_demand(ADELE_DN))
    assert response.status_code == 200
    assert response.json()["@odata.context"].endswith(
        "#microsoft.synchronization.stringKeyStringValuePair"
    )
    key, value = decoded(response)
    assert key == {"result": "Success", "details": {}}
    assert value["action"] == "Create"
    assert value["statusInfo"] == {"status": "Success"}
    assert [s["name"] for s in value["provisioningSteps"]] == [
        "EntryImportAdd",
        "EntryImport",
        "EntrySynchronizationScoping",
        "EntryExportAdd",
    ]
    assert value["reportableIdentifier"] == ADELE_UPN
    assert value["targetIdentity"] == {
        "id": graph_emulator.user_record(ADELE_UPN)["id"],
        "type": "User",
    }
    assert value["sourceSystem"] == {"name": "Active Directory"}
    graph_clock.advance(2.9)
    assert graph_client.get(f"/users/{ADELE_UPN}").status_code == 404
    graph_clock.advance(0.1)
    synced = graph_client.get(f"/users/{ADELE_UPN}", params=SYNC_SELECT).json()
    assert synced["onPremisesSyncEnabled"] is True
    assert synced["onPremisesLastSyncDateTime"] == iso_z(started + 3)
    found = graph_client.get("/users", params={"$filter": "employeeId eq '000500'"})
    assert [u["userPrincipalName"] for u in found.json()["value"]] == [ADELE_UPN]


def test_provision_on_demand_of_a_synced_user_is_an_update_that_refreshes_its_sync_time(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """A user already in Entra: action Update, EntryExportUpdate, a later last-sync time."""
    before = graph_client.get(f"/users/{JANE_UPN}", params=SYNC_SELECT).json()
    graph_clock.advance(60)
    response = graph_client.post(f"{JOB_PATH}/provisionOnDemand", json=on_demand(JANE_DN.upper()))
    _, value = decoded(response)
    assert value["action"] == "Update"
    assert value["provisioningSteps"][-1]["name"] == "EntryExportUpdate"
    graph_clock.advance(3)
    after = graph_client.get(f"/users/{JANE_UPN}", params=SYNC_SELECT).json()
    assert after["onPremisesSyncEnabled"] is True
    assert after["onPremisesLastSyncDateTime"] > before["onPremisesLastSyncDateTime"]


def test_a_dn_that_matches_no_ad_user_is_a_200_failure_and_changes_nothing(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """result Failure with details errorCode/errorMessage, and statusInfo Failure."""
    ghost = "CN=Nobody,OU=Staff,DC=corp,DC=contoso,DC=com"
    response = graph_client.post(f"{JOB_PATH}/provisionOnDemand", json=on_demand(ghost))
    assert response.status_code == 200
    key, value = decoded(response)
    assert key["result"] == "Failure"
    assert key["details"]["errorCode"] == "ObjectNotFound"
    assert ghost in key["details"]["errorMessage"]
    assert value["statusInfo"]["status"] == "Failure"
    assert value["statusInfo"]["errorCode"] == "ObjectNotFound"
    assert value["provisioningSteps"][0]["status"] == "Failure"
    graph_clock.advance(60)
    assert graph_client.get(f"/users/{ADELE_UPN}").status_code == 404


def test_a_rule_the_job_does_not_have_is_400_request_parameter_invalid(
    graph_client: httpx.Client,
) -> None:
    """The observed message names the job and the rule, two spaces after each period."""
    response = graph_client.post(
        f"{JOB_PATH}/provisionOnDemand", json=on_demand(ADELE_DN, rule_id="not-the-rule")
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "RequestParameterInvalid"
    assert error["message"] == (
        f"The request identified this synchronization job: {JOB_ID}.  The request also "
        "identified this synchronization rule: not-the-rule.  However, the job does not "
        "include the rule."
    )


@pytest.mark.graph_invalid_requests
def test_a_missing_or_malformed_provision_on_demand_body_is_400(
    graph_client: httpx.Client,
) -> None:
    """No body, no parameters, no subjects, or a subject that is not an AD user: 400."""
    url = f"{JOB_PATH}/provisionOnDemand"
    no_body = graph_client.post(url)
    assert no_body.status_code == 400
    assert "missing" in no_body.json()["error"]["message"]
    assert graph_client.post(url, json={"parameters": []}).status_code == 400
    assert graph_client.post(url, json={"parameters": [{"ruleId": RULE_ID}]}).status_code == 400
    group = on_demand(ADELE_DN)
    group["parameters"][0]["subjects"][0]["objectTypeName"] = "Group"
    assert graph_client.post(url, json=group).status_code == 400


def test_the_sixth_call_within_ten_seconds_is_429_with_retry_after(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """5 requests per 10 s per job: the 6th is TooManyRequests until the oldest is 10 s old."""
    url = f"{JOB_PATH}/provisionOnDemand"
    for _ in range(5):
        assert graph_client.post(url, json=on_demand(JANE_DN)).status_code == 200
        graph_clock.advance(1)
    refused = graph_client.post(url, json=on_demand(JANE_DN))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "TooManyRequests"
    assert refused.headers["Retry-After"] == "5"
    graph_clock.advance(4)
    assert graph_client.post(url, json=on_demand(JANE_DN)).headers["Retry-After"] == "1"
    graph_clock.advance(1)
    assert graph_client.post(url, json=on_demand(JANE_DN)).status_code == 200


def test_without_a_sync_permission_the_sync_routes_answer_401_unknown_error(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """As observed for the synchronization APIs: 401 UnknownError, not 403."""
    graph_emulator.set_permissions(["User.Read.All"])
    refused = graph_client.post(f"{JOB_PATH}/provisionOnDemand", json=on_demand(ADELE_DN))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "UnknownError"
    assert graph_client.get(f"{JOB_PATH}/schema").status_code == 401
    graph_emulator.grant("Synchronization.ReadWrite.All")
    assert graph_client.get(f"{JOB_PATH}/schema").status_code == 200


# ------------------------------------------------------------- regular cycle


@pytest.mark.parametrize("graph_emulator", [sync_directory(cycle_seconds=30)], indirect=True)
def test_a_regular_cycle_syncs_every_awaiting_user_at_the_next_boundary(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """cycleSeconds 30: hidden until the boundary, synced at it; a later user waits for the next."""
    start = graph_clock.now()
    graph_clock.advance(29)
    assert graph_client.get(f"/users/{ADELE_UPN}").status_code == 404
    graph_emulator.add_user(
        {"userPrincipalName": "late@contoso.com", "awaitingSync": True, "employeeId": "000501"}
    )
    graph_clock.advance(1)
    synced = graph_client.get(f"/users/{ADELE_UPN}", params=SYNC_SELECT).json()
    assert synced["onPremisesLastSyncDateTime"] == iso_z(start + 30)
    late = graph_client.get("/users/late@contoso.com", params=SYNC_SELECT).json()
    assert late["onPremisesSyncEnabled"] is True  # added at 29 s: the 30 s run takes it
    graph_emulator.add_user({"userPrincipalName": "later@contoso.com", "awaitingSync": True})
    graph_clock.advance(29)
    assert graph_client.get("/users/later@contoso.com").status_code == 404
    graph_clock.advance(1)
    later = graph_client.get("/users/later@contoso.com", params=SYNC_SELECT).json()
    assert later["onPremisesLastSyncDateTime"] == iso_z(start + 60)


def test_without_a_cycle_an_awaiting_user_waits_for_provision_on_demand(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """cycleSeconds 0: no regular run, so the user stays absent however long one waits."""
    graph_clock.advance(3600)
    assert graph_client.get(f"/users/{ADELE_UPN}").status_code == 404


def test_the_control_api_sets_timings_adds_awaiting_users_and_runs_a_cycle(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """PUT /sync, POST /users {awaitingSync}, POST /sync/cycle, GET /sync/provisionOnDemand."""
    with control(graph_emulator) as api:
        settings = api.put("/sync", json={"onDemandDelaySeconds": 0, "cycleSeconds": 600}).json()
        assert (settings["onDemandDelaySeconds"], settings["cycleSeconds"]) == (0, 600)
        assert settings["jobs"][0]["ruleId"] == RULE_ID
        assert settings["awaitingSync"] == [ADELE_UPN]
        added = api.post(
            "/users",
            json={
                "userPrincipalName": "new.ad@contoso.com",
                "awaitingSync": True,
                "onPremisesDistinguishedName": "CN=New,DC=contoso,DC=com",
            },
        )
        assert added.json()["_emulator"]["visible"] is False
        assert added.json()["_emulator"]["awaitingSync"] is True
        graph_client.post(
            f"{JOB_PATH}/provisionOnDemand", json=on_demand("CN=New,DC=contoso,DC=com")
        )
        assert graph_client.get("/users/new.ad@contoso.com").status_code == 200  # delay 0
        assert api.post("/sync/cycle").json() == {"synced": [ADELE_UPN]}
        assert graph_client.get(f"/users/{ADELE_UPN}").status_code == 200
        calls = api.get("/sync/provisionOnDemand").json()
        assert [c["body"]["parameters"][0]["subjects"][0]["objectId"] for c in calls] == [
            "CN=New,DC=contoso,DC=com"
        ]
        assert api.put("/sync", json={"cycleSeconds": -1}).status_code == 400
        assert api.put("/sync", json={"interval": "PT2M"}).status_code == 400


def test_the_in_process_helpers_drive_the_sync(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """set_sync, run_sync_cycle, sync_settings and provision_on_demand_calls."""
    graph_emulator.set_sync(on_demand_delay_seconds=10)
    graph_client.post(f"{JOB_PATH}/provisionOnDemand", json=on_demand(ADELE_DN))
    assert len(graph_emulator.provision_on_demand_calls()) == 1
    assert graph_emulator.provision_on_demand_calls()[0]["status"] == 200
    assert graph_emulator.sync_settings()["awaitingSync"] == [ADELE_UPN]  # not before 10 s
    assert graph_emulator.run_sync_cycle() == [ADELE_UPN]
    assert graph_emulator.run_sync_cycle() == []
    graph_emulator.set_sync(cycle_seconds=5)
    assert graph_emulator.sync_settings()["nextCycleAt"] == iso_z(graph_clock.now() + 5)


def test_a_reset_restores_the_files_sync_state(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """After a reset the user awaits sync again and the rate limit starts afresh."""
    graph_emulator.run_sync_cycle()
    graph_emulator.reset()
    assert graph_client.get(f"/users/{ADELE_UPN}").status_code == 404
    assert graph_emulator.user_record(ADELE_UPN)["_emulator"]["awaitingSync"] is True


@pytest.mark.parametrize(
    ("section", "users", "match"),
    [
        ({"jobs": [{"servicePrincipalId": SP_ID, "jobId": SP_ID, "ruleId": "r"}]}, [], "jobId"),
        ({"jobs": [{"servicePrincipalId": "sp", "jobId": JOB_ID, "ruleId": "r"}]}, [], "GUID"),
        ({"cycleSeconds": "PT2M"}, [], "cycleSeconds"),
        ({"interval": 120}, [], "unknown"),
        (
            {},
            [{"userPrincipalName": "x@contoso.com", "awaitingSync": True, "syncAfterSeconds": 5}],
            "awaitingSync",
        ),
        ({}, [{"userPrincipalName": "x@contoso.com", "licenseAssignmentStates": []}], "computed"),
    ],
)
def test_the_synchronization_section_and_awaiting_users_are_validated(
    section: dict[str, Any], users: list[dict[str, Any]], match: str
) -> None:
    """A GUID job id (the docs' illustration), a bad SP id, bad numbers: DirectoryFormatError."""
    with pytest.raises(DirectoryFormatError, match=match):
        start_emulator({"synchronization": section, "users": users})
