"""The `Pacer` every instance of the app shares (guarantee 8): write turns taken from one
record in the storage account, and Graph's 429s written there for the others.

Storage is consulted as rarely as the design allows. A process takes a block of turns
at once (up to `Pacing.block` held at a time, and not before half a block is free), with
one conditional write of the record when its copy is current, or a read and a write when
another instance wrote in between; it reads the record otherwise only when a read call
finds its copy older than `Pacing.fresh_for`. A 429 holds the process at once and is
written in the background (and with the next turns taken). Nobody holds the record: a
process killed at any moment leaves it whole, and wastes at most the turns it held
(`Pacing.lease`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from shared.decisions.pacing import (
    Pacing,
    after_throttled,
    merged,
    pause_left,
    take_turns,
)
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.domain.pacing import PacingRecord, StoredPacing
from shared.service.ports import PacingStore

log = logging.getLogger("user_onboarding.pacing")

# Conditional writes that lost to another instance before a call gives up for now.
MAX_ATTEMPTS: Final = 12


class SharedPacer:
    """The `Pacer` port over a `PacingStore`; one per process."""

    def __init__(
        self,
        store: PacingStore,
        pacing: Pacing | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.pacing = pacing or Pacing()
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._copy = StoredPacing(PacingRecord(), None)
        self._copied_at = float("-inf")  # monotonic; never yet
        self._contended = False  # another instance wrote since this one: read before writing
        self._written: str | None = None  # the version this process wrote last
        self._known = PacingRecord()  # this process's own 429s, written with every change
        self._pauses = 0  # how many 429s this process has seen: a turn taken before is void
        self._turns: deque[float] = deque()  # taken from the record, not yet used
        self._using = 0  # turns being waited for or sent
        self._used = asyncio.Condition()  # a turn held was used: room for more
        self._lock = asyncio.Lock()
        self._publishing: asyncio.Task[None] | None = None

    @property
    def horizon(self) -> float:
        return self.pacing.horizon

    async def wait_turn(self, call: GraphCall) -> None:
        if call.is_write:
            await self._write_turn(call)
        else:
            await self._read_turn(call)

    def throttled(self, call: GraphCall, error: GraphError) -> None:
        now = self._clock()
        self._known = after_throttled(
            self._known,
            now,
            error.retry_after,
            write=call.is_write,
            cause=f"{error.status} {error.code}: {error.graph_message}",
            pacing=self.pacing,
        )
        self._pauses += 1
        self._turns.clear()  # turns taken before Graph said no were never Graph's
        if self._publishing is None or self._publishing.done():
            self._publishing = asyncio.get_running_loop().create_task(self._publish())

    async def settled(self) -> None:
        """Wait until this process's 429s are in the shared record (tests, shutdown)."""
        task = self._publishing
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            await asyncio.wait([task])

    # --- reads ---------------------------------------------------------------------------

    async def _read_turn(self, call: GraphCall) -> None:
        if self._monotonic() - self._copied_at > self.pacing.fresh_for:
            async with self._lock:
                if self._monotonic() - self._copied_at > self.pacing.fresh_for:
                    await self._load()
        wait = pause_left(self._record(), self._clock())
        if wait > self.pacing.horizon:
            raise self._refusal(call, wait)
        if wait > 0:
            await self._sleep(wait)

    # --- writes --------------------------------------------------------------------------

    async def _write_turn(self, call: GraphCall) -> None:
        """Take a turn and wait for it; a 429 seen meanwhile voids it (take another)."""
        while True:
            pauses = self._pauses
            turn = await self._take_turn(call)
            self._using += 1
            try:
                wait = turn - self._clock()
                if wait > 0:
                    await self._sleep(wait)
            finally:
                self._using -= 1
                async with self._used:
                    self._used.notify_all()
            if self._pauses == pauses:
                return

    async def _take_turn(self, call: GraphCall) -> float:
        """A turn this process holds, or a block of them taken from the record. At most
        `block` turns are held at once; when fewer than half a block is free, wait for the
        turns in use to be used (a new turn would come after theirs anyway), so the record
        is written once per half block at least."""
        while True:
            self._drop_stale()
            if self._turns:
                return self._turns.popleft()
            if self._crowded():
                async with self._used:
                    await self._used.wait_for(lambda: not self._crowded())
                continue
            async with self._lock:
                self._drop_stale()
                if not self._turns and not self._crowded():
                    await self._reserve(call, self.pacing.block - self._using)

    def _crowded(self) -> bool:
        """Less than half a block free while turns are in use: worth waiting for them."""
        free = self.pacing.block - self._using
        return bool(self._using) and free < max(1, self.pacing.block // 2)

    def _drop_stale(self) -> None:
        """A turn not used soon after its time goes: the record may have moved on since."""
        oldest = self._clock() - self.pacing.fresh_for
        while self._turns and self._turns[0] < oldest:
            self._turns.popleft()

    async def _reserve(self, call: GraphCall, wanted: int) -> None:
        """A block of turns (less those this process holds), written to the shared record:
        the writes that come meanwhile need not touch storage."""
        if self._contended:  # another instance wrote lately: our copy is likely stale
            await self._load()
        for attempt in range(MAX_ATTEMPTS):
            if attempt > 1:  # lost twice in a row: let the others through first
                await self._sleep(random.uniform(0, 0.005 * attempt))  # noqa: S311 - jitter
            turns = take_turns(self._record(), self._clock(), wanted, self.pacing)
            if turns.busy_until is not None:
                # Every time in the record only moves forward: busy here is busy there too.
                raise self._refusal(call, turns.busy_until - self._clock())
            if await self._save(turns.record):
                self._turns.extend(turns.at)
                return
        raise self._refusal(call, self.pacing.lease, contended=True)

    # --- the shared record ---------------------------------------------------------------

    def _record(self) -> PacingRecord:
        return merged(self._copy.record, self._known)

    async def _load(self) -> None:
        self._copy = await self._store.load()
        self._copied_at = self._monotonic()
        # Nobody wrote since this process did: alone again, write without reading first.
        if self._copy.version is not None and self._copy.version == self._written:
            self._contended = False

    async def _save(self, record: PacingRecord) -> bool:
        """Write `record` over the copy it came from; False (and a fresh copy to retry
        from) when another instance wrote first."""
        version = await self._store.save(record, self._copy.version)
        if version is None:
            self._contended = True
            await self._load()
            return False
        self._written = version
        self._copy = StoredPacing(record, version)
        self._copied_at = self._monotonic()
        return True

    async def _publish(self) -> None:
        """Write this process's 429s into the shared record (in the background)."""
        try:
            async with self._lock:
                for _ in range(MAX_ATTEMPTS):
                    record = self._record()
                    if record == self._copy.record and self._copy.version is not None:
                        return  # already there (a later pause, or turns taken since)
                    if await self._save(record):  # then again, for a 429 met meanwhile
                        log.info("a Graph 429 is shared with every instance: %s", record.cause)
        except Exception:  # the next turns taken write it all the same
            log.warning("could not share a Graph pause with the other instances", exc_info=True)

    def _refusal(self, call: GraphCall, seconds: float, *, contended: bool = False) -> GraphError:
        """A call not sent: its turn is beyond the horizon (or the record too contended)."""
        record = self._record()
        if contended:
            why = "the app's instances kept changing the shared pacing record"
        elif pause_left(record, self._clock(), write=call.is_write) > 0:
            why = f"Graph asked the app to wait ({record.cause or '429'})"
        else:
            rate = self.pacing.writes_per_second
            why = f"the app's next write turn is {seconds:.1f} s away ({rate:g} writes/s)"
        return GraphError(
            f"not sent: {why}",
            kind=GraphErrorKind.THROTTLED,
            call=call,
            status=429,
            code="TooManyRequests",
            retry_after=max(seconds, 0.0),
        )
