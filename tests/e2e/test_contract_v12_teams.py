"""End to end for contract v1.2's Teams Phone step: the development host running
function_app.py, Azurite, and the Graph emulator's Teams over HTTP (wall clock; Teams
provisions a user 2 s after its license, orders take 3 s, TEAMS_READY_TIMEOUT is 12 s)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack.stack import LocalStack
from local_stack.stress.crashpoints import CRASH_EXIT_CODE, write_app_folder

SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
MCOEV = "e43b5b99-8dfb-405f-9987-dc307f34bcbd"
FAST = {
    "SWEEP_SCHEDULE": "*/1 * * * * *",
    "SYNC_TIMEOUT": "PT30S",
    "RECHECK_INITIAL_DELAY": "PT1S",
    "RECHECK_MAX_DELAY": "PT2S",
    "DEFAULT_USAGE_LOCATION": "FR",
    "DEFAULT_LICENSES": "",
    "TEAMS_PHONE": "true",
    "TEAMS_READY_TIMEOUT": "PT12S",
    "DEVHOST_MESSAGE_LEASE_SECONDS": "3",
}
PHONE_LICENSES = [{"skuPartNumber": "ENTERPRISEPACK"}, {"skuPartNumber": "MCOEV"}]


def start(path: Path) -> LocalStack:
    directory = json.loads((SAMPLES / "directory.json").read_text())
    directory["users"] = []
    directory["teams"].update(provisioningDelaySeconds=2, moveDelaySeconds=0)
    return LocalStack(path, directory, settings=FAST).start()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    running = start(tmp_path_factory.mktemp("teams"))
    try:
        running.start_host()
        yield running
    finally:
        running.stop()


def new_user(stack: LocalStack, upn: str, *licenses: str, **teams: Any) -> str:
    assert stack.graph is not None
    spec: dict[str, Any] = {
        "userPrincipalName": upn,
        "usageLocation": "FR",
        "onPremisesSyncEnabled": True,
        "assignedLicenses": [{"skuId": sku} for sku in licenses],
    }
    if teams:
        spec["teams"] = teams
    return str(stack.graph.add_user(spec)["id"])


def phone(request_id: str, upn: str, number: str, kind: str = "operatorConnect") -> dict[str, Any]:
    return {
        "requestId": request_id,
        "userPrincipalName": upn,
        "licenses": PHONE_LICENSES,
        "teams": {"phoneNumber": number, "numberType": kind},
    }


def words(stack: LocalStack, request_id: str) -> list[str]:
    return [
        e["type"].rsplit(".", 1)[-1] for e in stack.events_seen if e.get("subject") == request_id
    ]


def orders_of(stack: LocalStack, number: str) -> list[dict[str, Any]]:
    assert stack.graph is not None
    return [o for o in stack.graph.teams_operations() if o["telephoneNumber"] == number]


def test_a_new_hire_is_licensed_then_provisioning_then_licensed_with_the_number(
    stack: LocalStack,
) -> None:
    """Licenses on, `provisioning` while Teams provisions the user, one order, and
    `licensed` with data.teams; the number is the user's in Teams."""
    assert stack.graph is not None
    stack.graph.add_teams_number(
        {"telephoneNumber": "+33155550301", "numberType": "operatorConnect"}
    )
    user_id = new_user(stack, "phone.one@contoso.com")
    stack.post(phone("TP-1", "phone.one@contoso.com", "+33155550301"))
    licensed = stack.wait_for_terminal(["TP-1"], 30)["TP-1"]
    assert words(stack, "TP-1") == ["provisioning", "licensed"]
    assert licensed["data"]["teams"] == {
        "phoneNumber": "+33155550301",
        "numberType": "operatorConnect",
        "status": "assigned",
    }
    assert {lic["status"] for lic in licensed["data"]["licenses"]} == {"assigned"}
    assert stack.graph.teams_number("+33155550301")["assignmentTargetId"] == user_id
    assert len(orders_of(stack, "+33155550301")) == 1


def test_an_sfb_onprem_user_is_blocked_then_licensed_once_moved_to_teams(
    stack: LocalStack,
) -> None:
    """Homed in Skype for Business Server: blocked/sfb_onprem_user until an administrator
    moves the user (the emulator's control API), then the number."""
    assert stack.graph is not None
    new_user(stack, "sky.two@contoso.com", E3, MCOEV, accountType="sfbOnPremUser")
    stack.post(phone("TP-2", "sky.two@contoso.com", "+33155550302", "directRouting"))
    deadline = time.monotonic() + 15
    while "blocked" not in words(stack, "TP-2"):
        assert time.monotonic() < deadline, "never blocked"
        stack.drain_events()
        time.sleep(0.2)
    (blocked,) = [e for e in stack.events_seen if e["id"] == "TP-2:blocked"]
    assert blocked["data"]["reason"]["code"] == "sfb_onprem_user"
    stack.graph.move_to_teams("sky.two@contoso.com")
    licensed = stack.wait_for_terminal(["TP-2"], 20)["TP-2"]
    assert licensed["type"] == "onboarding.user.licensed"
    assert licensed["data"]["teams"]["status"] == "assigned"
    assert words(stack, "TP-2") == ["provisioning", "blocked", "licensed"]


