"""The Graph adapter's v1.1 calls over real HTTP against the emulator: Cloud Sync on
demand and group-based licensing (every exchange checked against the OpenAPI excerpt)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local_stack.graph_emulator import Emulator
from shared.adapters.graph import GraphDirectory
from shared.domain.codes import ForcedSyncStatus
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.domain.requests import UserIdentifiers
from shared.domain.tenant import CloudSyncJob, Found, NotFound
from tests.integration.test_graph_adapter import Naps, graph_calls, run
from tests.support.graph import E3_SKU, JANE_ID, SAMPLE_DIRECTORY

SP = "00d41b14-7958-45ad-9d75-d52fa29e02a1"
JOB = CloudSyncJob(SP, "AD2AADProvisioning.fd1c9b9e8077402c8bc03a7186c8f976")
RULE = "6c409270-f78a-4bc6-af23-7cf3ab6482fe"
DN = "CN=New Starter,OU=Staff,DC=contoso,DC=com"
GROUP = "3b0a5c1e-8d2f-4e6a-9b7c-1d2e3f4a5b6c"


@pytest.fixture
def graph_directory() -> dict[str, Any]:
    directory = copy.deepcopy(SAMPLE_DIRECTORY)
    directory["synchronization"] = {
        "jobs": [{"servicePrincipalId": SP, "jobId": JOB.job_id, "ruleId": RULE}],
        "cycleSeconds": 0,
        "onDemandDelaySeconds": 0,
    }
    directory["users"].append(
        {
            "userPrincipalName": "new.starter@contoso.com",
            "onPremisesDistinguishedName": DN,
            "awaitingSync": True,
        }
    )
    directory["groups"] = [
        {"id": GROUP, "displayName": "Licensing E3", "licenses": [{"skuId": E3_SKU}], "members": []}
    ]
    directory["groupLicenseDelaySeconds"] = 0
    return directory


def test_the_jobs_ad_to_entra_rule_is_read_from_its_schema(graph_emulator: Emulator) -> None:
    """GET .../jobs/{jobId}/schema: the rule from Active Directory to Entra ID."""
    assert run(graph_emulator, lambda d: d.sync_rule_id(JOB)) == RULE
    (call,) = graph_calls(graph_emulator)
    assert call["path"].endswith(f"/synchronization/jobs/{JOB.job_id}/schema")


def test_a_forced_sync_provisions_the_user_who_then_appears_synced(
    graph_emulator: Emulator,
) -> None:
    """provisionOnDemand with the DN in the body only; Graph's key says Success."""

    async def force_then_look(directory: GraphDirectory) -> tuple[Any, Any, Any]:
        before = await directory.find_user(UserIdentifiers("new.starter@contoso.com"))
        result = await directory.provision_on_demand(JOB, RULE, DN)
        after = await directory.find_user(UserIdentifiers("new.starter@contoso.com"))
        return before, result, after

    before, result, after = run(graph_emulator, force_then_look)
    assert isinstance(before, NotFound)
    assert result.status == ForcedSyncStatus.REQUESTED
    assert isinstance(after, Found)
    assert after.user.synced
    (forced,) = [c for c in graph_calls(graph_emulator) if c["path"].endswith("provisionOnDemand")]
    assert forced["body"] == {
        "parameters": [{"ruleId": RULE, "subjects": [{"objectId": DN, "objectTypeName": "user"}]}]
    }
    assert "CN=" not in forced["path"] + forced["query"]


def test_a_dn_cloud_sync_does_not_know_is_a_failed_forced_sync(graph_emulator: Emulator) -> None:
    """Graph answers 200 with result Failure: reported, not raised."""
    result = run(graph_emulator, lambda d: d.provision_on_demand(JOB, RULE, "CN=Nobody,DC=x"))
    assert result.status == ForcedSyncStatus.FAILED
    assert "Failure" in result.message


