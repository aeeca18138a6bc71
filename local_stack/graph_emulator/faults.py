"""Injected faults: the outages and slowness real Graph has, on demand.

A fault matches a method (or any) and a regular expression searched in the
decoded path after `/v1.0` (e.g. `^/users/`), fires with a probability from a
seeded RNG, at most `count` times, and then answers with an error status (with
`Retry-After` if asked), waits `delayMs` first, or drops the connection.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_DEFAULT_CODES = {
    429: ("TooManyRequests", "Too many requests."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "Service unavailable."),
    504: ("GatewayTimeout", "Gateway timeout."),
}


class FaultFormatError(ValueError):
    """A fault specification that cannot be used."""


@dataclass
class Fault:
    """One rule; `remaining` is None for unlimited."""

    path: re.Pattern[str]
    method: str | None = None
    status: int | None = None
    retry_after: int | None = None
    rate: float = 1.0
    remaining: int | None = None
    delay_ms: int = 0
    drop: bool = False
    code: str | None = None
    message: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)

    def error(self) -> tuple[int, str, str] | None:
        """The (status, code, message) to answer with, if this fault answers at all."""
        if self.status is None:
            return None
        code, message = _DEFAULT_CODES.get(self.status, ("UnknownError", "Injected fault."))
        return self.status, self.code or code, self.message or message


def parse_fault(spec: Mapping[str, Any]) -> Fault:
    """Validate a control-API fault body."""
    allowed = {"method", "path", "status", "retryAfter", "rate", "count", "delayMs", "drop"}
    allowed |= {"code", "message"}
    unknown = set(spec) - allowed
    if unknown:
        raise FaultFormatError(f"unknown fault keys: {sorted(unknown)}")
    try:
        pattern = re.compile(spec.get("path") or ".*")
    except re.error as exc:
        raise FaultFormatError(f"path is not a regular expression: {exc}") from exc
    status = spec.get("status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise FaultFormatError("status must be an HTTP error status (400-599)")
    rate = spec.get("rate", 1.0)
    if not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise FaultFormatError("rate must be between 0 and 1")
    count = spec.get("count")
    if count is not None and (not isinstance(count, int) or count < 0):
        raise FaultFormatError("count must be a non-negative integer or null")
    if status is None and not spec.get("drop") and not spec.get("delayMs"):
        raise FaultFormatError("a fault needs a status, drop or delayMs")
    method = spec.get("method")
    return Fault(
        path=pattern,
        method=method.upper() if isinstance(method, str) else None,
        status=status,
        retry_after=spec.get("retryAfter"),
        rate=float(rate),
        remaining=count,
        delay_ms=int(spec.get("delayMs") or 0),
        drop=bool(spec.get("drop")),
        code=spec.get("code"),
        message=spec.get("message"),
        spec=dict(spec),
    )


class Faults:
    """The active fault rules; the first matching rule that fires wins."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)

    def add(self, spec: Mapping[str, Any]) -> Fault:
        """Add a rule from its control-API body."""
        fault = parse_fault(spec)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        """Rules as given, with how many firings remain."""
        with self._lock:
            return [{**f.spec, "remaining": f.remaining} for f in self._faults]

    def pick(self, method: str, path: str) -> Fault | None:
        """Return the fault to apply to this request, consuming one of its firings."""
        with self._lock:
            for fault in self._faults:
                if fault.method not in (None, method) or not fault.path.search(path):
                    continue
                if fault.remaining == 0:
                    continue
                if fault.rate < 1 and self._rng.random() >= fault.rate:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
            return None
