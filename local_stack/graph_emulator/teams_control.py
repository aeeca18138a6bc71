"""The Teams part of the control API (`/_emulator/teams/...`) and its in-process helpers.

`TeamsControls` is mixed into `control.Controls` (so `Emulator` has the helpers);
`route` gives `control.handle_control` the handler of a `teams/...` path. Errors
follow the control API's rules: `DirectoryFormatError` is a 400, `KeyError` a 404.

- `GET  /teams` -> settings: `provisioningDelaySeconds`, `moveDelaySeconds`,
  `operationStartSeconds`, `operationRunSeconds`, `readsPerSecond`, `writesPerSecond`,
  `failNext` (statusDetails of the next orders to fail); `PUT /teams` any subset
- `POST /teams/users` `{"user": id|upn, "accountType"?, "provisioningDelaySeconds"?,
  "isEnterpriseVoiceEnabled"?}` -> the user's Teams record (as `GET /teams/users/{key}`)
- `GET  /teams/users/{key}` -> `{"userId", "userPrincipalName", "configuration" (what
  Graph shows now, with ineligibleUser spelt out, or null), "_emulator": {"knownAt",
  "accountType" (set explicitly, or null), "moveAt", "provisioningDelaySeconds",
  "features": [{"plan", "featureType", "readyAt"}]}}`
- `POST /teams/users/{key}/move` `{"delaySeconds"?}` -> an sfbOnPremUser becomes `user`
- `GET  /teams/numbers`; `POST /teams/numbers` (a `teams.numberAssignments` entry) -> 201;
  `GET /teams/numbers/{number}` (with or without '+') -> the number as Graph shows it
- `GET  /teams/operations` -> every assignNumber order (asked, times, status, statusDetail)
- `POST /teams/operations/failNext` `{"count"?: 1, "statusDetail"?: str}` -> the next orders
  fail with that statusDetail (default Teams' "Service is unavailable. Please try again")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import teams, teams_numbers, teams_orders
from .clock import Clock, iso_z
from .directory import Directory
from .errors import DirectoryFormatError
from .service import GraphService

ControlReply = tuple[int, Any]
THROTTLE_KEYS = {"readsPerSecond": "reads_per_second", "writesPerSecond": "writes_per_second"}


class TeamsControls:
    """In-process Teams helpers of `Emulator` (the HTTP routes below call the same)."""

    clock: Clock
    directory: Directory
    service: GraphService

    def teams_settings(self) -> dict[str, Any]:
        """The Teams delays, budgets and injected failures."""
        with self.directory.observed():
            tenant = self.directory.teams
            return {
                **tenant.settings.to_json(),
                "readsPerSecond": self.service.teams_throttle.reads_per_second,
                "writesPerSecond": self.service.teams_throttle.writes_per_second,
                "failNext": list(tenant.orders.fail_next),
            }

    def set_teams(self, **changes: Any) -> dict[str, Any]:
        """Change settings by their file/control keys (`provisioningDelaySeconds=60`...)."""
        unknown = set(changes) - set(teams.SETTING_KEYS) - set(THROTTLE_KEYS)
        if unknown:
            raise DirectoryFormatError(f"unknown teams settings: {sorted(unknown)}")
        budgets = {THROTTLE_KEYS[k]: v for k, v in changes.items() if k in THROTTLE_KEYS}
        for value in budgets.values():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DirectoryFormatError("readsPerSecond / writesPerSecond: integers >= 0")
        with self.directory.observed():
            tenant = self.directory.teams
            delays = {k: v for k, v in changes.items() if k in teams.SETTING_KEYS}
            tenant.settings = teams.parse_settings(delays, tenant.settings)
        if budgets:
            self.service.teams_throttle.configure(**budgets)
        return self.teams_settings()

    def add_teams_user(
        self,
        user: str,
        *,
        account_type: str | None = None,
        provisioning_delay_seconds: float | None = None,
        enterprise_voice: bool | None = None,
    ) -> dict[str, Any]:
        """Give a directory user Teams options; an accountType makes it known to Teams now."""
        spec: dict[str, Any] = {"user": user}
        for key, value in (
            ("accountType", account_type),
            ("provisioningDelaySeconds", provisioning_delay_seconds),
            ("isEnterpriseVoiceEnabled", enterprise_voice),
        ):
            if value is not None:
                spec[key] = value
        return self._set_teams_user(spec)

    def _set_teams_user(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self.directory.observed():
            lookup = self._lookup()
            record = self.directory.teams.set_user(spec, self.clock.now(), lookup)
        return self.teams_user(record.user_id)

    def teams_user(self, key: str) -> dict[str, Any]:
        """What Teams holds about a user, and when each feature is or was ready."""
        with self.directory.observed():
            tenant, now = self.directory.teams, self.clock.now()
            tenant.advance(now, self.directory.teams_facts)
            facts = self._lookup()(key)
            if facts is None:
                raise KeyError(key)
            record = tenant.users.get(facts.id)
            known = tenant.known_at(facts, now)
            return {
                "userId": facts.id,
                "userPrincipalName": facts.upn,
                "configuration": tenant.configuration(facts, now, include_unknown=True),
                "_emulator": {
                    "knownAt": None if known is None else iso_z(known),
                    "accountType": None if record is None else record.account_type,
                    "moveAt": None
                    if record is None or record.move_at is None
                    else iso_z(record.move_at),
                    "provisioningDelaySeconds": tenant.delay_for(facts.id),
                    "features": [
                        {"plan": plan, "featureType": feature, "readyAt": iso_z(ready)}
                        for plan, feature, ready in tenant.schedule(facts)
                    ],
                },
            }

    def move_to_teams(self, key: str, delay_seconds: float | None = None) -> dict[str, Any]:
        """Move an sfbOnPremUser to Teams (accountType `user` after the delay)."""
        with self.directory.observed():
            facts = self._lookup()(key)
            if facts is None:
                raise KeyError(key)
            self.directory.teams.move(facts.id, delay_seconds, self.clock.now())
        return self.teams_user(key)

    def teams_numbers(self) -> list[dict[str, Any]]:
        """Every number of the inventory, as Graph shows it now."""
        with self.directory.observed():
            tenant, now = self.directory.teams, self.clock.now()
            tenant.advance(now, self.directory.teams_facts)
            return [tenant.number_view(r, now) for r in tenant.numbers.values()]

    def teams_number(self, number: str) -> dict[str, Any]:
        """One number (with or without '+') as Graph shows it now; KeyError if unknown."""
        wanted = teams_numbers.normalize(number.strip()) or number
        found = [n for n in self.teams_numbers() if n["telephoneNumber"] == wanted]
        if not found:
            raise KeyError(number)
        return found[0]

    def add_teams_number(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Add a number to the inventory (a `teams.numberAssignments` entry)."""
        with self.directory.observed():
            lookup = self._lookup()
            record = teams_numbers.parse_number(
                spec, lambda key: None if (f := lookup(key)) is None else f.id
            )
            if record["telephoneNumber"] in self.directory.teams.numbers:
                raise DirectoryFormatError(f"number {record['telephoneNumber']} already exists")
            self.directory.teams.numbers[record["telephoneNumber"]] = record
        return self.teams_number(record["telephoneNumber"])

    def fail_next_teams_operation(
        self, status_detail: str | None = None, count: int = 1
    ) -> list[str]:
        """The next `count` assignNumber orders fail with `status_detail`."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise DirectoryFormatError("count must be a positive integer")
        if status_detail is not None and (not isinstance(status_detail, str) or not status_detail):
            raise DirectoryFormatError("statusDetail must be a non-empty string")
        with self.directory.observed():
            queue = self.directory.teams.orders.fail_next
            queue.extend([status_detail or teams_orders.SERVICE_UNAVAILABLE] * count)
            return list(queue)

    def teams_operations(self) -> list[dict[str, Any]]:
        """Every assignNumber order, oldest first (the control API's operations log)."""
        with self.directory.observed():
            tenant, now = self.directory.teams, self.clock.now()
            tenant.advance(now, self.directory.teams_facts)
            return tenant.orders.log(now)

    def _lookup(self) -> teams.FactsLookup:
        return lambda key: self.directory.teams_facts(key, include_hidden=True)


Handler = Callable[[Any, list[str], Any], ControlReply]


def route(method: str, segments: list[str]) -> Handler | None:
    """The handler of a control call under `teams`, or None (an unknown route)."""
    shape = "/".join(
        "*" if i == 2 and segments[1] in {"users", "numbers"} else part
        for i, part in enumerate(segments)
    )
    table: dict[tuple[str, str], Handler] = {
        ("GET", "teams"): lambda e, s, b: (200, e.teams_settings()),
        ("PUT", "teams"): lambda e, s, b: (200, e.set_teams(**_object(b))),
        ("POST", "teams/users"): lambda e, s, b: (200, e._set_teams_user(_object(b))),
        ("GET", "teams/users/*"): lambda e, s, b: (200, e.teams_user(s[2])),
        ("POST", "teams/users/*/move"): lambda e, s, b: (
            200,
            e.move_to_teams(s[2], _object(b or {}).get("delaySeconds")),
        ),
        ("GET", "teams/numbers"): lambda e, s, b: (200, e.teams_numbers()),
        ("POST", "teams/numbers"): lambda e, s, b: (201, e.add_teams_number(_object(b))),
        ("GET", "teams/numbers/*"): lambda e, s, b: (200, e.teams_number(s[2])),
        ("GET", "teams/operations"): lambda e, s, b: (200, e.teams_operations()),
        ("POST", "teams/operations/failNext"): _fail_next,
    }
    return table.get((method, shape))


def _fail_next(emulator: Any, segments: list[str], body: Any) -> ControlReply:
    spec = _object(body or {})
    unknown = set(spec) - {"count", "statusDetail"}
    if unknown:
        raise DirectoryFormatError(f"failNext takes count and statusDetail, not {sorted(unknown)}")
    queue = emulator.fail_next_teams_operation(spec.get("statusDetail"), spec.get("count", 1))
    return 200, {"failNext": queue}


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise DirectoryFormatError("a JSON object body is required")
    return body