def test_a_number_assigned_to_someone_else_fails_phone_number_rejected_with_the_licenses(
    stack: LocalStack,
) -> None:
    """Someone else's number: failed/phone_number_rejected, graphError, the licenses that
    stay on the user, and no order."""
    assert stack.graph is not None
    owner = new_user(stack, "owner.three@contoso.com", E3, MCOEV)
    stack.graph.add_teams_number(
        {
            "telephoneNumber": "+33155550303",
            "numberType": "operatorConnect",
            "assignmentTargetId": owner,
        }
    )
    new_user(stack, "phone.three@contoso.com")
    stack.post(phone("TP-3", "phone.three@contoso.com", "+33155550303"))
    failed = stack.wait_for_terminal(["TP-3"], 30)["TP-3"]["data"]
    assert failed["reason"]["code"] == "phone_number_rejected"
    assert failed["graphError"]["code"] == "userAssigned"
    assert {lic["skuPartNumber"]: lic["status"] for lic in failed["licenses"]} == {
        "ENTERPRISEPACK": "assigned",
        "MCOEV": "assigned",
    }
    assert orders_of(stack, "+33155550303") == []


def test_teams_never_ready_ends_teams_not_ready_at_its_deadline(stack: LocalStack) -> None:
    """Teams never provisions the user: teams_not_ready at TEAMS_READY_TIMEOUT (12 s after
    the licenses), lastSeen not_found, the licenses listed."""
    new_user(stack, "slow.four@contoso.com", provisioningDelaySeconds=3600)
    stack.post(phone("TP-4", "slow.four@contoso.com", "+33155550304"))
    failed = stack.wait_for_terminal(["TP-4"], 40)["TP-4"]["data"]
    assert (failed["reason"]["code"], failed["lastSeen"]) == ("teams_not_ready", "not_found")
    assert len(failed["licenses"]) == 2
    assert words(stack, "TP-4") == ["provisioning", "failed"]


def test_a_request_without_phone_system_anywhere_fails_missing_prerequisite_with_no_write(
    stack: LocalStack,
) -> None:
    """E3 only, and the user holds nothing with MCOEV: failed before any write."""
    assert stack.graph is not None
    user_id = new_user(stack, "nophone.five@contoso.com")
    request = {
        **phone("TP-5", "nophone.five@contoso.com", "+33155550305"),
        "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}],
    }
    stack.post(request)
    failed = stack.wait_for_terminal(["TP-5"], 20)["TP-5"]["data"]
    assert failed["reason"]["code"] == "missing_prerequisite"
    writes = [
        c
        for c in stack.graph.requests()
        if c["method"] in ("POST", "PATCH") and user_id in c["path"]
    ]
    assert writes == []
    assert stack.graph.user_record(user_id).get("assignedLicenses", []) == []


def test_a_kill_between_ordering_the_number_and_recording_it_does_not_order_twice(
    tmp_path: Path,
) -> None:
    """The host dies right after assignNumber returned (the crash point of the stress
    suite): the pending state it left has the intent, not the operation; the next host
    reads the number (pending, then the user's) and orders nothing more."""
    stack = start(tmp_path)
    try:
        assert stack.graph is not None
        new_user(stack, "crash.six@contoso.com", E3, MCOEV)  # Teams knows it already
        stack.graph.add_teams_number(
            {"telephoneNumber": "+33155550306", "numberType": "operatorConnect"}
        )
        crashing = stack.spawn_host(
            app_dir=write_app_folder(tmp_path / "shim"),
            extra_env={
                "STRESS_CRASH_ON": "teams.assign_number",
                "STRESS_CRASH_WHEN": "after",
                "STRESS_PENDING_LEASE_SECONDS": "3",
            },
            log_name="crashing.log",
        )
        stack.post(phone("TP-6", "crash.six@contoso.com", "+33155550306"))
        assert crashing.wait(timeout=30) == CRASH_EXIT_CODE
        assert len(orders_of(stack, "+33155550306")) == 1
        stack.start_host()
        licensed = stack.wait_for_terminal(["TP-6"], 30)["TP-6"]
        assert licensed["type"] == "onboarding.user.licensed"
        assert licensed["data"]["teams"]["status"] == "assigned"
        assert len(orders_of(stack, "+33155550306")) == 1
    finally:
        stack.stop()
