"""End to end, contract v1.2 "Events to every consumer": the development host running
function_app.py with `EVENT_GRID_TOPIC_ENDPOINT` set to the Event Grid stand-in, whose two
sample consumers (`hr-system`: every event; `telephony`: licensed, failed, provisioning)
read their own Azurite queues. What the queue got, each consumer gets, through crashes
between the two sinks and a topic that is down."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from local_stack.stack import LocalStack
from local_stack.stress.crashpoints import CRASH_EXIT_CODE, write_app_folder
from shared.adapters.outbox import OUTBOX
from shared.names import TABLE_REQUESTS

pytestmark = pytest.mark.stack

SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"
FAST = {
    "SWEEP_SCHEDULE": "*/1 * * * * *",
    "SYNC_TIMEOUT": "PT30S",
    "RECHECK_INITIAL_DELAY": "PT1S",
    "RECHECK_MAX_DELAY": "PT2S",
    "DEFAULT_USAGE_LOCATION": "FR",
    "DEFAULT_LICENSES": "",
}
# The crash-point host: pending lease and outbox grace of 2 s (crashpoints.load_app), and
# what a dead host was handling comes back after 1 s.
SHIM = {"STRESS_PENDING_LEASE_SECONDS": "2", "DEVHOST_MESSAGE_LEASE_SECONDS": "1"}
TELEPHONY = {"licensed", "failed", "provisioning"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    directory = json.loads((SAMPLES / "directory.json").read_text())
    directory["users"] = []
    state = tmp_path_factory.mktemp("event-grid-e2e")
    with LocalStack(state, directory, settings=FAST, event_grid=True) as running:
        yield running


@pytest.fixture
def grid(stack: LocalStack) -> Iterator[LocalStack]:
    """The stack with no host running, no fault left, and empty event queues."""
    assert stack.event_grid is not None
    stack.event_grid.clear_faults()
    for name in ("hr-system", "telephony"):
        stack.consumer_messages(name)
    stack.drain_events()
    stack.events_seen.clear()
    stack.consumer_events_seen.clear()
    yield stack
    stack.stop_host()
    stack.event_grid.clear_faults()


def add_user(stack: LocalStack, upn: str, *, synced: bool = True) -> None:
    assert stack.graph is not None
    stack.graph.add_user(
        {"userPrincipalName": upn, "usageLocation": "FR", "onPremisesSyncEnabled": synced or None}
    )


def onboard(request_id: str, upn: str, sku: str = "ENTERPRISEPACK") -> dict[str, Any]:
    return {"requestId": request_id, "userPrincipalName": upn, "licenses": [{"skuPartNumber": sku}]}


def word(event: dict[str, Any]) -> str:
    return str(event["type"].rsplit(".", 1)[-1])


def queue_ids(stack: LocalStack) -> set[str]:
    return {event["id"] for event in stack.events_seen}


def consumed(stack: LocalStack, consumer: str) -> list[dict[str, Any]]:
    stack.consumer_events(consumer)
    return stack.consumer_events_seen.get(consumer, [])


def outbox_rows(stack: LocalStack) -> list[str]:
    assert stack.azurite is not None
    with TableServiceClient.from_connection_string(stack.azurite.connection_string) as tables:
        table = tables.get_table_client(TABLE_REQUESTS)
        rows = table.query_entities("PartitionKey eq @pk", parameters={"pk": OUTBOX})
        return [str(row["EventId"]) for row in rows]


def wait_until_released(stack: LocalStack, timeout: float = 15.0) -> list[str]:
    """The outbox's rows, once empty or after `timeout`."""
    deadline = time.monotonic() + timeout
    while (rows := outbox_rows(stack)) and time.monotonic() < deadline:
        time.sleep(0.3)
    return rows


def test_two_consumers_each_receive_every_event_of_a_batch_that_their_filter_allows(
    grid: LocalStack,
) -> None:
    """hr-system gets every event the queue got, the same JSON; telephony only licensed
    and failed ones; nothing is left in the outbox. (Compared by id, as a consumer
    deduplicates: delivery is at least once on both paths.)"""
    stack = grid
    add_user(stack, "now@contoso.com")
    add_user(stack, "late@contoso.com", synced=False)
    add_user(stack, "unknown@contoso.com")
    batch = [
        onboard("EG-1", "now@contoso.com"),
        onboard("EG-2", "late@contoso.com"),
        onboard("EG-3", "unknown@contoso.com", sku="VISIOCLIENT"),
        {"requestId": "EG-4", "userPrincipleName": "typo@contoso.com"},
    ]
    stack.start_host()
    for body in batch:
        stack.post(body)

    def sync_late(event: dict[str, Any]) -> None:
        if event["id"] == "EG-2:awaiting_sync":
            assert stack.graph is not None
            stack.graph.sync_user("late@contoso.com")

    terminal = stack.wait_for_terminal(["EG-1", "EG-2", "EG-3", "EG-4"], 40, on_event=sync_late)
    assert {rid: word(e) for rid, e in terminal.items()} == {
        "EG-1": "licensed",
        "EG-2": "licensed",
        "EG-3": "failed",
        "EG-4": "rejected",
    }
    on_queue = {event["id"]: event for event in stack.events_seen}
    assert "EG-2:awaiting_sync" in on_queue
    assert stack.wait_for_topic(on_queue, 20)

    hr = consumed(stack, "hr-system")
    assert {e["id"] for e in hr} == set(on_queue)
    assert all(e == on_queue[e["id"]] for e in hr)
    telephony = consumed(stack, "telephony")
    wanted = {i for i, e in on_queue.items() if word(e) in TELEPHONY}
    assert (
        {e["id"] for e in telephony} == wanted == {"EG-1:licensed", "EG-2:licensed", "EG-3:failed"}
    )
    assert wait_until_released(stack) == []


