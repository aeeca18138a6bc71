"""Guarantees 6 and 7 against in-memory fakes: every input gets an answer and no item stops
the rest; a decision is never taken twice, even across crashes."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from shared.domain.events import MAX_ERRORS, MAX_EVENT_BYTES
from tests.fakes import MCOEV, Crash, FakeUser
from tests.unit.test_service import World, jane, request

LEASE = timedelta(minutes=5)

HOSTILE_BODIES: dict[str, bytes | str] = {
    "not UTF-8": b"\xff\xfe\x00garbage",
    "non-ASCII, not JSON (the base64 fallback used to raise)": "ceci n'est pas du JSON: é",
    "1,000 levels of nesting": "[" * 1_000 + "]" * 1_000,
    "16,000 levels of nesting": '{"a":' * 16_000 + "1" + "}" * 16_000,
    "thousands of unknown fields": json.dumps({f"field{n:05d}": n for n in range(3_000)}),
    "a lone surrogate in a field name": '{"requestId": "HR-S", "bad\\udc80name": 1}',
    "a field twice": '{"requestId": "HR-D", "requestId": "HR-E"}',
    "an integer of 5,000 digits": '{"requestId": ' + "9" * 5_000 + "}",
    "over 32 KiB": json.dumps({"requestId": "HR-BIG", "x": "y" * 40_000}),
    "empty": b"",
    "only spaces": "   ",
    "JSON null": "null",
    "an array": "[1, 2, 3]",
    "base64 of garbage": base64.b64encode(b"\x00\x01\x02 not json").decode(),
    "base64 of deep nesting": base64.b64encode(b"[" * 5_000 + b"]" * 5_000).decode(),
    "control characters": '{"requestId": "HR-C\\u0000\\u0001"}',
    "XML-hostile text": '{"requestId": "HR-X", "<&>]]>": "\\ufffe\\uffff"}',
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_every_hostile_body_is_answered_with_one_rejection_that_fits_the_queue(
    body: bytes | str,
) -> None:
    """No raise, exactly one rejected event, printable ASCII JSON under the queue limit."""
    world = World()
    assert asyncio.run(world.service.handle_request(body, "q1")) == "rejected"
    (event,) = world.events.events
    assert event.type.endswith("rejected")
    assert event.data["reason"]["code"] == "invalid_message"
    text = event.serialize()
    assert len(text.encode()) <= MAX_EVENT_BYTES
    assert text.isascii()
    assert text.isprintable()
    assert json.loads(text)["id"] == event.id
    assert len(event.data["errors"]) <= MAX_ERRORS


def test_a_long_error_list_is_cut_with_a_count_of_what_was_left_out() -> None:
    """2,000 unknown fields: 50 errors listed, the rest counted."""
    world = World()
    world.handle({"requestId": "HR-W", **{f"f{n}": n for n in range(2_000)}})
    (event,) = world.events.events
    assert event.id == "HR-W:rejected"
    assert len(event.data["errors"]) == MAX_ERRORS
    assert event.data["errorsOmitted"] == 2_001 - MAX_ERRORS  # and "at least one of" missing


def test_a_lone_surrogate_is_written_out_as_its_escape() -> None:
    """The field name survives as visible text instead of breaking the queue."""
    world = World()
    world.handle('{"requestId": "HR-S", "bad\\udc80name": 1}')
    (event,) = world.events.events
    assert '"field":"bad\\\\udc80name"' in event.serialize()


# --- a decision is never taken twice ------------------------------------------------------


def test_a_crash_after_a_terminal_event_is_not_decided_again_nor_published_twice() -> None:
    """The issue's power cut: failed/sync_timeout is published (and the ledger closed), the
    process dies before deleting the pending message, the user syncs meanwhile: the
    leftover copy is only acknowledged. No second decision, no seat, no second event."""
    world = World(sync_timeout=timedelta(minutes=10))
    user = jane(world, sync_enabled=None)
    world.handle(request())
    world.pending.crash_on_complete = 1
    world.clock.advance(timedelta(minutes=10))
    with pytest.raises(Crash):
        asyncio.run(world.service.sweep())
    user.sync_enabled = True
    report = asyncio.run(_sweep_after(world, LEASE))
    assert report.outcomes == {"replayed": 1}
    assert [e.id for e in world.events.of_type("failed")] == ["HR-1:failed"]
    assert world.events.terminal_ids() == {"HR-1:failed"}
    assert world.directory.writes == []
    assert world.pending.stored == []


def test_a_crash_between_publishing_and_closing_republishes_the_same_event() -> None:
    """Published but not closed: the ledger cannot tell whether the event went out, so
    the replay publishes it again, word for word (same id), and decides nothing."""
    world = World(sync_timeout=timedelta(minutes=10))
    user = jane(world, sync_enabled=None)
    world.handle(request())
    world.ledger.crash_on_close = 1
    world.clock.advance(timedelta(minutes=10))
    with pytest.raises(Crash):
        asyncio.run(world.service.sweep())
    user.sync_enabled = True
    world.sweep_after(LEASE)
    failed = world.events.of_type("failed")
    assert [e.id for e in failed] == ["HR-1:failed", "HR-1:failed"]
    assert failed[0] == failed[1]
    assert world.events.terminal_ids() == {"HR-1:failed"}
    assert world.directory.writes == []
    assert world.pending.stored == []


def test_a_redelivered_intake_message_repeats_its_decision_word_for_word() -> None:
    """The host delivers the same message again (the delete was lost): same event."""
    world = World()
    jane(world)
    world.handle(request(), message_id="q1")
    world.handle(request(), message_id="q1")
    first, second = world.events.of_type("licensed")
    assert first == second
    assert len(world.directory.writes) == 1


def test_a_duplicate_of_a_request_in_progress_is_not_processed_twice() -> None:
    """A second message with the same requestId while the first is parked: no second
    pending copy, no second awaiting_sync; the first one's events answer both."""
    world = World()
    user = jane(world, sync_enabled=None)
    assert world.handle(request(), message_id="q1") == "waiting"
    assert world.handle(request(), message_id="q2") == "duplicate"
    assert len(world.pending.stored) == 1
    user.sync_enabled = True
    world.sweep_after(LEASE)
    assert [e.id for e in world.events.events] == ["HR-1:awaiting_sync", "HR-1:licensed"]


