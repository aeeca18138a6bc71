"""The control API under `/_emulator`: a path Graph never uses, so no client can hit it by mistake.

It needs no token. Bodies are JSON; errors are `{"error": "<text>"}` with 400
(bad input), 404 (unknown user, SKU or route) or 409 (a clock that cannot be
advanced). Routes are listed in the package docstring.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from . import teams_control
from .clock import Clock, ManualClock
from .directory import Directory, DirectoryFormatError
from .faults import FaultFormatError
from .permissions import PermissionFormatError
from .service import GraphService
from .teams_control import TeamsControls

ControlReply = tuple[int, Any]


class ControlError(Exception):
    """A control-API refusal: HTTP status and a human-readable reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Controls(TeamsControls):
    """The control API in-process: what a test or script changes on a running emulator.
    `Emulator` (server.py) is one; the HTTP routes below call the same methods (the Teams
    ones live in `teams_control`)."""

    clock: Clock
    directory: Directory
    service: GraphService
    _initial: dict[str, Any]

    def add_user(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Add a user (directory-file shape); its delays count from now."""
        return self.directory.add_user(spec)

    def sync_user(self, key: str) -> dict[str, Any]:
        """Make a user exist and be synced now."""
        return self.directory.sync_user(key)

    def user_record(self, key: str) -> dict[str, Any]:
        """The full internal record of any user (visible or not)."""
        return self.directory.internal(key)

    def requests(self) -> list[dict[str, Any]]:
        """The request log (see the package docstring for the entry shape)."""
        return self.service.requests()

    def clear_requests(self) -> None:
        """Empty the request log."""
        self.service.clear_requests()

    def add_fault(self, **spec: Any) -> None:
        """Add a fault rule; keys as in the control API (`path`, `status`, `retryAfter`...)."""
        self.service.faults.add(spec)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.service.faults.clear()

    def set_seats(self, sku_part_number: str, **changes: Any) -> dict[str, Any]:
        """Set `enabled`, `consumedUnits` (and other unit counts) of a SKU."""
        return self.directory.set_seats(sku_part_number, changes)

    def set_throttle(
        self, units_per_10s: int | None = None, writes_per_150s: int | None = None
    ) -> None:
        """Change the throttling budgets (0 = unlimited) and restart the windows."""
        self.service.throttle.configure(units_per_10s, writes_per_150s)

    def set_consistency(
        self,
        write_not_found: int | None = None,
        usage_location_lag: int | None = None,
        key_lookup_lag: int | None = None,
    ) -> dict[str, int]:
        """Change the replication-lag defaults for users added from now on (None = unchanged)."""
        return self.directory.set_consistency(
            _lag_changes(write_not_found, usage_location_lag, key_lookup_lag)
        )

    def set_user_lag(
        self,
        key: str,
        write_not_found: int | None = None,
        usage_location_lag: int | None = None,
        key_lookup_lag: int | None = None,
    ) -> dict[str, Any]:
        """Set one user's remaining lag counters now (None = unchanged); the full record."""
        return self.directory.set_user_lag(
            key, _lag_changes(write_not_found, usage_location_lag, key_lookup_lag)
        )

    def permissions(self) -> list[str] | None:
        """The application permissions granted to the app, or None for all of them."""
        return self.directory.permissions.granted()

    def set_permissions(self, granted: Iterable[str] | None) -> None:
        """Grant exactly these application permissions (None = every permission)."""
        self.directory.permissions.set(granted)

    def grant(self, name: str) -> None:
        """Grant one application permission (e.g. `User.Read.All`)."""
        self.directory.permissions.grant(name)

    def revoke(self, name: str) -> None:
        """Revoke one application permission."""
        self.directory.permissions.revoke(name)

    # ------------------------------------------------------------- Cloud Sync

    def sync_settings(self) -> dict[str, Any]:
        """Jobs, `cycleSeconds`, `onDemandDelaySeconds`, last/next cycle, users awaiting sync."""
        return self.directory.sync_settings()

    def set_sync(
        self, cycle_seconds: float | None = None, on_demand_delay_seconds: float | None = None
    ) -> dict[str, Any]:
        """Set the cycle (0 = none; boundaries restart from now) and/or the on-demand delay."""
        changes = {"cycleSeconds": cycle_seconds, "onDemandDelaySeconds": on_demand_delay_seconds}
        return self.directory.set_sync({k: v for k, v in changes.items() if v is not None})

    def run_sync_cycle(self) -> list[str]:
        """Run a Cloud Sync cycle now: every user awaiting sync is synced; their UPNs."""
        return self.directory.run_sync_cycle()

    def provision_on_demand_calls(self) -> list[dict[str, Any]]:
        """The request log's provisionOnDemand entries (direct and `$batch` items), oldest first."""
        return [
            entry
            for entry in self.service.requests()
            if unquote(entry["path"]).rstrip("/").split("/")[-1]
            in {"provisionOnDemand", "microsoft.graph.provisionOnDemand"}
        ]

    # ---------------------------------------------------------- group licensing

    def add_group(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Add a group (directory-file shape); its members are processed after the delay."""
        return self.directory.add_group(spec)

    def group_record(self, group_id: str) -> dict[str, Any]:
        """A group: licenses, members and the processing still pending."""
        return self.directory.group_record(group_id)

    def set_group_licenses(self, group_id: str, licenses: list[dict[str, Any]]) -> dict[str, Any]:
        """Replace a group's licenses (`[{"skuId", "disabledPlans"}]`); members reprocessed."""
        return self.directory.set_group_licenses(group_id, licenses)

    def set_group_license_delay(self, seconds: float) -> dict[str, Any]:
        """`groupLicenseDelaySeconds` for processing scheduled from now on."""
        return self.directory.set_licensing({"groupLicenseDelaySeconds": seconds})

    def set_tenant_usage_location(self, location: str | None) -> dict[str, Any]:
        """The location group licensing gives users without one (None = no tenant location)."""
        return self.directory.set_licensing({"tenantUsageLocation": location})

    def license_states(self, user_key: str) -> list[dict[str, Any]]:
        """A user's `licenseAssignmentStates`, as `$select=licenseAssignmentStates` shows them."""
        return self.directory.license_states(user_key)

    def set_batch_shuffle(self, shuffle: bool) -> None:
        """Shuffle `$batch` responses (the default) or keep them in request order."""
        self.service.shuffle_batch = shuffle

    def advance_clock(self, seconds: float) -> None:
        """Move a manual clock forward; a TypeError on the wall clock."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError(
                "the emulator runs on the wall clock; start it with clock=ManualClock()"
            )
        self.clock.advance(seconds)

    def reset(self, directory: dict[str, Any] | None = None) -> None:
        """Reload a directory (the initial one by default); clear faults, log and throttling.

        The file's consistency defaults and permissions come back with it; throttle budgets
        and the batch order setting stay as they are.
        """
        if directory is not None:
            self._initial = copy.deepcopy(directory)
        self.directory.load(copy.deepcopy(self._initial))
        self.service.faults.clear()
        self.service.clear_requests()
        self.service.throttle.configure()
        self.service.teams_throttle.configure()


def _lag_changes(
    write_not_found: int | None, usage_location_lag: int | None, key_lookup_lag: int | None
) -> dict[str, int]:
    given = {
        "writeNotFound": write_not_found,
        "usageLocationLag": usage_location_lag,
        "keyLookupLag": key_lookup_lag,
    }
    return {k: v for k, v in given.items() if v is not None}


def handle_control(emulator: Controls, method: str, segments: list[str], body: Any) -> ControlReply:
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


Handler = Callable[[Controls, list[str], Any], ControlReply]


def _route(method: str, segments: list[str]) -> Handler:
    if segments and segments[0] == "teams":
        teams_handler = teams_control.route(method, segments)
        if teams_handler is None:
            raise ControlError(404, f"no control route {method} {'/'.join(segments)}")
        return teams_handler
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
        ("GET", "sync"): lambda e, s, b: (200, e.sync_settings()),
        ("PUT", "sync"): lambda e, s, b: (200, e.directory.set_sync(_object(b))),
        ("POST", "sync/cycle"): lambda e, s, b: (200, {"synced": e.run_sync_cycle()}),
        ("GET", "sync/provisionOnDemand"): lambda e, s, b: (200, e.provision_on_demand_calls()),
        ("GET", "groups"): lambda e, s, b: (200, e.directory.groups()),
        ("POST", "groups"): lambda e, s, b: (201, e.add_group(_object(b))),
        ("GET", "groups/*"): lambda e, s, b: (200, e.group_record(s[1])),
        ("PUT", "groups/*/licenses"): _group_licenses,
        ("GET", "licensing"): lambda e, s, b: (200, e.directory.licensing_settings()),
        ("PUT", "licensing"): lambda e, s, b: (200, e.directory.set_licensing(_object(b))),
        ("GET", "users/*/licenseAssignmentStates"): lambda e, s, b: (200, e.license_states(s[1])),
    }
    shape = "/".join(
        "*" if (i == 1 and segments[0] in {"users", "skus", "permissions", "groups"}) else part
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


def _add_user(emulator: Controls, segments: list[str], body: Any) -> ControlReply:
    return 201, emulator.add_user(_object(body))


def _group_licenses(emulator: Controls, segments: list[str], body: Any) -> ControlReply:
    spec = _object(body)
    if set(spec) != {"licenses"}:
        raise ControlError(400, 'the body is {"licenses": [{"skuId": ..., "disabledPlans": []}]}')
    return 200, emulator.set_group_licenses(segments[1], spec["licenses"])


def _added_fault(emulator: Controls, body: dict[str, Any]) -> dict[str, Any]:
    emulator.add_fault(**body)
    return {"faults": emulator.service.faults.list()}


def _throttle(emulator: Controls, segments: list[str], body: Any) -> ControlReply:
    spec = _object(body)
    units, writes = spec.get("unitsPer10s"), spec.get("writesPer150s")
    for value in (units, writes):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ControlError(400, "budgets are non-negative integers (0 = no limit)")
    emulator.set_throttle(units_per_10s=units, writes_per_150s=writes)
    throttle = emulator.service.throttle
    return 200, {"unitsPer10s": throttle.units_per_10s, "writesPer150s": throttle.writes_per_150s}


def _set_permissions(emulator: Controls, segments: list[str], body: Any) -> ControlReply:
    spec = _object(body)
    if set(spec) != {"granted"}:
        raise ControlError(400, 'the body is {"granted": [permission names] or null}')
    granted = spec["granted"]
    if granted is not None and not isinstance(granted, list):
        raise ControlError(400, "granted must be a list of permission names or null")
    return _granted(emulator, lambda: emulator.set_permissions(granted))


def _granted(emulator: Controls, change: Callable[[], None]) -> ControlReply:
    change()
    return 200, {"granted": emulator.permissions()}


def _batch(emulator: Controls, segments: list[str], body: Any) -> ControlReply:
    shuffle = _object(body).get("shuffle")
    if not isinstance(shuffle, bool):
        raise ControlError(400, 'the body is {"shuffle": true|false}')
    emulator.set_batch_shuffle(shuffle)
    return 200, {"shuffle": emulator.service.shuffle_batch}


def _advance(emulator: Controls, segments: list[str], body: Any) -> ControlReply:
    seconds = _object(body).get("seconds")
    if not isinstance(seconds, int | float) or seconds < 0:
        raise ControlError(400, "seconds must be a non-negative number")
    try:
        emulator.advance_clock(seconds)
    except TypeError as exc:
        raise ControlError(409, str(exc)) from exc
    return 200, {"now": emulator.clock.now()}