@pytest.mark.parametrize(
    ("crash_on", "between"),
    [
        ("events.publish", "the queue has it, the topic does not"),
        ("topic.publish", "both have it, the outbox does not know"),
        ("outbox.hold", "held, neither has it"),
    ],
    ids=["after-the-queue", "after-the-topic", "after-the-hold"],
)
def test_a_crash_between_the_sinks_ends_with_both_holding_every_event(
    grid: LocalStack, tmp_path: Path, crash_on: str, between: str
) -> None:
    """The host dies right after the awaiting_sync announcement's step (`between`); the user
    syncs meanwhile, so the redelivered message is licensed without announcing anything:
    only the outbox can give the topic its awaiting_sync, and it does."""
    stack = grid
    rid = f"EG-C-{crash_on.replace('.', '-')}"
    upn = f"{rid.lower()}@contoso.com"
    add_user(stack, upn, synced=False)
    app = write_app_folder(tmp_path / "app")
    crashing = {**SHIM, "STRESS_CRASH_ON": crash_on, "STRESS_CRASH_AT": "1"}
    host = stack.start_host(
        app_dir=app, extra_env={**crashing, "STRESS_CRASH_WHEN": "after"}, log_name="crash.log"
    )
    stack.post(onboard(rid, upn))
    assert host.wait(timeout=30) == CRASH_EXIT_CODE
    assert stack.graph is not None
    stack.graph.sync_user(upn)

    stack.start_host(app_dir=app, extra_env=SHIM, log_name="after-crash.log")
    terminal = stack.wait_for_terminal([rid], 30)
    assert word(terminal[rid]) == "licensed"
    expected = {f"{rid}:awaiting_sync", f"{rid}:licensed"}
    assert stack.wait_for_topic(expected, 20), between
    stack.drain_events()
    assert queue_ids(stack) == expected
    assert {e["id"] for e in consumed(stack, "hr-system")} == expected
    assert {e["id"] for e in consumed(stack, "telephony")} == {f"{rid}:licensed"}
    assert wait_until_released(stack) == []


@pytest.mark.parametrize("outage", ["503", "down"])
def test_an_event_grid_outage_during_a_batch_loses_nothing_and_poisons_nothing(
    grid: LocalStack, outage: str
) -> None:
    """With the topic answering 503 (or not listening) for the whole batch, every request
    reaches its outcome on the queue as usual, nothing is poisoned, and once the topic is
    back the sweep gives each consumer every event it missed."""
    stack = grid
    assert stack.event_grid is not None
    prefix = f"EG-O{outage}"
    upns = [f"{prefix.lower()}-{n}@contoso.com" for n in range(4)]
    for upn in upns:
        add_user(stack, upn)
    if outage == "503":
        stack.event_grid.outage(503)
    else:
        stack.event_grid.go_down()
    try:
        stack.start_host()
        ids = [f"{prefix}-{n}" for n in range(len(upns))]
        for rid, upn in zip(ids, upns, strict=True):
            stack.post(onboard(rid, upn))
        stack.post({"requestId": f"{prefix}-bad", "licenses": "E3"})
        terminal = stack.wait_for_terminal([*ids, f"{prefix}-bad"], 40)
        assert sorted(word(e) for e in terminal.values()) == ["licensed"] * 4 + ["rejected"]
        assert stack.count("user-onboard-poison") == 0
        held = set(outbox_rows(stack))
        assert queue_ids(stack) <= held  # every event waits for the topic, none lost
        assert consumed(stack, "hr-system") == []
    finally:
        if outage == "503":
            stack.event_grid.clear_faults()
        else:
            stack.event_grid.come_up()
    assert stack.wait_for_topic(queue_ids(stack), 30)
    assert {e["id"] for e in consumed(stack, "hr-system")} == queue_ids(stack)
    assert {e["id"] for e in consumed(stack, "telephony")} == {f"{i}:licensed" for i in ids}
    assert wait_until_released(stack) == []
    assert stack.count("user-onboard-poison") == 0
