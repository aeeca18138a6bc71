"""Pacing as one app (guarantee 8): the pure decisions (`shared.decisions.pacing`) and the
per-process pacer over an in-memory shared record (`shared.service.pacing`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from shared.decisions.pacing import (
    Pacing,
    after_throttled,
    merged,
    pause_left,
    take_turns,
)
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.domain.pacing import PacingRecord
from shared.service.pacing import SharedPacer
from tests.fakes import FakePacingStore, PacerClock

T = TypeVar("T")
NOW = 1_800_000_000.0
PACING = Pacing()  # Graph's 20 writes/s, a burst of 20, blocks of 20, a 150 s horizon
STEP = PACING.interval  # 0.05 s


def throttled(seconds: float | None, call: GraphCall = GraphCall.ASSIGN_LICENSE) -> GraphError:
    return GraphError(
        "Application is over its resource limit.",
        kind=GraphErrorKind.THROTTLED,
        call=call,
        status=429,
        code="TooManyRequests",
        retry_after=seconds,
    )


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(main())  # type: ignore[arg-type]


# --- the decisions ---------------------------------------------------------------------


def test_an_app_idle_for_long_sends_a_burst_of_twenty_writes_then_one_per_interval() -> None:
    """A blank record: 20 turns now (one second of Graph's rate), the next ones 50 ms apart."""
    turns = take_turns(PacingRecord(), NOW, 23, PACING)
    assert turns.at[:20] == (NOW,) * 20
    assert turns.at[20:] == pytest.approx((NOW + STEP, NOW + 2 * STEP, NOW + 3 * STEP))
    assert turns.busy_until is None


def test_an_idle_app_regains_its_burst_and_never_graphs_whole_bucket() -> None:
    """After an hour of nothing, still 20 writes at once: never Graph's 3,000."""
    record = take_turns(PacingRecord(), NOW, 20, PACING).record
    later = take_turns(record, NOW + 3600, 21, PACING)
    assert later.at.count(NOW + 3600) == 20
    assert later.at[20] == pytest.approx(NOW + 3600 + STEP)


def test_turns_one_instance_took_put_the_next_instance_after_them() -> None:
    """The record carries the turns taken: the second taker continues the schedule."""
    first = take_turns(PacingRecord(), NOW, 20, PACING)
    second = take_turns(first.record, NOW, 3, PACING)
    assert second.at == pytest.approx((NOW + STEP, NOW + 2 * STEP, NOW + 3 * STEP))


def test_the_app_as_a_whole_never_takes_more_than_graphs_rate() -> None:
    """Turns taken 5 at a time by anyone, over 10 s: at most the burst plus 20 a second."""
    record, taken = PacingRecord(), []
    for n in range(100):
        turns = take_turns(record, NOW + n * 0.1, 5, PACING)
        record = turns.record
        taken += [t for t in turns.at if t <= NOW + 10]
    assert len(taken) <= PACING.burst + 10 * 20
    for start in taken:  # any second: at most the burst and a second's worth
        assert sum(1 for t in taken if start <= t < start + 1) <= PACING.burst + 20


def test_no_turn_is_taken_beyond_the_horizon_and_the_record_says_when_one_is_free() -> None:
    """Beyond 150 s ahead: no turn, the record unchanged, the first free turn named."""
    busy = PacingRecord(next_write=NOW + 160)
    turns = take_turns(busy, NOW, 5, PACING)
    assert turns.at == ()
    assert turns.record == busy
    assert turns.busy_until == pytest.approx(NOW + 160 - PACING.tolerance)


def test_turns_stop_at_the_horizon_when_only_some_fit() -> None:
    """Five wanted, two within 150 s: two taken."""
    near = PacingRecord(next_write=NOW + 150 + PACING.tolerance - STEP)
    turns = take_turns(near, NOW, 5, PACING)
    assert len(turns.at) == 2
    assert turns.busy_until is None


def test_a_write_429_holds_every_write_until_its_retry_after_with_no_burst_after() -> None:
    """Retry-After 3 s: the next turns are at +3 s, then one per interval."""
    record = after_throttled(
        PacingRecord(), NOW, 3.0, write=True, cause="429 TooManyRequests", pacing=PACING
    )
    turns = take_turns(record, NOW, 3, PACING)
    assert turns.at == pytest.approx((NOW + 3, NOW + 3 + STEP, NOW + 3 + 2 * STEP))
    assert pause_left(record, NOW) == 0  # reads go on: writes have a budget of their own


def test_a_read_429_holds_every_call_reads_and_writes() -> None:
    """The resource units are every call's: reads wait, and writes, until Retry-After."""
    record = after_throttled(PacingRecord(), NOW, 4.0, write=False, cause="429", pacing=PACING)
    assert pause_left(record, NOW) == pytest.approx(4.0)
    assert pause_left(record, NOW + 5) == 0
    assert take_turns(record, NOW, 1, PACING).at == pytest.approx((NOW + 4,))


def test_a_429_never_brings_a_later_pause_forward() -> None:
    """An old 429's short Retry-After after a longer one: the longer stands, and its cause."""
    long = after_throttled(PacingRecord(), NOW, 30, write=True, cause="long", pacing=PACING)
    short = after_throttled(long, NOW + 1, 1, write=True, cause="short", pacing=PACING)
    assert short.next_write == long.next_write
    assert short.cause == "long"


def test_a_429_without_retry_after_pauses_for_the_fallback() -> None:
    """No Retry-After: two seconds."""
    record = after_throttled(PacingRecord(), NOW, None, write=False, cause="", pacing=PACING)
    assert pause_left(record, NOW) == pytest.approx(PACING.unknown_pause)


def test_two_copies_merge_to_the_later_of_each_time_with_the_later_pauses_cause() -> None:
    """A stale stored copy and what this process learnt: the later times win."""
    stored = PacingRecord(next_write=NOW + 5, paused_until=NOW, cause="old")
    known = PacingRecord(next_write=NOW + 2, paused_until=NOW + 3, cause="new")
    assert merged(stored, known) == PacingRecord(NOW + 5, NOW + 3, "new")
    assert merged(stored, PacingRecord()) == stored


def test_a_lease_is_the_block_a_process_holds_at_graphs_rate() -> None:
    """20 turns at 20 writes/s: a killed process keeps the others waiting one second."""
    assert PACING.lease == pytest.approx(1.0)


def test_the_benchmarks_faster_pacing_keeps_every_count_and_divides_every_time() -> None:
    """Time 5 times faster: 100 writes/s, horizon 30 s; burst, block and lease in turns."""
    fast = PACING.faster(5)
    assert fast.writes_per_second == pytest.approx(100)
    assert fast.horizon == pytest.approx(30)
    assert (fast.burst, fast.block) == (PACING.burst, PACING.block)
    assert fast.lease == pytest.approx(0.2)


# --- the pacer, one per process ----------------------------------------------------------


def pacer(store: FakePacingStore, clock: PacerClock, pacing: Pacing = PACING) -> SharedPacer:
    return SharedPacer(store, pacing, clock=clock, monotonic=clock.monotonic, sleep=clock.sleep)


def test_one_process_alone_writes_the_record_once_per_block_and_never_reads_it() -> None:
    """40 writes one after the other: two writes of the record (blocks of 20), no read."""
    store, clock = FakePacingStore(), PacerClock(NOW)
    one = pacer(store, clock)

    async def main() -> None:
        for _ in range(40):
            await one.wait_turn(GraphCall.ASSIGN_LICENSE)

    run(main)
    assert store.loads == 0
    assert store.saves == 2
    assert store.record.next_write == pytest.approx(NOW + 40 * STEP)


def test_writes_waiting_together_take_their_turns_in_one_write_of_the_record() -> None:
    """Twenty writes at once in one process: one block, one write of the record."""
    store, clock = FakePacingStore(), PacerClock(NOW)
    one = pacer(store, clock)

    async def main() -> None:
        await asyncio.gather(*(one.wait_turn(GraphCall.ASSIGN_LICENSE) for _ in range(20)))

    run(main)
    assert store.saves == 1
    assert store.loads == 0


def test_a_process_holds_at_most_a_block_of_turns_at_once() -> None:
    """Sixty writes at once, blocks of 20: never more than 20 of them waiting on a turn
    they hold, and one write of the record per block."""
    store, clock = FakePacingStore(), PacerClock(NOW)
    one = pacer(store, clock)

    async def main() -> None:
        await asyncio.gather(*(one.wait_turn(GraphCall.ASSIGN_LICENSE) for _ in range(60)))

    run(main)
    assert clock.most_sleeping == PACING.block
    assert store.saves <= 5  # the first write alone, then a write of the record per block


def test_a_second_process_reads_the_record_after_losing_a_write_and_goes_after_the_first() -> None:
    """Two processes, one record: the second's stale write is refused, it reads the record
    and takes the turns after the first one's."""
    store, clock = FakePacingStore(), PacerClock(NOW)
    first, second = pacer(store, clock), pacer(store, clock)

    async def main() -> None:
        await asyncio.gather(*(first.wait_turn(GraphCall.ASSIGN_LICENSE) for _ in range(20)))
        clock.woke.clear()
        await second.wait_turn(GraphCall.ASSIGN_LICENSE)

    run(main)
    assert store.conflicts == 1
    assert store.loads == 1
    assert clock.woke == pytest.approx([NOW + STEP])


def test_a_429_in_one_process_holds_the_next_write_of_another_until_its_retry_after() -> None:
    """Process A is told 429 with Retry-After 3 s; process B's next write waits for it,
    though B never saw a 429."""
    store, clock = FakePacingStore(), PacerClock(NOW)
    a, b = pacer(store, clock), pacer(store, clock)

    async def main() -> None:
        await a.wait_turn(GraphCall.ASSIGN_LICENSE)
        a.throttled(GraphCall.ASSIGN_LICENSE, throttled(3.0))
        await a.settled()
        await b.wait_turn(GraphCall.ASSIGN_LICENSE)

    run(main)
    assert clock.woke == pytest.approx([NOW + 3.0])
    assert "TooManyRequests" in store.record.cause


def test_a_429_met_while_the_first_is_being_shared_is_shared_too() -> None:
    """A write's 429, then a read's while the first is being written: the record ends
    with both."""
    store, clock = FakePacingStore(), PacerClock(NOW)
    one = pacer(store, clock)

    async def main() -> None:
        one.throttled(GraphCall.ASSIGN_LICENSE, throttled(3.0))
        await asyncio.sleep(0)  # the first is on its way to the record
        one.throttled(GraphCall.LOOKUP, throttled(10.0, GraphCall.LOOKUP))
        await one.settled()

    run(main)
    assert store.record.writes_until == pytest.approx(NOW + 10)
    assert store.record.paused_until == pytest.approx(NOW + 10)


def test_a_read_waits_out_another_processs_read_pause_once_its_copy_is_stale() -> None:
    """B's copy is fresh for 2 s; after that its next read reads the record and waits for
    A's pause."""
    store, clock = FakePacingStore(), PacerClock(NOW)
    a, b = pacer(store, clock), pacer(store, clock)

    async def main() -> None:
        await b.wait_turn(GraphCall.LOOKUP)  # B reads the (blank) record once
        a.throttled(GraphCall.LOOKUP, throttled(10.0, GraphCall.LOOKUP))
        await a.settled()
        await b.wait_turn(GraphCall.LOOKUP)  # its copy is still fresh: no wait
        assert clock.woke == []
        clock.t += PACING.fresh_for + 0.1
        await b.wait_turn(GraphCall.LOOKUP)

    run(main)
    assert clock.woke == pytest.approx([NOW + 10.0])
    assert store.loads == 2


def test_a_write_429_in_another_process_does_not_hold_reads() -> None:
    """Writes have their own quota: lookups go on."""
    store, clock = FakePacingStore(), PacerClock(NOW)
    a, b = pacer(store, clock), pacer(store, clock)

    async def main() -> None:
        a.throttled(GraphCall.ASSIGN_LICENSE, throttled(10.0))
        await a.settled()
        await b.wait_turn(GraphCall.LOOKUP)

    run(main)
    assert clock.woke == []


def test_a_write_whose_turn_is_beyond_the_horizon_is_not_sent_and_says_when() -> None:
    """A 200 s pause: the write is refused at once (throttled, not sent, Retry-After ~200 s),
    and the record is left as it was."""
    store, clock = FakePacingStore(), PacerClock(NOW)
    a, b = pacer(store, clock), pacer(store, clock)

    async def main() -> GraphError:
        a.throttled(GraphCall.ASSIGN_LICENSE, throttled(200.0))
        await a.settled()
        before = store.record
        with pytest.raises(GraphError) as refused:
            await b.wait_turn(GraphCall.ASSIGN_LICENSE)
        assert store.record == before
        return refused.value

    error = run(main)
    assert error.kind == GraphErrorKind.THROTTLED
    assert error.retry_after == pytest.approx(200.0, abs=0.05)
    assert error.graph_message.startswith("not sent: Graph asked the app to wait (429")
    assert clock.woke == []


def test_a_turn_taken_before_a_429_in_the_same_process_is_void() -> None:
    """A write sleeping on its turn when another write of the process meets a 429 takes a
    new turn after the Retry-After instead of sending into the pause."""
    store, clock = FakePacingStore(), PacerClock(NOW)
    one = pacer(store, clock)
    record = take_turns(PacingRecord(), NOW, 20, PACING).record
    store.record, store.version = record, "7"  # the burst is spent: turns are 50 ms apart

    async def waiting() -> None:
        await one.wait_turn(GraphCall.ASSIGN_LICENSE)

    async def main() -> None:
        task = asyncio.create_task(waiting())
        await asyncio.sleep(0)  # it has taken a turn and sleeps on it
        one.throttled(GraphCall.ASSIGN_LICENSE, throttled(2.0))
        await task

    run(main)
    assert clock.woke[-1] == pytest.approx(NOW + 2.0)


def test_a_process_that_keeps_losing_the_record_gives_up_for_now_without_sending() -> None:
    """A record that changes under every write: the call is not sent (throttled, a short
    Retry-After), rather than spinning."""

    class Busy(FakePacingStore):
        async def save(self, record: PacingRecord, version: str | None) -> str | None:
            self.version = str(int(self.version or "0") + 1)  # someone else, every time
            self.saves += 1
            return None

    store, clock = Busy(), PacerClock(NOW)

    async def main() -> None:
        await pacer(store, clock).wait_turn(GraphCall.ASSIGN_LICENSE)

    with pytest.raises(GraphError) as refused:
        run(main)
    assert refused.value.kind == GraphErrorKind.THROTTLED
    assert refused.value.retry_after == pytest.approx(PACING.lease)
