"""Microsoft Teams' view of the tenant: user configurations, the number inventory, orders.

Pure state and rules, no HTTP; `teams_api` answers Graph's calls with it and
`Directory` holds it under its lock (a reset reloads it). Facts, values chosen
and sources: `docs/teams-phone.md`. In short:

- Teams learns of a license late. Each Teams service plan the user holds
  (`PLAN_FEATURES`: TEAMS1, MCOEV, MCOMEETADV, MCOPSTN1/2) becomes a
  `featureTypes` value `provisioningDelaySeconds` after it was enabled on the
  user (directly or by a group; per user or the default), and the user's
  configuration exists (GET 200, else 404) from the first such moment on.
  Field reports: Entra shows MCOEV `Success` while Teams says "is not voice
  user" (office-docs-powershell#8885); "minutes up to hours"
  (microsoft-graph-docs#7710); "up to 24 hours" (Teams docs,
  assign-change-or-remove-a-phone-number-for-a-user). Licenses a user already
  holds when loaded or added count as provisioned long ago.
- `teams.users` entries with an `accountType` exist from the start; an
  `sfbOnPremUser` (homed in Skype for Business Server) is `user` once moved
  (control API, after `moveDelaySeconds`). A user Teams knows without any Teams
  plan is `ineligibleUser` (Get-CsOnlineUser page; sent as `unknownFutureValue`
  without `Prefer: include-unknown-enum-members`, Graph's evolvable enums).
- assignNumber is an order (`teams_orders`): decided `operationStartSeconds` +
  `operationRunSeconds` later against the tenant as it is then; a success puts
  the number on the user here (`assign`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.domain.teams import (
    AccountType,
    ActivationState,
    AssignmentCategory,
    AssignmentStatus,
    FeatureType,
    NumberType,
)

from . import teams_numbers
from .clock import iso_z
from .errors import DirectoryFormatError
from .teams_orders import Operation, OrderBook

#: servicePlanName -> the featureTypes value Teams shows for it (plan names: Microsoft's
#: "Product names and service plan identifiers for licensing"; values: Get-CsOnlineUser).
PLAN_FEATURES: Mapping[str, FeatureType] = {
    "TEAMS1": FeatureType.TEAMS,
    "MCOMEETADV": FeatureType.AUDIO_CONFERENCING,
    "MCOEV": FeatureType.PHONE_SYSTEM,
    "MCOPSTN1": FeatureType.CALLING_PLAN,
    "MCOPSTN2": FeatureType.CALLING_PLAN,
}
DEFAULT_PROVISIONING_DELAY = 30.0
DEFAULT_MOVE_DELAY = 0.0
DEFAULT_OPERATION_START = 1.0
DEFAULT_OPERATION_RUN = 2.0
SETTING_KEYS: Mapping[str, str] = {
    "provisioningDelaySeconds": "provisioning_delay",
    "moveDelaySeconds": "move_delay",
    "operationStartSeconds": "operation_start",
    "operationRunSeconds": "operation_run",
}
TEAMS_KEYS = frozenset({*SETTING_KEYS, "users", "numberAssignments"})
USER_KEYS = frozenset(
    {"user", "accountType", "provisioningDelaySeconds", "isEnterpriseVoiceEnabled"}
)


@dataclass(frozen=True)
class UserFacts:
    """What Teams reads from Entra: the user and when each enabled service plan arrived."""

    id: str
    upn: str
    plans: Mapping[str, float]  # servicePlanName -> enabled since (clock seconds)


FactsLookup = Callable[[str], UserFacts | None]


@dataclass
class TeamsUser:
    """A user Teams holds options for; `account_type` None means 'as the licenses say'."""

    user_id: str
    created_at: float
    account_type: AccountType | None = None
    move_at: float | None = None
    delay: float | None = None
    voice_enabled: bool = False
    changed_at: float = 0.0


@dataclass
class TeamsSettings:
    """The delays of the directory file's `teams` section (seconds)."""

    provisioning_delay: float = DEFAULT_PROVISIONING_DELAY
    move_delay: float = DEFAULT_MOVE_DELAY
    operation_start: float = DEFAULT_OPERATION_START
    operation_run: float = DEFAULT_OPERATION_RUN

    def to_json(self) -> dict[str, float]:
        return {key: getattr(self, attr) for key, attr in SETTING_KEYS.items()}


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise DirectoryFormatError(f"{what} must be a non-negative number")
    return float(value)


