"""End to end for contract v1.1 through the development host: forcing a sync of one user,
start dates, and group-based licensing, against the Graph emulator over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local_stack.stack import REPO, LocalStack

SAMPLES = REPO / "local_stack" / "samples"
SP = "00d41b14-7958-45ad-9d75-d52fa29e02a1"
JOB = "AD2AADProvisioning.fd1c9b9e8077402c8bc03a7186c8f976"
E3_GROUP = "3b0a5c1e-8d2f-4e6a-9b7c-1d2e3f4a5b6c"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
FAST = {
    "SWEEP_SCHEDULE": "*/1 * * * * *",
    "SYNC_TIMEOUT": "PT40S",
    "RECHECK_INITIAL_DELAY": "PT1S",
    "RECHECK_MAX_DELAY": "PT2S",
    "DEFAULT_USAGE_LOCATION": "FR",
    "DEFAULT_LICENSES": "",
}
StackFactory = Callable[..., LocalStack]


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[StackFactory]:
    started: list[LocalStack] = []

    def make(settings: dict[str, str], **directory_changes: Any) -> LocalStack:
        directory = json.loads((SAMPLES / "directory.json").read_text())
        directory["users"] = []
        directory.update(directory_changes)
        stack = LocalStack(tmp_path, directory, settings={**FAST, **settings}).start()
        started.append(stack)
        return stack

    yield make
    for stack in started:
        stack.stop()


def kind(event: dict[str, Any]) -> str:
    return str(event["type"].rsplit(".", 1)[-1])


def onboard(request_id: str, upn: str, **extra: Any) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "userPrincipalName": upn,
        "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}],
        **extra,
    }


def events_of(stack: LocalStack, request_id: str) -> list[dict[str, Any]]:
    return [e for e in stack.events_seen if e.get("subject") == request_id]


# --- forcing a sync of one user (issue 11) --------------------------------------------------


def cloud_sync(cycle_seconds: int) -> dict[str, Any]:
    return {
        "synchronization": {
            "jobs": [
                {
                    "servicePrincipalId": SP,
                    "jobId": JOB,
                    "ruleId": "6c409270-f78a-4bc6-af23-7cf3ab6482fe",
                }
            ],
            "cycleSeconds": cycle_seconds,
            "onDemandDelaySeconds": 1,
        }
    }


def awaiting_sync_user(stack: LocalStack, upn: str, dn: str) -> None:
    assert stack.graph is not None
    stack.graph.add_user(
        {
            "userPrincipalName": upn,
            "usageLocation": "FR",
            "onPremisesDistinguishedName": dn,
            "awaitingSync": True,
        }
    )


def test_a_forced_sync_gets_a_new_user_licensed_long_before_the_regular_cycle(
    make_stack: StackFactory,
) -> None:
    """awaiting_sync with forcedSync requested, then licensed; the 10-minute cycle never ran."""
    stack = make_stack({"CLOUD_SYNC_JOB": f"{SP}/{JOB}"}, **cloud_sync(600))
    dn = "CN=New Starter,OU=Staff,DC=contoso,DC=com"
    awaiting_sync_user(stack, "new.starter@contoso.com", dn)
    stack.start_host()
    stack.post(onboard("SYNC-1", "new.starter@contoso.com", onPremisesDistinguishedName=dn))
    terminal = stack.wait_for_terminal(["SYNC-1"], 30)
    assert kind(terminal["SYNC-1"]) == "licensed"
    (awaiting,) = [e for e in events_of(stack, "SYNC-1") if kind(e) == "awaiting_sync"]
    assert awaiting["data"]["forcedSync"]["status"] == "requested"
    assert stack.graph is not None
    assert len(stack.graph.provision_on_demand_calls()) == 1


def test_a_forced_sync_cloud_sync_fails_reports_it_and_waits_for_the_regular_sync(
    make_stack: StackFactory,
) -> None:
    """A DN Cloud Sync does not know: forcedSync failed, the request waits, and the next
    regular cycle lets it finish licensed."""
    stack = make_stack({"CLOUD_SYNC_JOB": f"{SP}/{JOB}"}, **cloud_sync(600))
    awaiting_sync_user(stack, "late.starter@contoso.com", "CN=Late Starter,DC=contoso,DC=com")
    stack.start_host()
    wrong = "CN=Someone Else,DC=contoso,DC=com"
    stack.post(onboard("SYNC-2", "late.starter@contoso.com", onPremisesDistinguishedName=wrong))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not events_of(stack, "SYNC-2"):
        stack.drain_events()
        time.sleep(0.2)
    (awaiting,) = events_of(stack, "SYNC-2")
    assert awaiting["data"]["forcedSync"]["status"] == "failed"
    assert stack.graph is not None
    stack.graph.run_sync_cycle()
    terminal = stack.wait_for_terminal(["SYNC-2"], 20)
    assert kind(terminal["SYNC-2"]) == "licensed"
    assert len(stack.graph.provision_on_demand_calls()) == 1


def test_a_misconfigured_cloud_sync_job_stops_the_app_naming_the_setting() -> None:
    """Indexing fails with `app setting CLOUD_SYNC_JOB: ...`."""
    result = subprocess.run(
        [sys.executable, "-c", "import function_app"],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "CLOUD_SYNC_JOB": "AD2AADProvisioning.fd1c9b9e8077402c8bc03a7186c8f976",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "app setting CLOUD_SYNC_JOB" in result.stderr


# --- start dates (issue 12) -----------------------------------------------------------------


def test_nothing_is_asked_of_graph_before_the_start_window(make_stack: StackFactory) -> None:
    """A window 6 s ahead: scheduled at once, no Graph call for the user before it, then
    licensed like a fresh request."""
    stack = make_stack({"LICENSE_LEAD_TIME": "PT0S"})
    assert stack.graph is not None
    user = stack.graph.add_user(
        {
            "userPrincipalName": "starter@contoso.com",
            "usageLocation": "FR",
            "onPremisesSyncEnabled": True,
        }
    )
    stack.start_host()
    window = datetime.now(UTC) + timedelta(seconds=6)
    stack.post(onboard("START-1", "starter@contoso.com", startDate=window.isoformat()))
    terminal = stack.wait_for_terminal(["START-1"], 30)
    assert [kind(e) for e in events_of(stack, "START-1")] == ["scheduled", "licensed"]
    scheduled = events_of(stack, "START-1")[0]
    assert scheduled["data"]["notBefore"].startswith(window.strftime("%Y-%m-%dT%H:%M:%S"))
    assert kind(terminal["START-1"]) == "licensed"
    mentions = [
        r
        for r in stack.graph.requests()
        if "starter%40contoso.com" in r["path"] + r["query"]
        or "starter@contoso.com" in r["path"] + json.dumps(r["query"])
        or user["id"] in r["path"]
    ]
    assert mentions, "the user was never looked up"
    window_z = window.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert all(r["time"] >= window_z for r in mentions), [r["time"] for r in mentions]


# --- group-based licensing (issue 13) -------------------------------------------------------


GROUP_MODE = {"LICENSING_MODE": "group", "LICENSE_GROUPS": f"ENTERPRISEPACK={E3_GROUP}"}


def group_member_user(stack: LocalStack, upn: str) -> dict[str, Any]:
    assert stack.graph is not None
    return stack.graph.add_user(
        {"userPrincipalName": upn, "usageLocation": "FR", "onPremisesSyncEnabled": True}
    )


def test_group_mode_licenses_only_once_the_state_is_active(make_stack: StackFactory) -> None:
    """Added to the group, no event while Entra processes (3 s), then licensed/assigned."""
    stack = make_stack(GROUP_MODE, groupLicenseDelaySeconds=3)
    user = group_member_user(stack, "grouped@contoso.com")
    stack.start_host()
    stack.post(onboard("GRP-1", "grouped@contoso.com"))
    terminal = stack.wait_for_terminal(["GRP-1"], 30)
    licensed = terminal["GRP-1"]
    assert kind(licensed) == "licensed"
    assert licensed["data"]["licenses"][0]["status"] == "assigned"
    assert stack.graph is not None
    states = stack.graph.license_states(user["id"])
    assert [(s["skuId"], s["state"]) for s in states] == [(E3, "Active")]
    lookups = [r for r in stack.graph.requests() if user["id"] in json.dumps(r.get("responseBody"))]
    seen_pending = [
        r
        for r in lookups
        if isinstance(r.get("responseBody"), dict)
        and r["responseBody"].get("licenseAssignmentStates") == []
    ]
    assert seen_pending, "the app never saw the license still processing"


def test_a_group_out_of_seats_blocks_then_licenses_once_seats_are_added(
    make_stack: StackFactory,
) -> None:
    """CountViolation: blocked/no_seats; more seats: the app asks Entra to reprocess."""
    stack = make_stack(GROUP_MODE, groupLicenseDelaySeconds=1)
    assert stack.graph is not None
    group_member_user(stack, "crowded@contoso.com")
    stack.graph.set_seats("ENTERPRISEPACK", enabled=0)
    stack.start_host()
    stack.post(onboard("GRP-2", "crowded@contoso.com"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not events_of(stack, "GRP-2"):
        stack.drain_events()
        time.sleep(0.2)
    (blocked,) = events_of(stack, "GRP-2")
    assert blocked["data"]["reason"]["code"] == "no_seats"
    stack.graph.set_seats("ENTERPRISEPACK", enabled=50)
    terminal = stack.wait_for_terminal(["GRP-2"], 30)
    assert kind(terminal["GRP-2"]) == "licensed"
    reprocess = [
        r for r in stack.graph.requests() if r["path"].endswith("reprocessLicenseAssignment")
    ]
    assert reprocess


def test_a_mutually_exclusive_group_license_fails_with_the_contracts_code(
    make_stack: StackFactory,
) -> None:
    """The user holds a conflicting plan: Error/MutuallyExclusiveViolation, failed."""
    exchange_sku = "4b9405b0-7788-4568-add1-99614e613b69"
    skus = json.loads((SAMPLES / "directory.json").read_text())["skus"]
    exchange = {
        "skuId": exchange_sku,
        "skuPartNumber": "EXCHANGESTANDARD",
        "enabled": 5,
        "servicePlans": [
            {
                "servicePlanId": "9aaf7827-d63c-4b61-89c3-182f06f82e5c",
                "servicePlanName": "EXCHANGE_S_STANDARD",
            }
        ],
    }
    stack = make_stack(
        GROUP_MODE,
        groupLicenseDelaySeconds=1,
        skus=[*skus, exchange],
        planRules={"mutuallyExclusive": [["EXCHANGE_S_ENTERPRISE", "EXCHANGE_S_STANDARD"]]},
    )
    assert stack.graph is not None
    stack.graph.add_user(
        {
            "userPrincipalName": "clash@contoso.com",
            "usageLocation": "FR",
            "onPremisesSyncEnabled": True,
            "assignedLicenses": [{"skuId": exchange_sku, "disabledPlans": []}],
        }
    )
    stack.start_host()
    stack.post(onboard("GRP-3", "clash@contoso.com"))
    terminal = stack.wait_for_terminal(["GRP-3"], 30)
    failed = terminal["GRP-3"]
    assert kind(failed) == "failed"
    assert failed["data"]["reason"]["code"] == "mutually_exclusive_plans"
    assert failed["data"]["graphError"]["error"] == "MutuallyExclusiveViolation"
