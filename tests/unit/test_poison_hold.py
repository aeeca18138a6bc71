"""Contract v1.2, "Poison hold": a held message's request is announced blocked/poisoned at
once, a replay carries it on, and the end of the hold answers rejected/poison; never both."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from tests.unit.test_service import World, jane, request

HOLD = timedelta(hours=1)


def ids(world: World) -> list[str]:
    return [e.id for e in world.events.events]


def test_a_held_message_with_a_request_id_is_announced_blocked_poisoned_at_once() -> None:
    """blocked with reason poisoned, nextCheckAt and deadline at the end of the hold."""
    world = World(poison_hold=HOLD)
    world.poison.put(json.dumps(request("HR-9")))
    world.sweep_after(timedelta(0))
    (blocked,) = world.events.events
    assert blocked.id == "HR-9:blocked"
    assert blocked.data["reason"]["code"] == "poisoned"
    assert blocked.data["userPrincipalName"] == "jane@contoso.com"
    assert blocked.data["deadline"] == blocked.data["nextCheckAt"]
    record = world.ledger.records["HR-9"]
    assert (record.progress.status, record.progress.reason) == (
        "blocked",
        dict(blocked.data["reason"]),
    )


def test_a_replayed_message_carries_the_request_on_to_one_terminal_event() -> None:
    """blocked, then licensed after the replay; the end of the hold adds nothing."""
    world = World(poison_hold=HOLD)
    jane(world)
    world.poison.put(json.dumps(request("HR-9")))
    world.sweep_after(timedelta(0))
    (item,) = world.ledger.set_aside_items_kept
    assert asyncio.run(world.ledger.move(item, "replayed"))  # what `ops replay` does
    assert world.handle(request("HR-9"), message_id="replayed-copy") == "licensed"
    world.sweep_after(HOLD + timedelta(minutes=1))
    assert ids(world) == ["HR-9:blocked", "HR-9:licensed"]


def test_a_replayed_request_that_is_blocked_again_is_not_announced_twice() -> None:
    """blocked is sent once per request: no seats after the replay parks it silently."""
    world = World(poison_hold=HOLD)
    jane(world)
    for sku in world.directory.skus:
        sku.consumed = sku.enabled
    world.poison.put(json.dumps(request("HR-9")))
    world.sweep_after(timedelta(0))
    assert world.handle(request("HR-9"), message_id="replayed-copy") == "blocked"
    assert ids(world) == ["HR-9:blocked"]


def test_without_a_replay_the_hold_ends_rejected_poison_after_blocked() -> None:
    """rejected/poison is the one terminal event, once the hold is over."""
    world = World(poison_hold=HOLD)
    world.poison.put(json.dumps(request("HR-9")))
    world.sweep_after(timedelta(0))
    world.sweep_after(HOLD + timedelta(seconds=1))
    assert ids(world) == ["HR-9:blocked", "HR-9:rejected"]
    assert world.events.events[-1].data["reason"]["code"] == "poison"


def test_a_held_message_without_a_readable_request_id_is_not_announced() -> None:
    """Nothing to name: it is only reported, rejected/poison, when the hold ends."""
    world = World(poison_hold=HOLD)
    world.poison.put("not json")
    world.sweep_after(timedelta(0))
    assert world.events.events == []


def test_a_request_with_a_terminal_event_is_not_announced_blocked() -> None:
    """Its outcome is republished instead, never a blocked after a terminal event."""
    world = World(poison_hold=HOLD)
    jane(world)
    assert world.handle(request("HR-9")) == "licensed"
    world.poison.put(json.dumps(request("HR-9")))
    world.sweep_after(timedelta(0))
    assert ids(world) == ["HR-9:licensed", "HR-9:licensed"]


def test_a_zero_hold_reports_at_once_without_a_blocked_announcement() -> None:
    """POISON_HOLD=PT0S: nothing is held, so nothing is announced as held."""
    world = World(poison_hold=timedelta(0))
    world.poison.put(json.dumps(request("HR-9")))
    world.sweep_after(timedelta(0))
    assert ids(world) == ["HR-9:rejected"]


def test_a_duplicate_delivery_of_a_request_in_progress_is_still_ignored() -> None:
    """Only a poisoned (held) request is carried on by another message."""
    world = World(poison_hold=HOLD)
    jane(world, sync_enabled=None)
    assert world.handle(request("HR-9"), message_id="first") == "waiting"
    assert world.handle(request("HR-9"), message_id="second") == "duplicate"
    assert ids(world) == ["HR-9:awaiting_sync"]
