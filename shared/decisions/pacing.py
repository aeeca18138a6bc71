"""The app's pace at Graph, as one app however many instances (guarantee 8): when each
write may be sent, and what a 429 changes, for every instance at once.

Graph meters writes per app and tenant, 3,000 per 150 s, as a token bucket (20 writes/s
after a burst), and a 429 applies to the app as a whole (docs/graph-facts.md, "Throttling
budget", "The budget is the app's, not the instance's"). The instances share one
`PacingRecord` and take write *turns* from it with the generic cell rate algorithm (GCRA,
a token bucket written as one timestamp, `next_write`): a turn is at `next_write - burst
tolerance` at the earliest, and each one taken moves `next_write` on by one interval. A 429
moves it past Graph's `Retry-After` (no turn before, and no burst after: Graph's bucket is
empty then); a 429 on a read also holds every call until then (`paused_until`). Both only
ever move forward, so a stale copy of the record is never less busy than the stored one.

The app does not use Graph's burst of 3,000: it cannot know how much of it is left (the
budget may have been spent before the record saw it), and a refused call is charged all
the same, so a burst into an empty budget costs more than it saves. It sends at most
`burst` writes at once, then one per interval.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.domain.pacing import CAUSE_CHARS, PacingRecord

GRAPH_WRITES_PER_SECOND = 3000 / 150  # per app and tenant (docs/graph-facts.md)


@dataclass(frozen=True)
class Pacing:
    """The pacing numbers (seconds)."""

    writes_per_second: float = GRAPH_WRITES_PER_SECOND
    burst: int = 20  # writes sent at once at most: one second of Graph's rate
    # Most turns one process holds at a time (taken and not yet sent, or reserved): what a
    # process killed while holding them keeps the others waiting, at most block / rate.
    block: int = 20
    # The longest a call waits for Graph in its invocation (its turn, or a Retry-After);
    # beyond, it is not sent and its request is parked until then. Graph's write window:
    # whatever Graph's model, no write should be asked to wait longer than one window, so
    # a throttled request need not wait for the sweep's next tick (functionTimeout 10 min).
    horizon: float = 150.0
    # How long a process trusts its copy of the record before a read looks at it again
    # (a read is held by another instance's 429 on a read at most this late).
    fresh_for: float = 2.0
    # A 429 without Retry-After (Graph always sends one; this is the fallback).
    unknown_pause: float = 2.0

    @property
    def interval(self) -> float:
        return 1.0 / self.writes_per_second

    @property
    def tolerance(self) -> float:
        """How far ahead of `next_write` a turn may be: the burst, less the turn itself."""
        return (self.burst - 1) * self.interval

    @property
    def lease(self) -> float:
        """The longest a process killed while holding turns keeps the others waiting."""
        return self.block * self.interval

    def faster(self, factor: float) -> Pacing:
        """The same pacing on a clock `factor` times faster (the big-day benchmark)."""
        return replace(
            self,
            writes_per_second=self.writes_per_second * factor,
            horizon=self.horizon / factor,
            fresh_for=self.fresh_for / factor,
            unknown_pause=self.unknown_pause / factor,
        )


@dataclass(frozen=True)
class Turns:
    """Write turns taken (`at`, ascending) and the record that says so; or none, and when
    the first one within reach would be (`busy_until`)."""

    record: PacingRecord
    at: tuple[float, ...] = ()
    busy_until: float | None = None


def take_turns(record: PacingRecord, now: float, wanted: int, pacing: Pacing) -> Turns:
    """Up to `wanted` write turns, each within the horizon; the record with them taken."""
    next_write = record.next_write
    taken: list[float] = []
    for _ in range(max(1, wanted)):
        turn = max(now, record.paused_until, record.writes_until, next_write - pacing.tolerance)
        if turn > now + pacing.horizon:
            if not taken:
                return Turns(record, busy_until=turn)
            break
        taken.append(turn)
        next_write = max(next_write, turn) + pacing.interval
    return Turns(replace(record, next_write=next_write), tuple(taken))


def after_throttled(
    record: PacingRecord,
    now: float,
    retry_after: float | None,
    *,
    write: bool,
    cause: str,
    pacing: Pacing,
) -> PacingRecord:
    """Graph answered 429 at `now`: no write before its Retry-After, and no burst after
    it (Graph's bucket is empty then); after a read's 429 (the resource units every call
    spends), no call at all."""
    until = now + (retry_after if retry_after is not None else pacing.unknown_pause)
    later = until > max(record.paused_until, record.writes_until)
    return PacingRecord(
        next_write=max(record.next_write, until + pacing.tolerance),
        paused_until=record.paused_until if write else max(record.paused_until, until),
        cause=cause[:CAUSE_CHARS] if later else record.cause,
        writes_until=max(record.writes_until, until),
    )


def merged(stored: PacingRecord, known: PacingRecord) -> PacingRecord:
    """What both copies say: the later of each time (they only move forward); the cause of
    the later pause."""
    ahead = max(known.paused_until, known.writes_until) > max(
        stored.paused_until, stored.writes_until
    )
    return PacingRecord(
        next_write=max(stored.next_write, known.next_write),
        paused_until=max(stored.paused_until, known.paused_until),
        cause=known.cause if ahead and known.cause else stored.cause,
        writes_until=max(stored.writes_until, known.writes_until),
    )


def pause_left(record: PacingRecord, now: float, *, write: bool = False) -> float:
    """Seconds a call must still wait because of a 429 (a read's holds every call, a
    write's the writes), 0 when none."""
    until = max(record.paused_until, record.writes_until) if write else record.paused_until
    return max(0.0, until - now)