def parse_settings(spec: Mapping[str, Any], base: TeamsSettings) -> TeamsSettings:
    """The settings in `spec` (file keys) over `base`."""
    unknown = set(spec) - set(SETTING_KEYS)
    if unknown:
        raise DirectoryFormatError(f"unknown teams settings: {sorted(unknown)}")
    values = {attr: getattr(base, attr) for attr in SETTING_KEYS.values()}
    for key, value in spec.items():
        values[SETTING_KEYS[key]] = _seconds(value, f"teams.{key}")
    return TeamsSettings(**values)


class TeamsTenant:
    """Teams' state; every method runs under the `Directory` lock, with `now` from its clock."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.settings = TeamsSettings()
        self.users: dict[str, TeamsUser] = {}
        self.numbers: dict[str, dict[str, Any]] = {}  # '+number' -> numberAssignment record
        self.orders = OrderBook()
        self._first_seen: dict[tuple[str, str], float] = {}
        self._baseline: set[tuple[str, str]] = set()  # plans held when the user was loaded/added
        self._known: dict[str, float] = {}

    # ---------------------------------------------------------------- loading

    def load(self, spec: Any, now: float, lookup: FactsLookup) -> None:
        """Replace everything with the directory file's `teams` section (None = empty)."""
        spec = {} if spec is None else spec
        if not isinstance(spec, Mapping) or set(spec) - TEAMS_KEYS:
            raise DirectoryFormatError(f"teams must be an object with keys {sorted(TEAMS_KEYS)}")
        self.settings = parse_settings(
            {k: v for k, v in spec.items() if k in SETTING_KEYS}, TeamsSettings()
        )
        self.users, self.numbers, self.orders = {}, {}, OrderBook()
        self._first_seen, self._known, self._baseline = {}, {}, set()
        for entry in _list(spec.get("users", []), "teams.users"):
            self.set_user(entry, now, lookup)
        for entry in _list(spec.get("numberAssignments", []), "teams.numberAssignments"):
            record = teams_numbers.parse_number(entry, lambda key: _user_id(lookup, key))
            if record["telephoneNumber"] in self.numbers:
                raise DirectoryFormatError(
                    f"teams number {record['telephoneNumber']} is listed twice"
                )
            self.numbers[record["telephoneNumber"]] = record

    def set_user(self, spec: Any, now: float, lookup: FactsLookup) -> TeamsUser:
        """Add or change a user's Teams options (a `teams.users` entry)."""
        if not isinstance(spec, Mapping) or set(spec) - USER_KEYS or "user" not in spec:
            raise DirectoryFormatError(f"a teams user is an object with keys {sorted(USER_KEYS)}")
        facts = lookup(str(spec["user"]))
        if facts is None:
            raise DirectoryFormatError(f"teams user {spec['user']!r} is not in the directory")
        record = self.users.setdefault(facts.id, TeamsUser(facts.id, now))
        if "accountType" in spec:
            value = spec["accountType"]
            if value not in set(AccountType) - {AccountType.UNKNOWN_FUTURE_VALUE}:
                raise DirectoryFormatError(f"teams user {facts.upn}: unknown accountType {value!r}")
            record.account_type, record.move_at, record.created_at = AccountType(value), None, now
        if "provisioningDelaySeconds" in spec:
            record.delay = _seconds(spec["provisioningDelaySeconds"], "provisioningDelaySeconds")
        if "isEnterpriseVoiceEnabled" in spec:
            if not isinstance(spec["isEnterpriseVoiceEnabled"], bool):
                raise DirectoryFormatError("isEnterpriseVoiceEnabled must be true or false")
            record.voice_enabled = spec["isEnterpriseVoiceEnabled"]
        return record

    def baseline(self, facts: UserFacts) -> None:
        """The plans a user holds as it is loaded or added: Teams has long provisioned them."""
        self._baseline |= {(facts.id, plan) for plan in facts.plans if plan in PLAN_FEATURES}

    def move(self, user_id: str, delay: float | None, now: float) -> None:
        """Move an sfbOnPremUser to Teams: `user` after `delay` (default moveDelaySeconds)."""
        record = self.users.get(user_id)
        if record is None or record.account_type != AccountType.SFB_ON_PREM_USER:
            raise DirectoryFormatError("only a user Teams shows as sfbOnPremUser can be moved")
        wait = self.settings.move_delay if delay is None else _seconds(delay, "delaySeconds")
        if record.move_at is None or record.move_at > now + wait:
            record.move_at = now + wait

    # ------------------------------------------------------------ what Teams sees

    def schedule(self, facts: UserFacts) -> list[tuple[str, FeatureType, float]]:
        """(plan, feature, ready at) for each Teams plan the user holds, ready or not."""
        delay = self.delay_for(facts.id)
        for key in [k for k in self._first_seen if k[0] == facts.id and k[1] not in facts.plans]:
            del self._first_seen[key]  # a plan removed: Teams forgets it at once
            self._baseline.discard(key)
        out = []
        for plan, since in facts.plans.items():
            feature = PLAN_FEATURES.get(plan)
            if feature is None:
                continue
            # A reprocessed group license must not move the plan's arrival later.
            since = self._first_seen[(facts.id, plan)] = min(
                since, self._first_seen.get((facts.id, plan), since)
            )
            held = (facts.id, plan) in self._baseline
            out.append((plan, feature, since if held else since + delay))
        return out

    def features(self, facts: UserFacts, at: float) -> dict[FeatureType, float]:
        """The user's Teams features ready by `at`, each with the moment it became ready."""
        ready: dict[FeatureType, float] = {}
        for _, feature, ready_at in self.schedule(facts):
            if ready_at <= at:
                ready[feature] = min(ready.get(feature, math.inf), ready_at)
        return ready

    def known_at(self, facts: UserFacts, at: float) -> float | None:
        """When Teams first had a configuration for the user, if by `at`."""
        record = self.users.get(facts.id)
        if record is not None and record.account_type is not None:
            return record.created_at if record.created_at <= at else None
        known = self._known.get(facts.id)
        if known is None:
            ready = self.features(facts, at).values()
            if not ready:
                return None
            known = self._known[facts.id] = min(ready)
        return known if known <= at else None

    def account_type(self, facts: UserFacts, at: float) -> AccountType:
        """The accountType at `at` (moved sfbOnPremUsers are users)."""
        record = self.users.get(facts.id)
        if record is not None and record.account_type is not None:
            if record.move_at is not None and record.move_at <= at:
                return AccountType.USER
            return record.account_type
        return AccountType.USER if self.features(facts, at) else AccountType.INELIGIBLE_USER

    def configuration(
        self, facts: UserFacts, now: float, *, include_unknown: bool
    ) -> dict[str, Any] | None:
        """The user's teamsUserConfiguration as Graph shows it, or None (a 404)."""
        known = self.known_at(facts, now)
        if known is None:
            return None
        ready = self.features(facts, now)
        account = self.account_type(facts, now)
        if account == AccountType.INELIGIBLE_USER and not include_unknown:
            account = AccountType.UNKNOWN_FUTURE_VALUE  # evolvable enum: hidden without Prefer
        record = self.users.get(facts.id)
        changes = [known, *ready.values()]
        if record is not None:
            changes += [record.changed_at] + ([record.move_at] if record.move_at else [])
        numbers = sorted(
            (n for n in self.numbers.values() if _held_by(n, facts.id)),
            key=lambda n: list(AssignmentCategory).index(n["assignmentCategory"]),
        )
        return {
            "id": facts.id,
            "userPrincipalName": facts.upn,
            "tenantId": self.tenant_id,
            "accountType": str(account),
            "featureTypes": [str(f) for f in FeatureType if f in ready],
            "isEnterpriseVoiceEnabled": record is not None and record.voice_enabled,
            "telephoneNumbers": [
                {
                    "telephoneNumber": n["telephoneNumber"],
                    "assignmentCategory": n["assignmentCategory"],
                }
                for n in numbers
            ],
            "effectivePolicyAssignments": [],
            "createdDateTime": iso_z(known),
            "modifiedDateTime": iso_z(max(c for c in changes if c <= now)),
        }

    def delay_for(self, user_id: str) -> float:
        """The user's provisioning delay: its own, else provisioningDelaySeconds."""
        record = self.users.get(user_id)
        if record is not None and record.delay is not None:
            return record.delay
        return self.settings.provisioning_delay

    # ------------------------------------------------------------------ orders

    def order(
        self,
        now: float,
        number: str,
        target: str,
        number_type: NumberType,
        category: AssignmentCategory,
        location_id: str | None,
    ) -> Operation:
        """Accept an assignNumber order (decided later: `teams_orders`)."""
        return self.orders.place(
            now, self.settings, number, target, number_type, category, location_id
        )

    def advance(self, now: float, lookup: FactsLookup) -> None:
        """Decide every order due by `now`."""
        self.orders.advance(self, now, lookup)

    def assign(
        self, number: str, target: str, category: str, location_id: str | None, at: float
    ) -> None:
        """A successful order: the number on the user, the user's previous one in its slot freed."""
        record = self.numbers.setdefault(number, teams_numbers.new_direct_routing_number(number))
        taken = [n for n in self.numbers.values() if n is not record and _held_by(n, target)]
        for other in taken:
            if other["assignmentCategory"] == category:  # one number per user and category
                other.update(
                    assignmentTargetId=None,
                    assignmentCategory=None,
                    assignmentStatus=str(AssignmentStatus.UNASSIGNED),
                )
        record.update(
            assignmentTargetId=target,
            assignmentCategory=str(category),
            assignmentStatus=str(AssignmentStatus.USER_ASSIGNED),
            activationState=str(ActivationState.ACTIVATED),
            locationId=location_id or record["locationId"],
        )
        user = self.users.setdefault(target, TeamsUser(target, at))
        # "When you assign a phone number the EnterpriseVoiceEnabled flag is automatically set
        # to True." (Set-CsPhoneNumberAssignment page)
        user.voice_enabled, user.changed_at = True, at

    def number_view(self, record: Mapping[str, Any], now: float) -> dict[str, Any]:
        """A number as Graph shows it now: `assignmentPending` while an order for it runs."""
        view = teams_numbers.to_graph(record, self.tenant_id)
        if self.orders.pending(record["telephoneNumber"], record["assignmentTargetId"]):
            view["activationState"] = str(ActivationState.ASSIGNMENT_PENDING)
        return view

    def operation_view(self, op: Operation, now: float, base_url: str) -> dict[str, Any]:
        """An order as Graph's telephoneNumberLongRunningOperation."""
        return self.orders.view(op, now, base_url, self.tenant_id)


def _held_by(record: Mapping[str, Any], user_id: str) -> bool:
    return bool(
        record["assignmentTargetId"] == user_id
        and record["assignmentStatus"] == AssignmentStatus.USER_ASSIGNED
    )


def _user_id(lookup: FactsLookup, key: str) -> str | None:
    facts = lookup(key)
    return None if facts is None else facts.id


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise DirectoryFormatError(f"{what} must be a list")
    return value


__all__ = ["FactsLookup", "TeamsSettings", "TeamsTenant", "TeamsUser", "UserFacts"]
