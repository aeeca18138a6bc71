"""End to end: HR message on Azurite → development host running function_app.py →
Graph emulator over HTTP → events read back from `user-onboard-events`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack.stack import LocalStack

SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
FAST = {
    "SWEEP_SCHEDULE": "*/1 * * * * *",
    "SYNC_TIMEOUT": "PT6S",
    "RECHECK_INITIAL_DELAY": "PT1S",
    "RECHECK_MAX_DELAY": "PT2S",
    "DEFAULT_USAGE_LOCATION": "FR",
    "DEFAULT_LICENSES": "",
    # A killed host's messages come back after 3 s instead of 10 minutes.
    "DEVHOST_MESSAGE_LEASE_SECONDS": "3",
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    directory = json.loads((SAMPLES / "directory.json").read_text())
    directory["users"] = []
    with LocalStack(tmp_path, directory, settings=FAST) as running:
        yield running


def add_users(stack: LocalStack, count: int, prefix: str = "user", **fields: Any) -> list[str]:
    assert stack.graph is not None
    upns = [f"{prefix}{n}@contoso.com" for n in range(count)]
    for upn in upns:
        stack.graph.add_user(
            {
                "userPrincipalName": upn,
                "usageLocation": "FR",
                "onPremisesSyncEnabled": True,
                **fields,
            }
        )
    return upns


def onboard(request_id: str, upn: str) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "userPrincipalName": upn,
        "licenses": [{"skuPartNumber": "ENTERPRISEPACK", "disabledPlans": ["YAMMER_ENTERPRISE"]}],
    }


def outcome(event: dict[str, Any]) -> str:
    return str(event["type"].rsplit(".", 1)[-1])


def e3_consumed(stack: LocalStack) -> int:
    assert stack.graph is not None
    skus = stack.graph.directory.subscribed_skus()
    return next(int(s["consumedUnits"]) for s in skus if s["skuPartNumber"] == "ENTERPRISEPACK")


def test_synced_late_and_never_synced_users_each_reach_their_terminal_event(
    stack: LocalStack,
) -> None:
    """Licensed at once, licensed after a sync, and sync_timeout at the deadline."""
    assert stack.graph is not None
    (now,) = add_users(stack, 1, "now")
    (late,) = add_users(stack, 1, "late", onPremisesSyncEnabled=None)
    (never,) = add_users(stack, 1, "never", onPremisesSyncEnabled=None)
    stack.start_host()
    for request_id, upn in (("E2E-1", now), ("E2E-2", late), ("E2E-3", never)):
        stack.post(onboard(request_id, upn))
    stack.wait_for_terminal(["E2E-1"], 20)
    stack.graph.sync_user(late)
    terminal = stack.wait_for_terminal(["E2E-1", "E2E-2", "E2E-3"], 30)
    assert outcome(terminal["E2E-1"]) == "licensed"
    assert outcome(terminal["E2E-2"]) == "licensed"
    assert outcome(terminal["E2E-3"]) == "failed"
    assert terminal["E2E-3"]["data"]["reason"]["code"] == "sync_timeout"
    awaiting = {e["subject"] for e in stack.events_seen if outcome(e) == "awaiting_sync"}
    assert awaiting == {"E2E-2", "E2E-3"}
    assert stack.count("user-onboard-pending") == 0


def test_the_same_request_posted_twice_is_assigned_once_with_the_same_event_ids(
    stack: LocalStack,
) -> None:
    """Guarantee 3 through the whole stack: one seat, one event id."""
    (upn,) = add_users(stack, 1)
    before = e3_consumed(stack)
    stack.start_host()
    stack.post(onboard("E2E-DUP", upn))
    stack.wait_for_terminal(["E2E-DUP"], 20)
    stack.post(onboard("E2E-DUP", upn))
    deadline = time.monotonic() + 20
    while (
        time.monotonic() < deadline and sum(outcome(e) == "licensed" for e in stack.events_seen) < 2
    ):
        stack.drain_events()
        time.sleep(0.2)
    licensed = [e for e in stack.events_seen if outcome(e) == "licensed"]
    assert [e["id"] for e in licensed] == ["E2E-DUP:licensed", "E2E-DUP:licensed"]
    assert licensed[1]["data"]["licenses"][0]["status"] == "already_assigned"
    assert e3_consumed(stack) == before + 1
    assert stack.graph is not None
    assigns = [r for r in stack.graph.requests() if r["path"].endswith("/assignLicense")]
    assert len(assigns) == 1


def test_killing_the_host_mid_batch_and_restarting_it_loses_nothing(stack: LocalStack) -> None:
    """Guarantee 1: every request ends terminal, each seat used once."""
    assert stack.graph is not None
    upns = add_users(stack, 40)
    before = e3_consumed(stack)
    # Slow Graph writes keep the batch in flight when the host is killed.
    stack.graph.add_fault(method="POST", path="assignLicense$", delayMs=400)
    ids = [f"E2E-K{n}" for n in range(len(upns))]
    stack.start_host()
    for request_id, upn in zip(ids, upns, strict=True):
        stack.post(onboard(request_id, upn))
    while not stack.terminal_events():
        stack.drain_events()
        time.sleep(0.05)
    stack.stop_host(kill=True)
    assert len(stack.terminal_events()) < len(ids), "the kill came too late to prove anything"
    stack.start_host()
    terminal = stack.wait_for_terminal(ids, 60)
    assert set(terminal) == set(ids)
    assert {outcome(e) for e in terminal.values()} == {"licensed"}
    assert e3_consumed(stack) == before + len(ids)
    assert stack.count("user-onboard-poison") == 0


def test_a_graph_503_and_429_storm_poisons_nothing(stack: LocalStack) -> None:
    """Guarantee 2: Graph trouble parks requests; they all end licensed, none poisoned."""
    assert stack.graph is not None
    upns = add_users(stack, 15)
    stack.graph.add_fault(method="GET", path="^/users", status=503, rate=0.6)
    stack.graph.add_fault(method="POST", path="assignLicense$", status=429, retryAfter=1, rate=0.5)
    stack.graph.add_fault(method="POST", path="^/\\$batch", status=503, rate=0.3)
    ids = [f"E2E-S{n}" for n in range(len(upns))]
    stack.start_host()
    for request_id, upn in zip(ids, upns, strict=True):
        stack.post(onboard(request_id, upn))
    # The storm lasts until Graph has answered both 503 and 429, counted from the host's
    # first calls rather than from posting: a loaded machine may start the host late.
    storm_end = time.monotonic() + 30
    while not {429, 503} <= {r["status"] for r in stack.graph.requests()}:
        assert time.monotonic() < storm_end, "the storm never reached Graph"
        time.sleep(0.05)
    stack.graph.clear_faults()  # the storm passes before the deadline
    terminal = stack.wait_for_terminal(ids, 40)
    assert {outcome(terminal[i]) for i in ids} == {"licensed"}
    assert stack.count("user-onboard-poison") == 0
    statuses = {r["status"] for r in stack.graph.requests()}
    assert {429, 503} <= statuses


def test_invalid_and_poisoned_messages_end_in_rejected_events(stack: LocalStack) -> None:
    """A typo is rejected at once; a message on the poison queue is reported and removed."""
    stack.queue("user-onboard-poison").send_message(json.dumps(onboard("E2E-P", "x@contoso.com")))
    stack.start_host()
    stack.post({"requestId": "E2E-T", "userPrincipleName": "x@contoso.com"})
    stack.post("this is not json")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(stack.terminal_events()) < 3:
        stack.drain_events()
        time.sleep(0.2)
    terminal = stack.terminal_events()
    assert terminal["E2E-T"]["data"]["reason"]["code"] == "invalid_message"
    assert terminal["E2E-P"]["data"]["reason"]["code"] == "poison"
    (broken,) = [e for key, e in terminal.items() if key.startswith("message:")]
    assert broken["id"].endswith(":rejected")
    assert "subject" not in broken
    assert stack.count("user-onboard-poison") == 0
