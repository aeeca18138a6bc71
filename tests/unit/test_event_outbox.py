"""Every event to the events queue and the Event Grid topic, at least once, through the
outbox (contract v1.2, "Events to every consumer"): what each sink ends up holding when the
topic is down, refuses, or the process dies between any two steps."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from local_stack.stress.crashpoints import CrashPoints
from shared.decisions import Backoff
from shared.domain.errors import StorageUnavailable
from shared.domain.outbox import Sink
from shared.service import OnboardingService, Policy
from shared.service.outbox import REFUSED_RETRY, TOPIC_PAUSE
from shared.service.ports import EventSink
from tests.fakes import (
    Crash,
    FakeClock,
    FakeDirectory,
    FakeEventSink,
    FakeLedger,
    FakeOutbox,
    FakeQueue,
    FakeTopic,
    FakeUser,
)

GRACE = timedelta(minutes=1)
LEASE = timedelta(minutes=5)


class World:
    """A service wired to fakes, with a topic and an outbox."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.directory = FakeDirectory()
        self.pending = FakeQueue(self.clock)
        self.poison = FakeQueue(self.clock)
        self.queue = FakeEventSink()
        self.topic = FakeTopic(self.clock)
        self.outbox = FakeOutbox()
        self.ledger = FakeLedger()
        self.policy = Policy(
            backoff=Backoff(timedelta(minutes=5), timedelta(minutes=30)),
            sync_timeout=timedelta(hours=2),
            poison_hold=timedelta(0),
            pending_lease=LEASE,
            outbox_grace=GRACE,
        )
        self.service = self.build()

    def build(self, wrap: Callable[[str, Any], Any] | None = None) -> OnboardingService:
        """A new process on the same stores; `wrap` decorates each port as bootstrap does."""
        w = wrap or (lambda name, port: port)
        return OnboardingService(
            directory=w("directory", self.directory),
            pending=w("pending", self.pending),
            poison=w("poison", self.poison),
            events=w("events", self.queue),
            ledger=w("ledger", self.ledger),
            clock=self.clock,
            policy=self.policy,
            topic=w("topic", self.topic),
            outbox=w("outbox", self.outbox),
        )

    def handle(self, body: dict[str, Any], message_id: str = "q1") -> str:
        return asyncio.run(self.service.handle_request(json.dumps(body), message_id))

    def sweep_after(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        asyncio.run(self.service.sweep())

    def queue_ids(self) -> list[str]:
        return [e.id for e in self.queue.events]


def request(request_id: str = "HR-1", upn: str = "jane@contoso.com") -> dict[str, Any]:
    return {
        "requestId": request_id,
        "userPrincipalName": upn,
        "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}],
    }


def jane(world: World, **fields: Any) -> FakeUser:
    return world.directory.add(FakeUser("u-jane", "jane@contoso.com", **fields))


def test_every_event_of_a_request_reaches_both_sinks_and_leaves_the_outbox_empty() -> None:
    """awaiting_sync, then licensed: the same events on the queue and the topic, in order."""
    world = World()
    user = jane(world, sync_enabled=None)
    assert world.handle(request()) == "waiting"
    user.sync_enabled = True
    world.sweep_after(timedelta(minutes=5))
    assert world.queue_ids() == ["HR-1:awaiting_sync", "HR-1:licensed"]
    assert world.topic.ids() == world.queue_ids()
    assert [e.serialize() for e in world.topic.events] == [
        e.serialize() for e in world.queue.events
    ]
    assert world.outbox.rows == {}


def test_rejected_messages_reach_both_sinks_too() -> None:
    """An invalid message's `rejected` (with and without a requestId) goes to both."""
    world = World()
    world.handle({"requestId": "HR-2", "oops": True}, "q1")
    asyncio.run(world.service.handle_request(b"\xff not json", "q2"))
    assert world.queue_ids() == ["HR-2:rejected", "message:q2:rejected"]
    assert world.topic.ids() == world.queue_ids()
    assert world.outbox.rows == {}


@pytest.mark.parametrize("status", [503, 0, 429, 404], ids=["5xx", "no-answer", "429", "404"])
def test_a_topic_outage_neither_fails_nor_poisons_a_request_and_the_sweep_publishes_it_later(
    status: int,
) -> None:
    """The request is licensed as usual, the queue has its event at once, the outbox keeps
    it as sent to the queue only; once the topic is back the sweep publishes it there, and
    the queue gets no second copy."""
    world = World()
    jane(world)
    world.topic.down = status
    assert world.handle(request()) == "licensed"
    assert world.queue_ids() == ["HR-1:licensed"]
    assert world.topic.ids() == []
    assert world.outbox.sent("HR-1:licensed") == {Sink.QUEUE}

    world.sweep_after(timedelta(seconds=10))  # still down: kept, nothing lost
    assert world.outbox.sent("HR-1:licensed") == {Sink.QUEUE}
    world.topic.down = None
    world.sweep_after(timedelta(seconds=10))
    assert world.topic.ids() == ["HR-1:licensed"]
    assert world.queue_ids() == ["HR-1:licensed"]
    assert world.outbox.rows == {}


@pytest.mark.parametrize("status", [401, 403])
def test_a_topic_refusing_the_apps_identity_is_retried_like_an_outage(status: int) -> None:
    """Access denied is transient (a role being granted): kept, then published."""
    world = World()
    jane(world)
    world.topic.down = status
    assert world.handle(request()) == "licensed"
    assert world.outbox.sent("HR-1:licensed") == {Sink.QUEUE}
    world.topic.down = None
    world.sweep_after(timedelta(seconds=10))
    assert world.topic.ids() == ["HR-1:licensed"]


def test_after_an_unanswered_publish_the_process_leaves_the_topic_alone_for_a_while() -> None:
    """The next requests do not wait for the adapter's retries: their events go to the queue
    and the outbox without a topic call, until the pause is over."""
    world = World()
    world.directory.add(FakeUser("u1", "a@contoso.com"))
    world.directory.add(FakeUser("u2", "b@contoso.com"))
    world.directory.add(FakeUser("u3", "c@contoso.com"))
    world.topic.down = 0
    world.handle(request("HR-A", "a@contoso.com"), "q1")
    world.clock.advance(TOPIC_PAUSE / 2)
    world.handle(request("HR-B", "b@contoso.com"), "q2")
    assert world.topic.attempts == 1
    assert world.queue_ids() == ["HR-A:licensed", "HR-B:licensed"]
    assert set(world.outbox.rows) == {"HR-A:licensed", "HR-B:licensed"}
    world.topic.down = None
    world.clock.advance(TOPIC_PAUSE)
    world.handle(request("HR-C", "c@contoso.com"), "q3")
    assert world.topic.ids() == ["HR-C:licensed"]


def test_the_sweep_stops_draining_at_the_first_unanswered_publish_and_goes_on_with_requests() -> (
    None
):
    """One probe per sweep while the topic is down; pending requests are still rechecked."""
    world = World()
    for n in range(5):
        world.directory.add(FakeUser(f"u{n}", f"user{n}@contoso.com"))
    world.topic.down = 503
    for n in range(5):
        world.handle(request(f"HR-{n}", f"user{n}@contoso.com"), f"q{n}")
    late = world.directory.add(FakeUser("u-late", "late@contoso.com", sync_enabled=None))
    world.handle(request("HR-L", "late@contoso.com"), "qL")
    late.sync_enabled = True
    attempts = world.topic.attempts
    world.sweep_after(timedelta(minutes=5))
    assert world.topic.attempts == attempts + 1  # the probe; HR-L:licensed is not tried
    assert "HR-L:licensed" in world.queue_ids()
    assert len(world.outbox.rows) == 7  # 5 licensed, HR-L's awaiting_sync and licensed
    world.topic.down = None
    world.sweep_after(timedelta(minutes=5))
    assert sorted(world.topic.ids()) == sorted(world.queue_ids())
    assert world.outbox.rows == {}


def test_an_event_the_topic_refuses_is_kept_and_tried_again_hourly_not_every_sweep() -> None:
    """A 400 is a bug: the same bytes would be refused again, so the sweep does not spend
    every tick on it; once the app is fixed it goes out."""
    world = World()
    jane(world)
    world.topic.rejects.add("HR-1:licensed")
    assert world.handle(request()) == "licensed"
    assert world.outbox.sent("HR-1:licensed") == {Sink.QUEUE}
    world.sweep_after(timedelta(minutes=5))
    assert world.topic.attempts == 1
    world.topic.rejects.clear()
    world.sweep_after(REFUSED_RETRY)
    assert world.topic.ids() == ["HR-1:licensed"]
    assert world.queue_ids() == ["HR-1:licensed"]


def test_a_bug_on_the_way_to_the_topic_never_fails_a_request() -> None:
    """Whatever the topic adapter raises stays out of intake: licensed, event kept."""
    world = World()
    jane(world)
    world.topic.bug = True
    assert world.handle(request()) == "licensed"
    assert world.outbox.sent("HR-1:licensed") == {Sink.QUEUE}


def test_a_queue_outage_still_raises_and_the_held_event_reaches_both_sinks_later() -> None:
    """The queue keeps its semantics (the host retries the message); the event held before
    the failed publish is published to both by the sweep once the grace has passed."""
    world = World()
    jane(world)
    world.queue.fail_next = 1
    with pytest.raises(StorageUnavailable):
        world.handle(request())
    assert world.outbox.sent("HR-1:licensed") == frozenset()
    world.sweep_after(GRACE / 2)  # an invocation may still be publishing it: left alone
    assert world.queue_ids() == []
    world.sweep_after(GRACE)
    assert world.queue_ids() == ["HR-1:licensed"]
    assert world.topic.ids() == ["HR-1:licensed"]
    assert world.outbox.rows == {}


@pytest.mark.parametrize(
    ("error", "stops"), [(RuntimeError("a bug"), False), (StorageUnavailable("down"), True)]
)
def test_an_outbox_that_cannot_be_read_stops_the_sweep_only_in_a_storage_outage(
    error: Exception, stops: bool
) -> None:
    """A bug or a refused table call in the drain is logged and the requests are still
    rechecked (guarantee 6); a storage outage stops the sweep as everywhere else."""
    world = World()
    user = jane(world, sync_enabled=None)
    world.handle(request())
    user.sync_enabled = True
    world.outbox.due_error = error
    if stops:
        with pytest.raises(StorageUnavailable):
            world.sweep_after(timedelta(minutes=5))
        return
    world.sweep_after(timedelta(minutes=5))
    assert world.queue_ids() == ["HR-1:awaiting_sync", "HR-1:licensed"]
    assert world.topic.ids() == world.queue_ids()


def test_the_drain_stops_at_its_share_of_the_sweep_budget() -> None:
    """Held events beyond a quarter of the budget wait for the next sweep."""
    world = World()
    for n in range(10):
        world.directory.add(FakeUser(f"u{n}", f"user{n}@contoso.com"))
    world.topic.down = 503
    for n in range(10):
        world.handle(request(f"HR-{n}", f"user{n}@contoso.com"), f"q{n}")
    world.topic.down = None
    world.topic.seconds_per_publish = world.policy.sweep_budget_seconds / 8
    world.sweep_after(TOPIC_PAUSE)
    assert len(world.topic.ids()) == 2
    world.sweep_after(timedelta(minutes=5))
    assert len(world.topic.ids()) == 4


def test_without_a_topic_no_outbox_is_written() -> None:
    """The v1.1 path is unchanged: the queue is the sink, and nothing else is written."""
    world = World()
    jane(world)
    plain = OnboardingService(
        directory=world.directory,
        pending=world.pending,
        poison=world.poison,
        events=world.queue,
        ledger=world.ledger,
        clock=world.clock,
        policy=world.policy,
        outbox=world.outbox,
    )
    asyncio.run(plain.handle_request(json.dumps(request()), "q1"))
    asyncio.run(plain.sweep())
    assert world.queue_ids() == ["HR-1:licensed"]
    assert world.outbox.calls == {}


def test_a_topic_without_an_outbox_is_refused() -> None:
    """At least once needs somewhere to keep what the topic missed."""
    world = World()
    with pytest.raises(ValueError, match="outbox"):
        OnboardingService(
            directory=world.directory,
            pending=world.pending,
            poison=world.poison,
            events=world.queue,
            ledger=world.ledger,
            clock=world.clock,
            policy=world.policy,
            topic=world.topic,
        )


# --- a crash at every durable step ------------------------------------------------------


def _power_cut(code: int) -> None:
    raise Crash(f"exit {code}")


Step = Callable[[World, OnboardingService], object]


def _first_check(world: World, service: OnboardingService) -> object:
    return asyncio.run(service.handle_request(json.dumps(request()), "q1"))


def _first_check_again(world: World, service: OnboardingService) -> object:
    """The host delivers q1 again, and meanwhile the user has synced: the check decides
    `licensed`, and never announces awaiting_sync again."""
    world.directory.users["u-jane"].sync_enabled = True
    return _first_check(world, service)


def _invalid(world: World, service: OnboardingService) -> object:
    return asyncio.run(service.handle_request(json.dumps({"requestId": "HR-9"}), "q2"))


def _sweep(world: World, service: OnboardingService) -> object:
    world.directory.users["u-jane"].sync_enabled = True
    world.clock.advance(LEASE)  # what a dead sweep held comes back after its lease
    return asyncio.run(service.sweep())


# (step, what the next process does after a crash in it)
SCENARIO: list[tuple[Step, Step]] = [
    (_first_check, _first_check_again),
    (_invalid, _invalid),
    (_sweep, _sweep),
]


def _run_scenario(crash_at: int | None, when: str) -> tuple[World, CrashPoints]:
    world = World()
    jane(world, sync_enabled=None)
    points = CrashPoints(crash_at, when, exit=_power_cut)
    service = world.build(points.wrap)
    for step, after_a_crash in SCENARIO:
        try:
            step(world, service)
        except Crash:
            service = world.build()  # a new process, on the same stores
            after_a_crash(world, service)
    world.clock.advance(GRACE + LEASE)
    asyncio.run(world.build().sweep())
    return world, points


def _durable_steps() -> int:
    _, counting = _run_scenario(None, "before")
    return counting.count


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_at_any_durable_step_ends_with_both_sinks_holding_every_event(when: str) -> None:
    """For each durable call (outbox, queue, topic, ledger, pending, Graph writes), a power
    cut before it and after it: afterwards the topic holds every event id the queue holds
    and no other, both hold every request's terminal event, and the outbox is empty. A
    crash between the sinks of an announcement is covered even though the next check
    decides `licensed` without announcing anything."""
    steps = _durable_steps()
    assert steps >= 15  # the scenario walks through every kind of step
    for k in range(1, steps + 1):
        world, points = _run_scenario(k, when)
        assert points.count >= k, f"crash point {k} not reached"
        queue, topic = set(world.queue_ids()), set(world.topic.ids())
        assert queue == topic, (k, when, queue ^ topic)
        assert {"HR-1:licensed", "HR-9:rejected"} <= topic, (k, when)
        assert world.outbox.rows == {}, (k, when)


def test_a_crash_between_the_queue_and_the_topic_publishes_the_announcement_to_the_topic() -> None:
    """The announcement reached the queue, the process died, the retry licensed the user
    without announcing anything: the sweep still gives the topic its awaiting_sync."""
    world = World()
    jane(world, sync_enabled=None)
    first = world.build(_die_after_the_queue_publish)
    with pytest.raises(Crash):
        _first_check(world, first)
    assert world.queue_ids() == ["HR-1:awaiting_sync"]
    assert world.topic.ids() == []
    _first_check_again(world, world.build())
    assert world.topic.ids() == ["HR-1:licensed"]
    world.sweep_after(GRACE)
    assert world.topic.ids() == ["HR-1:licensed", "HR-1:awaiting_sync"]
    assert world.outbox.rows == {}


def _die_after_the_queue_publish(name: str, port: Any) -> Any:
    """A decorator: the process dies right after a queue publish returns."""
    return _DieAfterPublish(port) if name == "events" else port


class _DieAfterPublish:
    def __init__(self, sink: EventSink) -> None:
        self._sink = sink

    async def publish(self, event: Any) -> None:
        await self._sink.publish(event)
        raise Crash("killed after the queue publish, before the topic publish")
