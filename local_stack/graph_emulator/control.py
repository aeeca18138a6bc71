"""The control API under `/_emulator`: a path Graph never uses, so no client can hit it by mistake.

It needs no token. Bodies are JSON; errors are `{"error": "<text>"}` with 400
(bad input), 404 (unknown user, SKU or route) or 409 (a clock that cannot be
advanced). Routes are listed in the package docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .directory import DirectoryFormatError
from .faults import FaultFormatError
from .permissions import PermissionFormatError

if TYPE_CHECKING:
    from .server import Emulator

ControlReply = tuple[int, Any]


class ControlError(Exception):
    """A control-API refusal: HTTP status and a human-readable reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def handle_control(emulator: Emulator, method: str, segments: list[str], body: Any) -> ControlReply:
    """Dispatch one control call; `segments` are the decoded path parts after `_emulator`."""
    try:
        handler = _route(method, segments)
        return handler(emulator, segments, body)
    except ControlError as exc:
        return exc.status, {"error": exc.reason}
    except KeyError as exc:
        return 404, {"error": f"not found: {exc.args[0]}"}
    except (DirectoryFormatError, FaultFormatError, PermissionFormatError) as exc:
        return 400, {"error": str(exc)}


Handler = Callable[["Emulator", list[str], Any], ControlReply]


def _route(method: str, segments: list[str]) -> Handler:
    table: dict[tuple[str, str], Handler] = {
        ("GET", "health"): lambda e, s, b: (200, {"status": "ok"}),
        ("POST", "users"): _add_user,
        ("GET", "users/*"): lambda e, s, b: (200, e.directory.internal(s[1])),
        ("POST", "users/*/sync"): lambda e, s, b: (200, e.sync_user(s[1])),
        ("PUT", "users/*/lag"): lambda e, s, b: (200, e.directory.set_user_lag(s[1], _object(b))),
        ("GET", "consistency"): lambda e, s, b: (200, e.directory.consistency()),
        ("PUT", "consistency"): lambda e, s, b: (200, e.directory.set_consistency(_object(b))),
        ("GET", "permissions"): lambda e, s, b: (200, {"granted": e.permissions()}),
        ("PUT", "permissions"): _set_permissions,
        ("POST", "permissions/*"): lambda e, s, b: _granted(e, lambda: e.grant(s[1])),
        ("DELETE", "permissions/*"): lambda e, s, b: _granted(e, lambda: e.revoke(s[1])),
        ("GET", "batch"): lambda e, s, b: (200, {"shuffle": e.service.shuffle_batch}),
        ("PUT", "batch"): _batch,
        ("GET", "skus"): lambda e, s, b: (200, e.directory.subscribed_skus()),
        ("PUT", "skus/*"): lambda e, s, b: (200, e.set_seats(s[1], **_object(b))),
        ("GET", "requests"): lambda e, s, b: (200, e.requests()),
        ("DELETE", "requests"): lambda e, s, b: _none(e.clear_requests),
        ("GET", "faults"): lambda e, s, b: (200, e.service.faults.list()),
        ("POST", "faults"): lambda e, s, b: (201, _added_fault(e, _object(b))),
        ("DELETE", "faults"): lambda e, s, b: _none(e.clear_faults),
        ("POST", "reset"): lambda e, s, b: _none(lambda: e.reset(b if b else None)),
        ("PUT", "throttle"): _throttle,
        ("POST", "clock/advance"): _advance,
    }
    shape = "/".join(
        "*" if (i == 1 and segments[0] in {"users", "skus", "permissions"}) else part
        for i, part in enumerate(segments)
    )
    handler = table.get((method, shape))
    if handler is None:
        known = {s for (_, s) in table}
        raise ControlError(405 if shape in known else 404, f"no control route {method} {shape}")
    return handler


def _none(action: Callable[[], object]) -> ControlReply:
    action()
    return 204, None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ControlError(400, "a JSON object body is required")
    return body


def _add_user(emulator: Emulator, segments: list[str], body: Any) -> ControlReply:
    return 201, emulator.add_user(_object(body))


def _added_fault(emulator: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    emulator.add_fault(**body)
    return {"faults": emulator.service.faults.list()}


def _throttle(emulator: Emulator, segments: list[str], body: Any) -> ControlReply:
    spec = _object(body)
    units, writes = spec.get("unitsPer10s"), spec.get("writesPer150s")
    for value in (units, writes):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ControlError(400, "budgets are non-negative integers (0 = no limit)")
    emulator.set_throttle(units_per_10s=units, writes_per_150s=writes)
    throttle = emulator.service.throttle
    return 200, {"unitsPer10s": throttle.units_per_10s, "writesPer150s": throttle.writes_per_150s}


def _set_permissions(emulator: Emulator, segments: list[str], body: Any) -> ControlReply:
    spec = _object(body)
    if set(spec) != {"granted"}:
        raise ControlError(400, 'the body is {"granted": [permission names] or null}')
    granted = spec["granted"]
    if granted is not None and not isinstance(granted, list):
        raise ControlError(400, "granted must be a list of permission names or null")
    return _granted(emulator, lambda: emulator.set_permissions(granted))


def _granted(emulator: Emulator, change: Callable[[], None]) -> ControlReply:
    change()
    return 200, {"granted": emulator.permissions()}


def _batch(emulator: Emulator, segments: list[str], body: Any) -> ControlReply:
    shuffle = _object(body).get("shuffle")
    if not isinstance(shuffle, bool):
        raise ControlError(400, 'the body is {"shuffle": true|false}')
    emulator.set_batch_shuffle(shuffle)
    return 200, {"shuffle": emulator.service.shuffle_batch}


def _advance(emulator: Emulator, segments: list[str], body: Any) -> ControlReply:
    seconds = _object(body).get("seconds")
    if not isinstance(seconds, int | float) or seconds < 0:
        raise ControlError(400, "seconds must be a non-negative number")
    try:
        emulator.advance_clock(seconds)
    except TypeError as exc:
        raise ControlError(409, str(exc)) from exc
    return 200, {"now": emulator.clock.now()}