def test_an_invalid_message_does_not_take_over_a_request_in_progress() -> None:
    """Garbage naming HR-1 while HR-1 is parked is rejected under its own message id;
    HR-1 ends licensed with exactly one terminal event."""
    world = World()
    user = jane(world, sync_enabled=None)
    world.handle(request(), message_id="q1")
    assert world.handle({"requestId": "HR-1", "oops": True}, message_id="q9") == "rejected"
    user.sync_enabled = True
    world.sweep_after(LEASE)
    ids = [e.id for e in world.events.events]
    assert ids == ["HR-1:awaiting_sync", "message:q9:rejected", "HR-1:licensed"]
    rejected = world.events.of_type("rejected")[0]
    assert rejected.subject is None
    assert rejected.data["requestId"] == "HR-1"


def test_the_first_message_with_a_request_id_owns_it_even_when_invalid() -> None:
    """HR-2 was rejected; a corrected message reusing HR-2 gets the same rejection
    (one terminal event per requestId: the README asks for a new requestId)."""
    world = World()
    jane(world)
    world.handle({"requestId": "HR-2", "userPrincipleName": "jane@contoso.com"}, message_id="q1")
    world.handle(request("HR-2"), message_id="q2")
    assert [e.id for e in world.events.events] == ["HR-2:rejected", "HR-2:rejected"]
    assert world.directory.writes == []


def test_a_message_poisoned_after_its_terminal_event_gets_no_second_outcome() -> None:
    """The known gap of v1: the poison copy republishes HR-1:licensed, never HR-1:rejected."""
    world = World()
    jane(world)
    world.handle(request(), message_id="q1")
    world.poison.put(json.dumps(request()))
    world.sweep_after(timedelta(0))
    assert world.events.terminal_ids() == {"HR-1:licensed"}
    assert world.poison.stored == []
    (kept,) = world.ledger.set_aside_items_kept
    assert (kept.source, kept.request_id) == ("poison", "HR-1")


def test_a_poisoned_copy_of_a_parked_request_does_not_end_it() -> None:
    """The request is alive on the pending queue: the poison copy is kept, not reported."""
    world = World()
    user = jane(world, sync_enabled=None)
    world.handle(request(), message_id="q1")
    world.poison.put(json.dumps(request()))
    world.sweep_after(timedelta(0))
    assert world.events.of_type("rejected") == []
    user.sync_enabled = True
    world.sweep_after(LEASE)
    assert world.events.terminal_ids() == {"HR-1:licensed"}


def test_a_poisoned_message_whose_request_never_started_is_reported_once() -> None:
    """Contract: rejected/poison, with the original message; kept for replay."""
    world = World()
    world.poison.put(json.dumps(request("HR-5")))
    world.sweep_after(timedelta(0))
    (event,) = world.events.events
    assert (event.id, event.data["reason"]["code"]) == ("HR-5:rejected", "poison")
    world.sweep_after(LEASE)
    assert len(world.events.events) == 1


# --- no item stops the rest ---------------------------------------------------------------


def test_a_bug_met_by_one_pending_request_sets_it_aside_and_the_others_go_on() -> None:
    """The failing item ends rejected/poison (kept in the ledger); the others are licensed."""
    world = World()
    for n in range(3):
        world.directory.add(FakeUser(f"u{n}", f"user{n}@contoso.com", sync_enabled=None))
        world.handle(request(f"HR-{n}", upn=f"user{n}@contoso.com"), message_id=f"q{n}")
    for n in range(3):
        world.directory.users[f"u{n}"].sync_enabled = True
    world.directory.bug_for = {"u1"}
    report = asyncio.run(_sweep_after(world, LEASE))
    assert report.outcomes["set_aside"] == 1
    assert world.events.terminal_ids() == {"HR-0:licensed", "HR-1:rejected", "HR-2:licensed"}
    assert world.events.of_type("rejected")[0].data["reason"]["code"] == "poison"
    (kept,) = world.ledger.set_aside_items_kept
    assert (kept.source, kept.request_id) == ("pending", "HR-1")
    assert "RuntimeError" in kept.reason
    assert world.pending.stored == []


