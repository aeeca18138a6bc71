"""End to end against a Graph that behaves like a real tenant on its worst day: replication
lag right after a user appears, a permission not granted (then granted), and an app whose
throttling budget is spent. Messages on Azurite, the development host running
function_app.py, the Graph emulator over HTTP, events read back from the events queue."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack.stack import LocalStack

SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"
FAST = {
    "SWEEP_SCHEDULE": "*/1 * * * * *",
    "SYNC_TIMEOUT": "PT20S",
    "RECHECK_INITIAL_DELAY": "PT1S",
    "RECHECK_MAX_DELAY": "PT2S",
    "DEFAULT_USAGE_LOCATION": "FR",
    "DEFAULT_LICENSES": "",
}
# What infra/ grants the app when SET_USAGE_LOCATION is false: no User.ReadWrite.All,
# which would also cover assignLicense.
GRANTED = ["User.Read.All", "LicenseAssignment.Read.All", "LicenseAssignment.ReadWrite.All"]

StackFactory = Callable[..., LocalStack]


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[StackFactory]:
    started: list[LocalStack] = []

    def make(**settings: str) -> LocalStack:
        directory = json.loads((SAMPLES / "directory.json").read_text())
        directory["users"] = []
        stack = LocalStack(tmp_path, directory, settings={**FAST, **settings}).start()
        started.append(stack)
        return stack

    yield make
    for stack in started:
        stack.stop()


def add_user(stack: LocalStack, upn: str, **fields: Any) -> None:
    assert stack.graph is not None
    stack.graph.add_user(
        {"userPrincipalName": upn, "usageLocation": "FR", "onPremisesSyncEnabled": True, **fields}
    )


def onboard(request_id: str, upn: str) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "userPrincipalName": upn,
        "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}],
    }


def kind(event: dict[str, Any]) -> str:
    return str(event["type"].rsplit(".", 1)[-1])


def events_of(stack: LocalStack, request_id: str) -> list[str]:
    return [kind(e) for e in stack.events_seen if e.get("subject") == request_id]


def test_a_user_who_has_just_appeared_is_licensed_despite_replication_lag(
    make_stack: StackFactory,
) -> None:
    """404 on the first writes, a key GET lagging the filter, and "invalid usage location"
    right after the app's own PATCH: all waited out, licensed, one seat."""
    stack = make_stack()
    assert stack.graph is not None
    add_user(
        stack,
        "fresh@contoso.com",
        usageLocation=None,
        lag={"writeNotFound": 4, "keyLookupLag": 2, "usageLocationLag": 2},
    )
    stack.start_host()
    stack.post(onboard("LAG-1", "fresh@contoso.com"))
    terminal = stack.wait_for_terminal(["LAG-1"], 40)
    assert kind(terminal["LAG-1"]) == "licensed"
    assert terminal["LAG-1"]["data"]["usageLocation"] == "FR"
    calls = stack.graph.requests()
    statuses = {(c["method"], c["status"]) for c in calls}
    assert ("PATCH", 404) in statuses  # the lag was met, not avoided
    assert ("POST", 400) in statuses or ("POST", 404) in statuses
    assigned = [c for c in calls if c["path"].endswith("/assignLicense") and c["status"] == 200]
    assert len(assigned) == 1
    assert stack.count("user-onboard-poison") == 0


def test_a_missing_permission_blocks_then_fails_graph_access_denied_at_the_deadline(
    make_stack: StackFactory,
) -> None:
    """No LicenseAssignment.ReadWrite.All: blocked (graph_access_denied) once, an ERROR in
    the host's log naming the permission, then failed/graph_access_denied with it."""
    stack = make_stack(SYNC_TIMEOUT="PT6S")
    assert stack.graph is not None
    add_user(stack, "denied@contoso.com")
    stack.graph.set_permissions([p for p in GRANTED if p != "LicenseAssignment.ReadWrite.All"])
    stack.start_host()
    stack.post(onboard("DENY-1", "denied@contoso.com"))
    terminal = stack.wait_for_terminal(["DENY-1"], 30)
    failed = terminal["DENY-1"]
    assert kind(failed) == "failed"
    assert failed["data"]["reason"]["code"] == "graph_access_denied"
    assert failed["data"]["permission"] == "LicenseAssignment.ReadWrite.All"
    assert failed["data"]["lastError"]["status"] == 403
    assert events_of(stack, "DENY-1") == ["blocked", "failed"]
    (blocked,) = [e for e in stack.events_seen if kind(e) == "blocked"]
    assert blocked["data"]["reason"]["code"] == "graph_access_denied"
    assert "ERROR" in stack.host_log()
    assert "LicenseAssignment.ReadWrite.All" in stack.host_log()


def test_a_permission_granted_mid_way_lets_the_blocked_request_finish_licensed(
    make_stack: StackFactory,
) -> None:
    """blocked while the grant is missing; licensed once an administrator grants it."""
    stack = make_stack()
    assert stack.graph is not None
    add_user(stack, "later@contoso.com")
    stack.graph.set_permissions([p for p in GRANTED if p != "LicenseAssignment.ReadWrite.All"])
    stack.start_host()
    stack.post(onboard("GRANT-1", "later@contoso.com"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "blocked" not in events_of(stack, "GRANT-1"):
        stack.drain_events()
        time.sleep(0.2)
    assert events_of(stack, "GRANT-1") == ["blocked"]
    stack.graph.grant("LicenseAssignment.ReadWrite.All")
    terminal = stack.wait_for_terminal(["GRANT-1"], 20)
    assert kind(terminal["GRANT-1"]) == "licensed"
    assert events_of(stack, "GRANT-1") == ["blocked", "licensed"]


def test_an_app_out_of_throttling_budget_still_licenses_everyone_and_poisons_nothing(
    make_stack: StackFactory,
) -> None:
    """Graph's per-app budget spent (429 with Retry-After for every call of the app): the
    app waits it out, parking what cannot wait, and every request ends licensed."""
    stack = make_stack(SYNC_TIMEOUT="PT60S")
    assert stack.graph is not None
    upns = [f"busy{n}@contoso.com" for n in range(12)]
    for upn in upns:
        add_user(stack, upn)
    # 12 lookups and subscribedSkus take 15 of the 20 units of the first 10 s window.
    stack.graph.set_throttle(units_per_10s=20, writes_per_150s=3000)
    ids = [f"BUSY-{n}" for n in range(len(upns))]
    stack.start_host()
    for request_id, upn in zip(ids, upns, strict=True):
        stack.post(onboard(request_id, upn))
    terminal = stack.wait_for_terminal(ids, 60)
    assert {kind(terminal[i]) for i in ids} == {"licensed"}
    assert stack.count("user-onboard-poison") == 0
    refused = [c for c in stack.graph.requests() if c["status"] == 429]
    assert refused, "the budget was never exhausted: the test proves nothing"
    assigned = [c for c in stack.graph.requests() if c["path"].endswith("/assignLicense")]
    assert len([c for c in assigned if c["status"] == 200]) == len(ids)
