"""The process's throttling gate: Graph throttles an app as a whole (docs/graph-facts.md,
"Throttling budget, in numbers"), so after a 429 every call of the process waits, not only
the one that got it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from shared.domain.errors import GraphCall, GraphError, GraphErrorKind

# Without a Retry-After, how long a 429 closes the throttling gate.
DEFAULT_THROTTLE_SECONDS: Final = 2.0


class ThrottleGate:
    """A 429 on a read closes the gate for reads and writes (the resource-unit budget
    covers both); a 429 on a write closes it for writes only (writes have a budget of their
    own, 3,000 per 150 s), so lookups go on meanwhile."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._all_until = 0.0
        self._writes_until = 0.0
        self._cause: GraphError | None = None

    def close(self, error: GraphError, *, write: bool) -> None:
        seconds = error.retry_after if error.retry_after is not None else DEFAULT_THROTTLE_SECONDS
        until = self._clock() + seconds
        if write:
            self._writes_until = max(self._writes_until, until)
        else:
            self._all_until = max(self._all_until, until)
        self._cause = error

    def closed_for(self, *, write: bool) -> float:
        """Seconds until a call of this kind may be sent (0 when it may go now)."""
        until = max(self._all_until, self._writes_until) if write else self._all_until
        return max(0.0, until - self._clock())

    def refusal(self, call: GraphCall, seconds: float) -> GraphError:
        """What a call that is not sent reports: the 429 that closed the gate, re-dated."""
        cause = self._cause
        return GraphError(
            f"not sent: Graph asked this app to wait ({cause.graph_message if cause else '429'})",
            kind=GraphErrorKind.THROTTLED,
            call=call,
            status=cause.status if cause else 429,
            code=cause.code if cause else "TooManyRequests",
            request_id=cause.request_id if cause else None,
            retry_after=seconds,
        )