def test_a_pending_message_taken_by_another_sweep_is_left_to_it_not_given_up() -> None:
    """Two sweeps at once (found by the stress suite): sweep A's lookup outlasts its lease,
    sweep B receives the same message and re-parks it; A's re-park then meets a stale pop
    receipt. That is not the message's fault: A drops its work, nothing is decided, and
    the request is licensed once the user syncs."""
    world = World()
    world.directory.add(FakeUser("u1", "jane@contoso.com", sync_enabled=None))
    assert world.handle(request("HR-1")) == "waiting"
    reports = []

    async def sweep_b_meanwhile() -> None:
        world.clock.advance(LEASE)  # A's lease on the message ends while Graph is slow
        reports.append(await world.service.sweep())

    world.directory.during_next_lookup = sweep_b_meanwhile
    report_a = asyncio.run(_sweep_after(world, LEASE))
    (report_b,) = reports
    assert report_b.outcomes == {"waiting": 1}
    assert report_a.outcomes == {"lease_lost": 1}
    assert world.ledger.set_aside_items_kept == []
    assert world.events.terminal_ids() == set()
    assert len(world.pending.stored) == 1  # B's re-park stands

    world.directory.users["u1"].sync_enabled = True
    asyncio.run(_sweep_after(world, timedelta(hours=1)))
    assert world.events.terminal_ids() == {"HR-1:licensed"}


def test_a_decision_whose_message_another_sweep_took_is_published_once_by_id() -> None:
    """A decides (licensed) while B holds the message: A's delete meets a stale receipt
    and is dropped; B finds the decision published (closed) in the ledger and only
    acknowledges the message."""
    world = World()
    world.directory.add(FakeUser("u1", "jane@contoso.com", sync_enabled=None))
    world.handle(request("HR-1"))
    world.directory.users["u1"].sync_enabled = True

    async def b_takes_the_message() -> None:
        world.clock.advance(LEASE)
        world.directory.during_next_lookup = None
        taken.extend(await world.pending.receive_due(10, LEASE))

    taken: list[Any] = []
    world.directory.during_next_lookup = b_takes_the_message
    report_a = asyncio.run(_sweep_after(world, LEASE))
    assert report_a.outcomes == {"lease_lost": 1}
    assert world.events.terminal_ids() == {"HR-1:licensed"}
    assert world.ledger.set_aside_items_kept == []
    report_b = asyncio.run(_sweep_after(world, LEASE))  # B's lease ended: the next sweep
    assert report_b.outcomes == {"replayed": 1}
    assert [e.id for e in world.events.events if e.id.endswith(":licensed")] == ["HR-1:licensed"]
    assert world.pending.stored == []
    assert len(world.directory.writes) == 1  # one assignLicense: no second decision


def test_a_poisoned_message_that_cannot_be_reported_is_set_aside_not_retried_forever() -> None:
    """The events queue refuses its report (a 4xx): kept, removed, the sweep goes on."""
    world = World()
    world.poison.put(json.dumps(request("HR-7")))
    world.poison.put(json.dumps(request("HR-8")))
    world.events.refuse = {"HR-7:rejected"}
    report = asyncio.run(_sweep_after(world, timedelta(0)))
    assert world.poison.stored == []
    assert world.events.terminal_ids() == {"HR-8:rejected"}
    assert [i.request_id for i in world.ledger.set_aside_items_kept if i.source == "poison"] == [
        "HR-7",
        "HR-8",
    ]
    assert len(report.set_aside) == 1


def test_an_unreadable_pending_message_ends_its_request_and_is_kept() -> None:
    """Our own state, corrupted: rejected/poison for the request it names, kept aside."""
    world = World()
    world.pending.put('{"v": 1, "request": {"requestId": "HR-6"}}')
    world.sweep_after(timedelta(0))
    (event,) = world.events.events
    assert (event.id, event.data["reason"]["code"]) == ("HR-6:rejected", "poison")
    assert world.pending.stored == []
    assert [i.source for i in world.ledger.set_aside_items_kept] == ["pending"]


async def _sweep_after(world: World, delta: timedelta) -> Any:
    world.clock.advance(delta)
    return await world.service.sweep()


def test_two_requests_for_one_user_still_take_one_seat() -> None:
    """Unchanged by the ledger: different requestIds, one seat."""
    world = World()
    jane(world)
    world.handle(request("HR-1"), message_id="q1")
    world.handle(request("HR-2"), message_id="q2")
    assert world.directory.seats_used(MCOEV) == 1
