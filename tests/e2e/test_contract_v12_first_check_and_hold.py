"""End to end for contract v1.2's first-check rule and poison hold, through the development
host, Azurite and the Graph emulator over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from local_stack.stack import LocalStack
from ops.store import Store
from ops.view import list_requests, replay
from shared.settings import StorageConnection

SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"
FAST = {
    "SWEEP_SCHEDULE": "*/1 * * * * *",
    "SYNC_TIMEOUT": "PT30S",
    "RECHECK_INITIAL_DELAY": "PT1S",
    "RECHECK_MAX_DELAY": "PT2S",
    "DEFAULT_USAGE_LOCATION": "FR",
    "DEFAULT_LICENSES": "",
}
PAST = "2020-01-01T00:00:00Z"


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    settings = {**FAST, **getattr(request, "param", {})}
    directory = json.loads((SAMPLES / "directory.json").read_text())
    directory["users"] = []
    with LocalStack(tmp_path, directory, settings=settings) as running:
        yield running


def onboard(request_id: str, upn: str, **extra: Any) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "userPrincipalName": upn,
        "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}],
        **extra,
    }


def words(stack: LocalStack, request_id: str) -> list[str]:
    return [
        e["type"].rsplit(".", 1)[-1] for e in stack.events_seen if e.get("subject") == request_id
    ]


def wait_until(condition: Any, timeout: float, stack: LocalStack) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        stack.drain_events()
        time.sleep(0.1)


def test_a_past_deadline_request_is_checked_once_even_while_graph_pauses_the_app(
    stack: LocalStack,
) -> None:
    """Another request's 429 (Retry-After 8) closes the app's gate: a past-deadline request
    for a synced user ends licensed after the wait, and one for a user who does not exist
    ends sync_timeout with lastSeen not_found, the check actually made."""
    graph = stack.graph
    assert graph is not None
    for upn in ("first@contoso.com", "late@contoso.com"):
        graph.add_user({"userPrincipalName": upn, "onPremisesSyncEnabled": True})
    graph.add_fault(path="^/users/first@contoso.com", status=429, retryAfter=8, count=1)
    stack.start_host()
    stack.post(onboard("FC-1", "first@contoso.com"))
    wait_until(lambda: any(c["status"] == 429 for c in graph.requests()), 20, stack)
    stack.post(onboard("FC-2", "late@contoso.com", syncDeadline=PAST))
    stack.post(onboard("FC-3", "nobody@contoso.com", syncDeadline=PAST))
    terminal = stack.wait_for_terminal(["FC-1", "FC-2", "FC-3"], 45)
    assert terminal["FC-1"]["type"] == "onboarding.user.licensed"
    assert terminal["FC-2"]["type"] == "onboarding.user.licensed"
    failed = terminal["FC-3"]["data"]
    assert (failed["reason"]["code"], failed["lastSeen"]) == ("sync_timeout", "not_found")
    looked_up = [c for c in graph.requests() if "nobody" in unquote(c["path"] + c["query"])]
    assert looked_up, "the request failed without a lookup of its user"
    assert {c["status"] for c in looked_up} <= {200, 404}  # answered: 404 by key, [] by filter
    assert words(stack, "FC-2") == ["licensed"]


@pytest.mark.parametrize("stack", [{"POISON_HOLD": "PT12S"}], indirect=True)
def test_a_poisoned_request_is_announced_blocked_then_replayed_or_rejected_never_both(
    stack: LocalStack,
) -> None:
    """Two poisoned messages: both blocked/poisoned at once; the one an operator replays
    ends licensed, the other rejected/poison when the hold is over."""
    graph = stack.graph
    assert graph is not None
    graph.add_user({"userPrincipalName": "held@contoso.com", "onPremisesSyncEnabled": True})
    poison = stack.queue("user-onboard-poison")
    poison.send_message(json.dumps(onboard("PH-1", "held@contoso.com")))
    poison.send_message(json.dumps(onboard("PH-2", "held@contoso.com")))
    stack.start_host()
    wait_until(lambda: {"PH-1", "PH-2"} <= _blocked(stack), 20, stack)
    assert stack.azurite is not None
    store = Store.open(StorageConnection(connection_string=stack.azurite.connection_string))
    try:
        held = asyncio.run(list_requests(store, {"held"})).kept
        (chosen,) = [item for item in held if item.request_id == "PH-1"]
        assert asyncio.run(replay(store, [chosen.message_id])).exit_code == 0
    finally:
        store.close()
    terminal = stack.wait_for_terminal(["PH-1", "PH-2"], 40)
    assert terminal["PH-1"]["type"] == "onboarding.user.licensed"
    assert terminal["PH-2"]["data"]["reason"]["code"] == "poison"
    stack.wait_for_terminal([], 3)  # anything published late would show up here
    assert words(stack, "PH-1") == ["blocked", "licensed"]
    assert words(stack, "PH-2") == ["blocked", "rejected"]
    (blocked,) = [e for e in stack.events_seen if e["id"] == "PH-1:blocked"]
    assert blocked["data"]["reason"]["code"] == "poisoned"


def _blocked(stack: LocalStack) -> set[str]:
    return {e["subject"] for e in stack.events_seen if e["id"].endswith(":blocked")}