def test_a_rule_that_is_not_the_jobs_is_refused(graph_emulator: Emulator) -> None:
    """400 RequestParameterInvalid, as a GraphError naming provisionOnDemand."""

    async def attempt(directory: GraphDirectory) -> GraphError:
        with pytest.raises(GraphError) as caught:
            await directory.provision_on_demand(JOB, "not-the-rule", DN)
        return caught.value

    error = run(graph_emulator, attempt)
    assert (error.status, error.code, error.call) == (
        400,
        "RequestParameterInvalid",
        GraphCall.PROVISION_ON_DEMAND,
    )


def test_the_sixth_call_in_ten_seconds_is_throttled_without_closing_the_directory_gate(
    graph_emulator: Emulator,
) -> None:
    """The job's own limit: a 429 for provisionOnDemand, lookups still go."""

    async def six_then_lookup(directory: GraphDirectory) -> tuple[GraphError, Any]:
        for _ in range(5):
            await directory.provision_on_demand(JOB, RULE, "CN=Nobody,DC=x")
        with pytest.raises(GraphError) as caught:
            await directory.provision_on_demand(JOB, RULE, "CN=Nobody,DC=x")
        lookup = await directory.find_user(UserIdentifiers("jane.doe@contoso.com"))
        return caught.value, lookup

    error, lookup = run(graph_emulator, six_then_lookup, sleep=Naps())
    assert error.kind == GraphErrorKind.THROTTLED
    assert isinstance(lookup, Found)


def test_adding_a_member_twice_counts_as_done_and_the_state_turns_active(
    graph_emulator: Emulator,
) -> None:
    """204, then 400 'already exist' (not an error), then licenseAssignmentStates Active."""

    async def join(directory: GraphDirectory) -> Any:
        await directory.add_group_member(GROUP, JANE_ID)
        await directory.add_group_member(GROUP, JANE_ID)
        return await directory.find_user(UserIdentifiers("jane.doe@contoso.com"))

    found = run(graph_emulator, join)
    assert isinstance(found, Found)
    (state,) = [s for s in found.user.license_states if s.sku_id == E3_SKU]
    assert (state.assigned_by_group, state.state, state.active) == (GROUP, "Active", True)
    adds = [c["status"] for c in graph_calls(graph_emulator) if c["path"].endswith("members/$ref")]
    assert adds == [204, 400]


def test_an_unknown_licensing_group_is_a_permanent_refusal(graph_emulator: Emulator) -> None:
    """404 naming the group: REJECTED (a LICENSE_GROUPS mistake), not replication lag."""
    unknown = "99999999-8d2f-4e6a-9b7c-1d2e3f4a5b6c"

    async def attempt(directory: GraphDirectory) -> GraphError:
        with pytest.raises(GraphError) as caught:
            await directory.add_group_member(unknown, JANE_ID)
        return caught.value

    error = run(graph_emulator, attempt, sleep=Naps())
    assert (error.kind, error.status) == (GraphErrorKind.REJECTED, 404)
    assert "LICENSE_GROUPS" in error.graph_message


def test_reprocessing_a_users_licenses_turns_a_count_violation_active(
    graph_emulator: Emulator,
) -> None:
    """No seat: Error/CountViolation; seats added and reprocess asked: Active."""
    graph_emulator.set_seats("ENTERPRISEPACK", consumedUnits=3)

    async def states(directory: GraphDirectory) -> list[Any]:
        seen = []
        await directory.add_group_member(GROUP, JANE_ID)
        found = await directory.find_user(UserIdentifiers("jane.doe@contoso.com"))
        assert isinstance(found, Found)
        seen.append(found.user.license_states)
        graph_emulator.set_seats("ENTERPRISEPACK", enabled=10)
        await directory.reprocess_licenses(JANE_ID)
        found = await directory.find_user(UserIdentifiers("jane.doe@contoso.com"))
        assert isinstance(found, Found)
        seen.append(found.user.license_states)
        return seen

    before, after = run(graph_emulator, states)
    assert [(s.state, s.error) for s in before if s.sku_id == E3_SKU] == [
        ("Error", "CountViolation")
    ]
    assert [s.state for s in after if s.sku_id == E3_SKU] == ["Active"]
