"""Microsoft Teams' own throttling budget, per app (bearer token), for the Teams admin routes.

The Teams admin APIs (`/admin/teams/...`) are not identity calls, so they are
not metered in resource units (no `x-ms-resource-unit` header) but against
Teams' limits. Source: "Microsoft Graph service-specific throttling limits",
section "Microsoft Teams service limits" (learn.microsoft.com/graph/throttling-limits;
microsoft-graph-docs-contrib includes/throttling-teams.md): no row names
`teamsAdministration` or telephone number management, so the catch-all rows
apply: "Other GET API calls for Microsoft Teams" 30 requests per second per
app per tenant, "Other API calls for Microsoft Teams" 30 rps per app per tenant.

The emulator: two fixed one-second windows per client (reads = GET, writes =
everything else); a call over the budget is 429 `TooManyRequests` "Please retry
again later." with `Retry-After` (whole seconds, at least 1) and charges
nothing. Not modelled: the per-app-across-tenants limits (600 and 300 rps),
Graph's global limit, and 429s under load.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from .clock import Clock

WINDOW_SECONDS = 1.0
DEFAULT_READS_PER_SECOND = 30
DEFAULT_WRITES_PER_SECOND = 30


@dataclass
class _Window:
    start: float
    used: int = 0


class TeamsThrottle:
    """Fixed one-second windows per client; `admit` returns None or the seconds to wait."""

    def __init__(
        self,
        clock: Clock,
        reads_per_second: int = DEFAULT_READS_PER_SECOND,
        writes_per_second: int = DEFAULT_WRITES_PER_SECOND,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.reads_per_second = reads_per_second
        self.writes_per_second = writes_per_second
        self._windows: dict[tuple[str, bool], _Window] = {}

    def configure(
        self, reads_per_second: int | None = None, writes_per_second: int | None = None
    ) -> None:
        """Change the budgets (0 = no limit) and start fresh windows."""
        with self._lock:
            if reads_per_second is not None:
                self.reads_per_second = reads_per_second
            if writes_per_second is not None:
                self.writes_per_second = writes_per_second
            self._windows.clear()

    def admit(self, client: str, method: str) -> int | None:
        """Charge one call, or return the whole seconds to wait when the budget is spent."""
        write = method.upper() != "GET"
        limit = self.writes_per_second if write else self.reads_per_second
        with self._lock:
            now = self._clock.now()
            window = self._windows.get((client, write))
            if window is None or now >= window.start + WINDOW_SECONDS:
                window = self._windows[(client, write)] = _Window(now)
            if limit and window.used >= limit:
                return max(1, math.ceil(window.start + WINDOW_SECONDS - now))
            window.used += 1
            return None
