"""Graph's identity-and-access throttling budget, per client.

Graph meters directory calls in resource units per app and tenant per 10 s
(3,500 for a small tenant) and, separately, writes per 150 s (3,000). The
emulator keeps one fixed window per client (the bearer token) for each budget;
a request over budget costs nothing and gets 429 with a whole-second
`Retry-After` until its window ends - the behaviour the app's retry and
pending-queue logic must cope with.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from .clock import Clock

RESOURCE_WINDOW_SECONDS = 10.0
WRITE_WINDOW_SECONDS = 150.0
DEFAULT_UNITS_PER_10S = 3500
DEFAULT_WRITES_PER_150S = 3000


@dataclass
class _Window:
    start: float
    used: int = 0


class Throttle:
    """Fixed-window budgets; `admit` either charges the request or says how long to wait."""

    def __init__(
        self,
        clock: Clock,
        units_per_10s: int = DEFAULT_UNITS_PER_10S,
        writes_per_150s: int = DEFAULT_WRITES_PER_150S,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.units_per_10s = units_per_10s
        self.writes_per_150s = writes_per_150s
        self._units: dict[str, _Window] = {}
        self._writes: dict[str, _Window] = {}

    def configure(
        self, units_per_10s: int | None = None, writes_per_150s: int | None = None
    ) -> None:
        """Change budgets (0 disables that budget) and start fresh windows."""
        with self._lock:
            if units_per_10s is not None:
                self.units_per_10s = units_per_10s
            if writes_per_150s is not None:
                self.writes_per_150s = writes_per_150s
            self._units.clear()
            self._writes.clear()

    def admit(self, client: str, cost: int, is_write: bool) -> int | None:
        """Charge `cost` units (and one write); return Retry-After seconds if over budget."""
        with self._lock:
            now = self._clock.now()
            units = self._window(self._units, client, now, RESOURCE_WINDOW_SECONDS)
            writes = self._window(self._writes, client, now, WRITE_WINDOW_SECONDS)
            waits = []
            if self.units_per_10s and units.used + cost > self.units_per_10s:
                waits.append(units.start + RESOURCE_WINDOW_SECONDS - now)
            if is_write and self.writes_per_150s and writes.used + 1 > self.writes_per_150s:
                waits.append(writes.start + WRITE_WINDOW_SECONDS - now)
            if waits:
                return max(1, math.ceil(max(waits)))
            units.used += cost
            if is_write:
                writes.used += 1
            return None

    @staticmethod
    def _window(windows: dict[str, _Window], client: str, now: float, length: float) -> _Window:
        window = windows.get(client)
        if window is None or now >= window.start + length:
            window = windows[client] = _Window(now)
        return window
