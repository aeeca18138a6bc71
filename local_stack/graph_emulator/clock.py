"""Time sources: the wall clock, or a manual clock tests advance instead of sleeping.

Everything time-dependent in the emulator (users appearing, sync flipping,
throttling windows, `innerError.date`) reads one `Clock`, so a test can move
time forward by a minute in a microsecond and stay deterministic.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Seconds since the Unix epoch, as a float."""

    def now(self) -> float:
        """Return the current time in seconds since the epoch."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        """Return `time.time()`."""
        return time.time()


class ManualClock:
    """A clock that only moves when told to; starts at the real time so dates look real."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def now(self) -> float:
        """Return the frozen time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward (never back: Graph never sees time go backwards)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now


def to_datetime(seconds: float) -> datetime:
    """Convert clock seconds to an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def iso_z(seconds: float) -> str:
    """Format like Graph's DateTimeOffset values: `2024-02-14T11:10:50Z`."""
    return to_datetime(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")
