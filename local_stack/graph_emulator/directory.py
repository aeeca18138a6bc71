"""The emulated tenant: users, their sync state, SKUs with seats, groups, and license rules.

Pure state and rules, no HTTP: every method takes or returns plain data and
raises `GraphRefusal` with Graph's own status, code and message when Graph would
refuse. One re-entrant lock guards everything, because `ThreadingHTTPServer`
answers requests on many threads and `assignLicense` must be all-or-nothing
(check seats, then take them) exactly like the real service.

Entra ID's eventual consistency is modelled with per-user counters, so tests
stay deterministic (docs/graph-facts.md, "Eventual consistency";
devblogs.microsoft.com/identity/designing-for-eventual-consistency-for-microsoft-entra:
a new object can return "Not Found" and an updated property can be invisible
for a while; blogs.aaddevsup.xyz/2021/08/why-do-i-sometimes-get-a-404-when-
trying-to-update-an-azure-directory-object-after-i-just-created-it;
msgraph-sdk-java-core #353):

- `writeNotFound`: the next N writes addressed to the user answer 404
  `Request_ResourceNotFound` and change nothing (the write lands on a replica
  that has not seen the user). Every user write resolves its user through
  `_writable`, which spends this counter: new user-write routes must too;
- `usageLocationLag`: after a PATCH that gives the user a valid usageLocation
  where it had none (or an invalid one), the next N assignLicense calls that
  add licenses answer 400 "License assignment cannot be done for user with
  invalid usage location." and change nothing (the replica still has the old
  value; a removal-only call needs no usage location, so it neither fails nor
  counts);
- `keyLookupLag`: the next N key lookups (`GET /users/{id|upn}`,
  `/users('...')`) answer 404 while `$filter` queries already find the user.

Defaults come from the file's top-level `"consistency"` (or
`set_consistency`) and apply to users loaded or added afterwards; a user's
`"lag"` overrides them; `set_user_lag` changes the counters of one user now.
The app's granted permissions (`"permissions"`) live here too, so a reset
reloads them with the rest of the tenant.

Time-driven work runs lazily: every public method first calls `_tick`, which
processes, in due order, everything the clock has passed since the last call:
the Cloud Sync cycle boundaries (`synchronization.cycleSeconds`: every user
`awaitingSync` becomes synced at the next boundary, like Cloud Sync's
scheduled runs, `PT2M` in real jobs) and the pending group-license processing
(`groupLicenseDelaySeconds` after a member add, a reprocess or a change of a
group's licenses). So a state read at any moment is what Entra would show then,
whatever the order of the calls that observe it. Cloud Sync's jobs, schema and
provisionOnDemand answers are built by `sync`; the group-licensing rules are
`licensing.evaluate_group`.

The directory file format is documented in the package docstring
(`local_stack/graph_emulator/__init__.py`).
"""

from __future__ import annotations

import heapq
import math
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from . import licensing, sync, teams
from .clock import Clock, iso_z
from .errors import DirectoryFormatError, GraphRefusal, bad_request, not_found
from .licensing import Group, LicenseState
from .permissions import PermissionFormatError, Permissions, checked_names
from .throttle import DEFAULT_TENANT_ID

GUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
USAGE_LOCATION_RE = re.compile(r"^[A-Z]{2}$")

#: What Graph returns for a user when the request has no `$select`.
DEFAULT_USER_PROPERTIES: tuple[str, ...] = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)

#: Every user property the emulator knows; `$select` of anything else is a 400.
USER_PROPERTIES: tuple[str, ...] = (
    *DEFAULT_USER_PROPERTIES,
    "accountEnabled",
    "assignedLicenses",
    "employeeId",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesExtensionAttributes",
    "onPremisesImmutableId",
    "onPremisesLastSyncDateTime",
    "onPremisesProvisioningErrors",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "usageLocation",
    "userType",
    "deletedDateTime",
    "licenseAssignmentStates",  # computed; Graph returns it only with $select (user resource)
)

_COLLECTION_PROPERTIES = frozenset(
    {"businessPhones", "onPremisesProvisioningErrors", "licenseAssignmentStates"}
)

#: Properties Graph computes or that come from AD; PATCH refuses them.
READ_ONLY_PROPERTIES = frozenset(
    {
        "id",
        "assignedLicenses",
        "deletedDateTime",
        "licenseAssignmentStates",
        "onPremisesDistinguishedName",
        "onPremisesDomainName",
        "onPremisesLastSyncDateTime",
        "onPremisesProvisioningErrors",
        "onPremisesSamAccountName",
        "onPremisesSecurityIdentifier",
        "onPremisesSyncEnabled",
        "onPremisesUserPrincipalName",
    }
)
#: Writable properties whose values must be strings (or null).
_STRING_WRITABLE = frozenset(
    {
        "displayName",
        "givenName",
        "surname",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "userPrincipalName",
        "employeeId",
        "onPremisesImmutableId",
        "userType",
    }
)
#: On a user synced from AD, AD is the source of authority: only these stay cloud-writable.
CLOUD_WRITABLE_WHEN_SYNCED = frozenset({"usageLocation"})

#: Keys of a user entry in the directory file that steer the emulator, not Graph properties.
_CONTROL_KEYS = frozenset(
    {
        "assignedLicenses",
        "groupLicenses",
        "syncAfterSeconds",
        "appearAfterSeconds",
        "awaitingSync",
        "lag",
        "teams",  # the user's Teams options (teams.USER_KEYS but "user"): teams.py
    }
)
#: Computed properties a directory file cannot set.
_COMPUTED_PROPERTIES = frozenset({"licenseAssignmentStates"})

#: Replication-lag counters: file/control-API key -> `set_consistency` keyword.
LAG_KEYS: dict[str, str] = {
    "writeNotFound": "write_not_found",
    "usageLocationLag": "usage_location_lag",
    "keyLookupLag": "key_lookup_lag",
}
TOP_LEVEL_KEYS = frozenset(
    {
        "skus",
        "planRules",
        "users",
        "consistency",
        "permissions",
        "synchronization",
        "groups",
        "tenantUsageLocation",
        "groupLicenseDelaySeconds",
        "teams",
        "identity",  # the local Entra ID issuer's section (identity.py), not the tenant's
    }
)
INVALID_USAGE_LOCATION = "License assignment cannot be done for user with invalid usage location."

SYNCED_USER_MESSAGE = (
    "Unable to update the specified properties for on-premises mastered Directory Sync objects "
    "or objects currently undergoing migration."
)

#: Graph's answer to adding a member twice: docs/graph-facts.md, "Group-based licensing".
ALREADY_MEMBER = (
    "One or more added object references already exist for the following modified "
    "properties: 'members'."
)
NEVER = math.inf  # appear_at of a user awaiting sync: invisible until a sync says otherwise

__all__ = ["Directory", "DirectoryFormatError", "Lag", "PlanRules", "Sku", "UserRecord"]


@dataclass
class Lag:
    """A user's replication-lag counters (see the module docstring)."""

    write_not_found: int = 0
    usage_location_lag: int = 0  # armed into `usage_location_pending` by a usageLocation PATCH
    key_lookup_lag: int = 0
    usage_location_pending: int = 0

    def to_json(self) -> dict[str, int]:
        """The counters as the control API shows them."""
        return {
            "writeNotFound": self.write_not_found,
            "usageLocationLag": self.usage_location_lag,
            "keyLookupLag": self.key_lookup_lag,
            "usageLocationPending": self.usage_location_pending,
        }


@dataclass
class Sku:
    """One subscribed SKU and its seat counts (mutable under the directory lock)."""

    sku_id: str
    part_number: str
    enabled: int
    consumed: int
    plans: list[dict[str, Any]]
    applies_to: str = "User"
    capability_status: str = "Enabled"
    suspended: int = 0
    warning: int = 0
    locked_out: int = 0
    account_id: str = "00000000-0000-0000-0000-000000000001"
    account_name: str = "Contoso"
    prohibited: frozenset[str] = frozenset()  # usage locations where group licensing fails

    def plan_ids(self) -> set[str]:
        """Service plan ids of this SKU, lower-cased."""
        return {str(p["servicePlanId"]).lower() for p in self.plans}

    def plan_names(self, disabled: Iterable[str] = ()) -> set[str]:
        """Names of the plans this SKU enables, minus the disabled ids."""
        off = {d.lower() for d in disabled}
        return {p["servicePlanName"] for p in self.plans if p["servicePlanId"].lower() not in off}

    def free_seats(self) -> int:
        """Seats left; a SKU that is not `Enabled` has none to give."""
        if self.capability_status != "Enabled":
            return 0
        return self.enabled - self.consumed

    def to_graph(self) -> dict[str, Any]:
        """The SKU as `GET /subscribedSkus` shows it."""
        return {
            "accountId": self.account_id,
            "accountName": self.account_name,
            "appliesTo": self.applies_to,
            "capabilityStatus": self.capability_status,
            "consumedUnits": self.consumed,
            "id": f"{self.account_id}_{self.sku_id}",
            "skuId": self.sku_id,
            "skuPartNumber": self.part_number,
            "subscriptionIds": [],
            "prepaidUnits": {
                "enabled": self.enabled,
                "suspended": self.suspended,
                "warning": self.warning,
                "lockedOut": self.locked_out,
            },
            "servicePlans": [dict(p) for p in self.plans],
        }


@dataclass
class UserRecord:
    """A user as the emulator stores it; `Directory.view` turns it into Graph's shape."""

    props: dict[str, Any]
    direct: dict[str, list[str]]  # skuId (lower) -> disabledPlans, in assignment order
    group: list[str]  # skuIds (lower) of the static `groupLicenses` key
    added_at: float
    appear_at: float  # NEVER while awaiting a sync
    sync_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    lag: Lag = field(default_factory=Lag)
    awaiting: bool = False  # `awaitingSync`: in AD, not in Entra until a cycle or on-demand sync
    resyncs: list[float] = field(default_factory=list)  # on-demand syncs of a synced user
    #: (groupId, skuId) -> outcome of that group's license, in processing order
    group_states: dict[tuple[str, str], LicenseState] = field(default_factory=dict)
    license_times: dict[str, float] = field(default_factory=dict)  # direct skuId -> assigned at

    @property
    def id(self) -> str:
        return str(self.props["id"])

    @property
    def upn(self) -> str:
        return str(self.props.get("userPrincipalName") or "")

    def held_skus(self) -> list[str]:
        """Effective licenses, each once: direct, static group ones, then Active group ones."""
        held = dict.fromkeys(self.direct)
        held.update(dict.fromkeys(self.group))
        held.update(dict.fromkeys(s.sku_id for s in self.group_states.values() if s.active))
        return list(held)

    def held_except(self, group_id: str) -> set[str]:
        """SKUs the user holds by any means but `group_id`'s licenses."""
        held = set(self.direct) | set(self.group)
        held |= {
            s.sku_id for s in self.group_states.values() if s.active and s.group_id != group_id
        }
        return held

    def disabled_for(self, sku_id: str, *, except_group: str | None = None) -> list[str]:
        """The plans of `sku_id` no source enables: a plan any assignment enables is on."""
        sources: list[list[str]] = []
        if sku_id in self.direct:
            sources.append(self.direct[sku_id])
        if sku_id in self.group:
            sources.append([])
        sources += [
            list(s.disabled)
            for s in self.group_states.values()
            if s.active and s.sku_id == sku_id and s.group_id != except_group
        ]
        if not sources:
            return []
        common = set(sources[0]).intersection(*sources[1:])
        return [d for d in sources[0] if d in common]

    def pending_sync(self, now: float) -> bool:
        """Awaiting a sync that has not happened by `now`."""
        return self.awaiting and (self.sync_at is None or self.sync_at > now)


@dataclass(frozen=True)
class PlanRules:
    """Service plan rules Graph enforces on assignLicense, keyed by servicePlanName."""

    mutually_exclusive: tuple[tuple[str, ...], ...] = ()
    prerequisites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class Directory:
    """Thread-safe tenant state with Graph's license-assignment rules."""

    def __init__(self, data: Mapping[str, Any], clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._users: dict[str, UserRecord] = {}
        self._skus: dict[str, Sku] = {}
        self._rules = PlanRules()
        self._consistency: dict[str, int] = dict.fromkeys(LAG_KEYS, 0)
        self.permissions = Permissions()
        self._groups: dict[str, Group] = {}
        self._queue: list[tuple[float, int, str, str]] = []  # (due, seq, userId, groupId)
        self._seq = 0
        self._group_delay = licensing.DEFAULT_GROUP_LICENSE_DELAY
        self._tenant_location: str | None = None
        self._sync = sync.SyncSettings()
        self._cycle_origin = 0.0
        self._next_cycle = NEVER
        self._last_cycle: float | None = None
        self._limiter = sync.OnDemandLimiter()
        self._loaded_at = 0.0
        self.teams = teams.TeamsTenant(DEFAULT_TENANT_ID)  # Teams' view (teams.py)
        self.load(data)

    # ----------------------------------------------------------------- loading

    def load(self, data: Mapping[str, Any]) -> None:
        """Replace the whole tenant; delays count from now."""
        if not isinstance(data, Mapping):
            raise DirectoryFormatError("the directory must be a JSON object")
        unknown = set(data) - TOP_LEVEL_KEYS
        if unknown:
            raise DirectoryFormatError(f"unknown top-level keys: {sorted(unknown)}")
        skus = [_parse_sku(s) for s in _list(data.get("skus", []), "skus")]
        rules = _parse_rules(data.get("planRules", {}))
        consistency = _parse_lag(data.get("consistency", {}), "consistency")
        settings = sync.parse_settings(data.get("synchronization"))
        tenant_location = licensing.usage_location(
            data.get("tenantUsageLocation"), "tenantUsageLocation"
        )
        group_delay = licensing.delay(
            data.get("groupLicenseDelaySeconds", licensing.DEFAULT_GROUP_LICENSE_DELAY)
        )
        granted = data.get("permissions")
        try:
            permissions = None if granted is None else checked_names(_list(granted, "permissions"))
        except PermissionFormatError as exc:
            raise DirectoryFormatError(str(exc)) from exc
        with self._lock:
            self.permissions.set(permissions)
            self._consistency = {**dict.fromkeys(LAG_KEYS, 0), **consistency}
            self._skus = {}
            for sku in skus:
                if sku.sku_id in self._skus:
                    raise DirectoryFormatError(f"duplicate skuId {sku.sku_id}")
                self._skus[sku.sku_id] = sku
            self._rules = rules
            self._users = {}
            self._groups = {}
            self._queue = []
            now = self._clock.now()
            self._loaded_at = now
            self._sync = settings
            self._limiter = sync.OnDemandLimiter()
            self._last_cycle = None
            self._restart_cycle(now)
            self._tenant_location = tenant_location
            self._group_delay = group_delay
            explicit = {}
            for raw, sku in zip(_list(data.get("skus", []), "skus"), skus, strict=True):
                if raw.get("consumedUnits") is not None:
                    explicit[sku.sku_id] = sku.consumed
                sku.consumed = 0
            for spec in _list(data.get("users", []), "users"):
                user = self._insert_user(spec)
                for sku_id in user.held_skus():
                    self._skus[sku_id].consumed += 1
            # The file's memberships are the tenant's state at start: processed now, in order,
            # taking seats from what the file's users already hold.
            for spec in _list(data.get("groups", []), "groups"):
                self._insert_group(spec, at_load=True)
            # A file that gives consumedUnits means it; otherwise the users holding the SKU.
            for sku_id, consumed in explicit.items():
                self._skus[sku_id].consumed = consumed
            self.teams.load(
                data.get("teams"), now, lambda key: self.teams_facts(key, include_hidden=True)
            )
            for spec in _list(data.get("users", []), "users"):
                self._teams_options(spec)
            for user in self._users.values():
                self._teams_baseline(user)

    def add_user(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Add one user (directory-file shape); its delays count from now."""
        with self._lock:
            self._tick()
            user = self._insert_user(spec)
            for sku_id in user.held_skus():
                self._skus[sku_id].consumed += 1
            self._teams_options(spec)
            self._teams_baseline(user)
            return self.internal(user.id)

    def _insert_user(self, spec: Any) -> UserRecord:
        user = _parse_user(spec, self._clock.now(), self._skus)
        counters = {**self._consistency, **_parse_lag(spec.get("lag", {}), f"{user.upn}.lag")}
        user.lag = Lag(**{LAG_KEYS[k]: v for k, v in counters.items()})
        if user.id.lower() in self._users:
            raise DirectoryFormatError(f"duplicate user id {user.id}")
        if user.upn and self._find(user.upn, include_hidden=True) is not None:
            raise DirectoryFormatError(f"duplicate userPrincipalName {user.upn}")
        self._users[user.id.lower()] = user
        return user

    # ------------------------------------------------------------------ Teams

    @contextmanager
    def observed(self) -> Iterator[None]:
        """Hold the tenant lock with due work done: how `teams_api` reads and changes Teams."""
        with self._lock:
            self._tick()
            yield

    def teams_facts(self, key: str, *, include_hidden: bool = False) -> teams.UserFacts | None:
        """A user as Teams reads it from Entra (id or UPN; call under `observed`)."""
        user = self._find(key, include_hidden=include_hidden)
        if user is None:
            return None
        return teams.UserFacts(user.id, user.upn, self._plan_times(user))

    def _teams_options(self, spec: Mapping[str, Any]) -> None:
        """A user entry's `teams` key: that user's Teams options (as a `teams.users` entry)."""
        options = spec.get("teams")
        if options is None:
            return
        if not isinstance(options, Mapping) or "user" in options:
            raise DirectoryFormatError(
                f"{spec.get('userPrincipalName')}: teams is an object of "
                "Teams options (accountType, provisioningDelaySeconds, "
                "isEnterpriseVoiceEnabled)"
            )
        self.teams.set_user(
            {**options, "user": str(spec["userPrincipalName"])},
            self._clock.now(),
            lambda key: self.teams_facts(key, include_hidden=True),
        )

    def _teams_baseline(self, user: UserRecord) -> None:
        """Licenses a user has when loaded or added are long provisioned in Teams."""
        self.teams.baseline(teams.UserFacts(user.id, user.upn, self._plan_times(user)))

    def _plan_times(self, user: UserRecord) -> dict[str, float]:
        """Each service plan the user's licenses enable, with the earliest time one did."""
        sources = [(s, d, user.license_times.get(s, user.added_at)) for s, d in user.direct.items()]
        sources += [(s, [], user.added_at) for s in user.group]
        sources += [
            (state.sku_id, list(state.disabled), state.updated_at)
            for state in user.group_states.values()
            if state.active
        ]
        times: dict[str, float] = {}
        for sku_id, disabled, since in sources:
            for plan in self._skus[sku_id].plan_names(disabled):
                times[plan] = min(times.get(plan, since), since)
        return times

    # ----------------------------------------------------------------- reading

    def _require(self, key: str) -> UserRecord:
        """Any user, visible or not, for the control API (KeyError if unknown)."""
        user = self._find(key, include_hidden=True)
        if user is None:
            raise KeyError(key)
        return user

    def _find(self, key: str, *, include_hidden: bool = False) -> UserRecord | None:
        now = self._clock.now()
        folded = key.casefold()
        user = self._users.get(key.lower())
        if user is None:
            user = next((u for u in self._users.values() if u.upn.casefold() == folded), None)
        if user is None or (not include_hidden and now < user.appear_at):
            return None
        return user

    def _visible(self, key: str) -> UserRecord:
        user = self._find(key)
        if user is None:
            raise not_found(key)
        return user

    def _writable(self, key: str) -> UserRecord:
        """The visible user a write addresses, or 404 while `writeNotFound` lag remains."""
        user = self._visible(key)
        if user.lag.write_not_found > 0:
            user.lag.write_not_found -= 1
            raise not_found(key)  # a replica that has not seen the user yet
        return user

    def get_user(self, key: str) -> dict[str, Any]:
        """All Graph properties of a visible user (by id or UPN), or a Graph 404.

        A key lookup: while the user's `keyLookupLag` remains it is a 404 (and spends one).
        """
        with self._lock:
            self._tick()
            user = self._visible(key)
            if user.lag.key_lookup_lag > 0:
                user.lag.key_lookup_lag -= 1
                raise not_found(key)
            return self._view(user)

    def find_users(self, prop: str, values: Iterable[str]) -> list[dict[str, Any]]:
        """Visible users whose `prop` equals one of `values`, case-insensitively like Graph."""
        wanted = {v.casefold() for v in values}
        with self._lock:
            self._tick()
            now = self._clock.now()
            return [
                self._view(u)
                for u in self._users.values()
                if now >= u.appear_at
                and isinstance(u.props.get(prop), str)
                and u.props[prop].casefold() in wanted
            ]

    def subscribed_skus(self) -> list[dict[str, Any]]:
        """Every SKU as Graph shows it."""
        with self._lock:
            self._tick()
            return [s.to_graph() for s in self._skus.values()]

    def internal(self, key: str) -> dict[str, Any]:
        """Full record of any user, visible or not, for the control API (KeyError if unknown)."""
        with self._lock:
            self._tick()
            user = self._require(key)
            now = self._clock.now()
            return {
                **self._view(user),
                "_emulator": {
                    "visible": now >= user.appear_at,
                    "appearAt": None if user.appear_at == NEVER else iso_z(user.appear_at),
                    "syncAt": None if user.sync_at is None else iso_z(user.sync_at),
                    "awaitingSync": user.pending_sync(now),
                    "directLicenses": [
                        {"skuId": s, "disabledPlans": list(d)} for s, d in user.direct.items()
                    ],
                    "groupLicenses": list(user.group),
                    "memberOf": [g.id for g in self._groups.values() if user.id in g.members],
                    "pendingLicenseProcessing": [
                        {"groupId": group_id, "dueAt": iso_z(due)}
                        for due, _, user_id, group_id in sorted(self._queue)
                        if user_id == user.id
                    ],
                    "lag": user.lag.to_json(),
                    **user.extra,
                },
            }

    def _view(self, user: UserRecord) -> dict[str, Any]:
        now = self._clock.now()
        view: dict[str, Any] = {
            p: ([] if p in _COLLECTION_PROPERTIES else None) for p in USER_PROPERTIES
        }
        view.update(user.props)
        if user.sync_at is not None:
            synced = now >= user.sync_at
            view["onPremisesSyncEnabled"] = True if synced else None
            view["onPremisesLastSyncDateTime"] = iso_z(user.sync_at) if synced else None
        done = [t for t in user.resyncs if t <= now]
        if done and view["onPremisesSyncEnabled"] is True:
            last = max(done)
            if user.sync_at is None or last > user.sync_at:
                view["onPremisesLastSyncDateTime"] = iso_z(last)
        view["assignedLicenses"] = [
            {"disabledPlans": user.disabled_for(s), "skuId": s} for s in user.held_skus()
        ]
        view["licenseAssignmentStates"] = self._license_states(user)
        return view

    def _license_states(self, user: UserRecord) -> list[dict[str, Any]]:
        """Direct licenses (assignedByGroup null), static `groupLicenses`, then group states."""
        states = [
            licensing.state_json(
                sku_id,
                group_id=None,
                disabled=disabled,
                state=licensing.ACTIVE,
                error=licensing.NO_ERROR,
                updated=iso_z(user.license_times.get(sku_id, user.added_at)),
            )
            for sku_id, disabled in user.direct.items()
        ]
        states += [
            licensing.state_json(
                sku_id,
                group_id=licensing.STATIC_GROUP_ID,
                disabled=[],
                state=licensing.ACTIVE,
                error=licensing.NO_ERROR,
                updated=iso_z(user.added_at),
            )
            for sku_id in user.group
        ]
        states += [
            licensing.state_json(
                state.sku_id,
                group_id=state.group_id,
                disabled=state.disabled,
                state=state.state,
                error=state.error,
                updated=iso_z(state.updated_at),
            )
            for state in user.group_states.values()
        ]
        return states

    # ----------------------------------------------------------------- writing

    def update_user(self, key: str, patch: Any) -> None:
        """Apply a PATCH body with Graph's checks (read-only, synced-user and value rules)."""
        if not isinstance(patch, dict):
            raise bad_request("Invalid request body: a JSON object is expected.", "BadRequest")
        with self._lock:
            self._tick()
            user = self._writable(key)
            changes: dict[str, Any] = {}
            synced = bool(self._view(user).get("onPremisesSyncEnabled"))
            for name, value in patch.items():
                if name.startswith("@odata."):
                    continue
                changes[name] = _checked_patch_value(name, value)
            if synced and set(changes) - CLOUD_WRITABLE_WHEN_SYNCED:
                raise bad_request(SYNCED_USER_MESSAGE)
            new_upn = changes.get("userPrincipalName")
            if isinstance(new_upn, str):
                other = self._find(new_upn, include_hidden=True)
                if other is not None and other is not user:
                    raise bad_request(
                        "Another object with the same value for property userPrincipalName "
                        "already exists."
                    )
            had_location = bool(USAGE_LOCATION_RE.match(str(user.props.get("usageLocation") or "")))
            user.props.update(changes)
            if "usageLocation" in changes and not had_location:
                user.lag.usage_location_pending = user.lag.usage_location_lag

    def assign_license(self, key: str, add: Any, remove: Any) -> dict[str, Any]:
        """Graph's assignLicense: validate everything, then commit seats and licenses at once."""
        with self._lock:
            self._tick()
            user = self._writable(key)
            additions = _parse_additions(add)
            removals = _parse_removals(remove)
            for sku_id in [*additions, *removals]:
                if sku_id not in self._skus:
                    raise bad_request(
                        f"License {sku_id} does not correspond to a valid company License."
                    )
            both = set(additions) & set(removals)
            if both:
                raise bad_request(
                    f"License {sorted(both)[0]} cannot be both added and removed in one request."
                )
            if additions and user.lag.usage_location_pending > 0:
                user.lag.usage_location_pending -= 1
                raise bad_request(INVALID_USAGE_LOCATION)  # the replica has the old value
            if additions and not USAGE_LOCATION_RE.match(
                str(user.props.get("usageLocation") or "")
            ):
                raise bad_request(INVALID_USAGE_LOCATION)
            for sku_id, disabled in additions.items():
                unknown = [d for d in disabled if d not in self._skus[sku_id].plan_ids()]
                if unknown:
                    raise bad_request(
                        f"Service plan {unknown[0]} is not part of license {sku_id} "
                        "and cannot be disabled."
                    )
            for sku_id in removals:
                if sku_id not in user.direct:
                    if sku_id in user.held_skus():
                        raise bad_request(
                            "User license is inherited from a group membership and it cannot be "
                            "removed directly from the user."
                        )
                    raise bad_request(f"User does not have a corresponding license {sku_id}.")

            before = user.held_skus()
            direct = {s: d for s, d in user.direct.items() if s not in removals}
            direct.update(additions)
            after_user = replace(user, direct=direct)
            after = after_user.held_skus()
            for sku_id in after:
                if sku_id not in before and self._skus[sku_id].free_seats() < 1:
                    raise bad_request(
                        f"Subscription {sku_id} does not have any available licenses."
                    )
            self._check_plan_rules(self._enabled_plans(user), self._enabled_plans(after_user))

            user.direct = direct
            now = self._clock.now()
            user.license_times = {
                s: now if s in additions else user.license_times.get(s, user.added_at)
                for s in direct
            }
            for sku_id in after:
                if sku_id not in before:
                    self._skus[sku_id].consumed += 1
            for sku_id in before:
                if sku_id not in after:
                    self._skus[sku_id].consumed -= 1
            return self._view(user)

    def _enabled_plans(self, user: UserRecord, *, except_group: str | None = None) -> set[str]:
        """Plan names the user's licenses enable (leaving out one group's, if asked)."""
        held = user.held_skus() if except_group is None else user.held_except(except_group)
        names: set[str] = set()
        for sku_id in held:
            disabled = user.disabled_for(sku_id, except_group=except_group)
            names |= self._skus[sku_id].plan_names(disabled)
        return names

    def _check_plan_rules(self, before: set[str], after: set[str]) -> None:
        """Refuse a change that creates a conflict or strands a plan without its prerequisite."""
        added = after - before
        for group in self._rules.mutually_exclusive:
            clash = [p for p in group if p in after]
            if len(clash) > 1 and set(clash) & added:
                pair = ", ".join(clash)
                raise bad_request(
                    f"Conflicting service plans: {pair}. Service plans "
                    f"{' and '.join(clash)} are mutually exclusive."
                )
        for plan, needs in self._rules.prerequisites.items():
            if plan not in after or set(needs) & after:
                continue
            if plan in added or set(needs) & before:
                raise bad_request(
                    f"The service plan {plan} depends on the service plan(s) "
                    f"{', '.join(needs)} which are not enabled on the user."
                )

    # ----------------------------------------------------------------- control

    def consistency(self) -> dict[str, int]:
        """The lag defaults users loaded or added from now on start with."""
        with self._lock:
            return dict(self._consistency)

    def set_consistency(self, changes: Mapping[str, Any]) -> dict[str, int]:
        """Change some lag defaults (file keys); existing users keep their counters."""
        parsed = _parse_lag(changes, "consistency")
        with self._lock:
            self._consistency.update(parsed)
            return dict(self._consistency)

    def set_user_lag(self, key: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Set some of one user's lag counters now (KeyError if unknown)."""
        parsed = _parse_lag(changes, "lag")
        with self._lock:
            self._tick()
            user = self._require(key)
            for name, value in parsed.items():
                setattr(user.lag, LAG_KEYS[name], value)
            return self.internal(user.id)

    def sync_user(self, key: str) -> dict[str, Any]:
        """Make a user exist and be synced now, as Entra Connect would (KeyError if unknown)."""
        with self._lock:
            self._tick()
            user = self._require(key)
            self._sync_at(user, self._clock.now())
            return self.internal(user.id)

    def _sync_at(self, user: UserRecord, when: float) -> None:
        """The user exists in Entra and is synced from `when` on (earlier syncs stand)."""
        user.appear_at = min(user.appear_at, when)
        if user.sync_at is None or user.sync_at > when:
            user.sync_at = when

    def set_seats(self, part_number: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change a SKU's seat counts or status by skuPartNumber (KeyError if unknown)."""
        fields = {
            "enabled": "enabled",
            "consumedUnits": "consumed",
            "suspended": "suspended",
            "warning": "warning",
            "lockedOut": "locked_out",
            "capabilityStatus": "capability_status",
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise DirectoryFormatError(f"unknown SKU fields: {sorted(unknown)}")
        with self._lock:
            self._tick()
            sku = next(
                (s for s in self._skus.values() if s.part_number.lower() == part_number.lower()),
                None,
            )
            if sku is None:
                raise KeyError(part_number)
            for name, value in changes.items():
                expected = str if name == "capabilityStatus" else int
                if not isinstance(value, expected) or isinstance(value, bool):
                    raise DirectoryFormatError(f"{name} must be {expected.__name__}")
                setattr(sku, fields[name], value)
            return sku.to_graph()

    # ------------------------------------------------------------- time passing

    def _tick(self) -> None:
        """Run what the clock has passed: sync cycle boundaries, due license processing."""
        now = self._clock.now()
        if now >= self._next_cycle:
            boundary = self._next_cycle
            self._run_cycle(boundary)
            cycle = self._sync.cycle_seconds
            self._next_cycle = boundary + cycle * (math.floor((now - boundary) / cycle) + 1)
        while self._queue and self._queue[0][0] <= now:
            due, _, user_id, group_id = heapq.heappop(self._queue)
            self._process(user_id, group_id, due)

    def _restart_cycle(self, now: float) -> None:
        """Cycle boundaries every cycleSeconds from now (none when 0)."""
        self._cycle_origin = now
        cycle = self._sync.cycle_seconds
        self._next_cycle = now + cycle if cycle > 0 else NEVER

    def _run_cycle(self, at: float) -> list[str]:
        """A Cloud Sync run at `at`: every user still awaiting sync is synced then."""
        synced = []
        for user in self._users.values():
            if user.pending_sync(at) and user.added_at <= at:
                self._sync_at(user, at)
                synced.append(user.upn)
        self._last_cycle = at
        return synced

    # ------------------------------------------------------------- Cloud Sync

    def _job(self, service_principal_id: str, job_id: str) -> sync.SyncJob:
        """The configured job, or Graph's 404 naming what is unknown (wording not verified)."""
        jobs = [
            j
            for j in self._sync.jobs
            if j.service_principal_id.lower() == service_principal_id.lower()
        ]
        if not jobs:
            raise not_found(service_principal_id)
        job = next((j for j in jobs if j.job_id.lower() == job_id.lower()), None)
        if job is None:
            raise not_found(job_id)
        return job

    def sync_schema(self, service_principal_id: str, job_id: str, context: str) -> dict[str, Any]:
        """`GET .../synchronization/jobs/{jobId}/schema` of a configured job."""
        with self._lock:
            self._tick()
            job = self._job(service_principal_id, job_id)
            return sync.schema_body(job, context, self._loaded_at)

    def provision_on_demand(
        self, service_principal_id: str, job_id: str, body: Any
    ) -> dict[str, Any]:
        """provisionOnDemand: the stringKeyStringValuePair; the user is synced after the delay.

        Order: unknown job (404), the job's rate limit (429), the body (400), the rule
        (400 RequestParameterInvalid), then the DN: no AD user with it is a 200 Failure.
        """
        with self._lock:
            self._tick()
            job = self._job(service_principal_id, job_id)
            now = self._clock.now()
            self._limiter.admit(job.job_id, now)
            subject = sync.parse_on_demand(body)
            if subject.rule_id != job.rule_id:
                raise sync.rule_not_in_job(job, subject.rule_id)
            wanted = sync.normalize_dn(subject.object_id)
            user = next(
                (
                    u
                    for u in self._users.values()
                    if isinstance(u.props.get("onPremisesDistinguishedName"), str)
                    and sync.normalize_dn(u.props["onPremisesDistinguishedName"]) == wanted
                ),
                None,
            )
            if user is None:
                return sync.on_demand_failure(subject.object_id, now=now)
            when = now + self._sync.on_demand_delay
            created = now < user.appear_at
            if self._view(user)["onPremisesSyncEnabled"] is True:
                user.resyncs.append(when)
            else:
                self._sync_at(user, when)
            return sync.on_demand_success(
                self._view(user), subject.object_id, created=created, now=now
            )

    def sync_settings(self) -> dict[str, Any]:
        """The Cloud Sync settings and schedule, for the control API."""
        with self._lock:
            self._tick()
            now = self._clock.now()
            return {
                "jobs": [j.to_json() for j in self._sync.jobs],
                "cycleSeconds": self._sync.cycle_seconds,
                "onDemandDelaySeconds": self._sync.on_demand_delay,
                "lastCycleAt": None if self._last_cycle is None else iso_z(self._last_cycle),
                "nextCycleAt": None if self._next_cycle == NEVER else iso_z(self._next_cycle),
                "awaitingSync": [u.upn for u in self._users.values() if u.pending_sync(now)],
            }

    def set_sync(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change `cycleSeconds` (the schedule restarts now) and/or `onDemandDelaySeconds`."""
        unknown = set(changes) - {"cycleSeconds", "onDemandDelaySeconds"}
        if unknown:
            raise DirectoryFormatError(f"unknown synchronization settings: {sorted(unknown)}")
        parsed = {k: sync.non_negative(v, k) for k, v in changes.items()}
        with self._lock:
            self._tick()
            if "onDemandDelaySeconds" in parsed:
                self._sync.on_demand_delay = parsed["onDemandDelaySeconds"]
            if "cycleSeconds" in parsed:
                self._sync.cycle_seconds = parsed["cycleSeconds"]
                self._restart_cycle(self._clock.now())
            return self.sync_settings()

    def run_sync_cycle(self) -> list[str]:
        """Run a Cloud Sync cycle now (the schedule is unchanged); the UPNs it synced."""
        with self._lock:
            self._tick()
            return self._run_cycle(self._clock.now())

    # --------------------------------------------------------- group licensing

    def _insert_group(self, spec: Any, *, at_load: bool = False) -> Group:
        group, member_keys = licensing.parse_group(spec, self._sku_plan_ids())
        if group.id in self._groups:
            raise DirectoryFormatError(f"duplicate group id {group.id}")
        self._groups[group.id] = group
        now = self._clock.now()
        for key in member_keys:
            user = self._find(key)
            if user is None:
                raise DirectoryFormatError(
                    f"group {group.id}: member {key!r} is not a visible user (a user must "
                    "exist in Entra to join a group)"
                )
            if user.id in group.members:
                raise DirectoryFormatError(f"group {group.id}: member {key!r} is listed twice")
            group.members.append(user.id)
            if at_load:
                self._process(user.id, group.id, now)
            else:
                self._schedule(user.id, group.id)
        return group

    def _sku_plan_ids(self) -> dict[str, set[str]]:
        return {sku_id: sku.plan_ids() for sku_id, sku in self._skus.items()}

    def _group(self, key: str) -> Group:
        """A group by id (KeyError if unknown)."""
        group = self._groups.get(key.lower())
        if group is None:
            raise KeyError(key)
        return group

    def _schedule(self, user_id: str, group_id: str) -> None:
        """Process `group_id`'s licenses for the user groupLicenseDelaySeconds from now."""
        if not self._groups[group_id].licenses:
            return
        self._seq += 1
        heapq.heappush(
            self._queue, (self._clock.now() + self._group_delay, self._seq, user_id, group_id)
        )

    def _effective_location(self, user: UserRecord) -> str | None:
        own = user.props.get("usageLocation")
        if isinstance(own, str) and USAGE_LOCATION_RE.match(own):
            return own
        return self._tenant_location

    def _process(self, user_id: str, group_id: str, at: float) -> None:
        """Entra's license processing of one group for one member, as of `at`."""
        user = self._users.get(user_id)
        group = self._groups.get(group_id)
        if user is None or group is None or user_id not in group.members or not group.licenses:
            return
        location = self._effective_location(user)
        if location is not None and user.props.get("usageLocation") != location:
            # "users without a usage location specified inherit the location of the directory"
            user.props["usageLocation"] = location
        active_here = {
            s.sku_id for (g, _), s in user.group_states.items() if g == group_id and s.active
        }
        facts = {
            lic.sku_id: licensing.SkuFacts(
                free_seats=self._skus[lic.sku_id].free_seats(),
                prohibited=self._skus[lic.sku_id].prohibited,
                plans=frozenset(self._skus[lic.sku_id].plan_names(lic.disabled)),
            )
            for lic in group.licenses
        }
        errors = licensing.evaluate_group(
            group.licenses,
            facts,
            held_elsewhere=user.held_except(group_id),
            active_here=active_here,
            other_plans=self._enabled_plans(user, except_group=group_id),
            location=location,
            mutually_exclusive=self._rules.mutually_exclusive,
            prerequisites=self._rules.prerequisites,
        )
        failed = any(e is not None for e in errors.values())
        for lic in group.licenses:
            key = (group_id, lic.sku_id)
            previous = user.group_states.get(key)
            if failed and previous is not None and previous.active:
                continue  # already assigned: a sibling's failure does not take it back
            held_before = lic.sku_id in user.held_skus()
            if failed:
                # A group's licenses are assigned together or not at all (licensing docs).
                error = errors[lic.sku_id] or licensing.OTHER
                user.group_states[key] = LicenseState(
                    lic.sku_id, group_id, lic.disabled, licensing.ERROR, error, at
                )
            else:
                user.group_states[key] = LicenseState(
                    lic.sku_id, group_id, lic.disabled, licensing.ACTIVE, licensing.NO_ERROR, at
                )
                if not held_before:
                    self._skus[lic.sku_id].consumed += 1

    def add_group(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Add a group (directory-file shape); its members are processed after the delay."""
        with self._lock:
            self._tick()
            return self._group_json(self._insert_group(spec))

    def group_record(self, key: str) -> dict[str, Any]:
        """A group with its licenses, members and pending processing (KeyError if unknown)."""
        with self._lock:
            self._tick()
            return self._group_json(self._group(key))

    def groups(self) -> list[dict[str, Any]]:
        """Every group, as `group_record` shows it."""
        with self._lock:
            self._tick()
            return [self._group_json(g) for g in self._groups.values()]

    def _group_json(self, group: Group) -> dict[str, Any]:
        return {
            **group.to_json(),
            "pendingLicenseProcessing": [
                {"userId": user_id, "dueAt": iso_z(due)}
                for due, _, user_id, group_id in sorted(self._queue)
                if group_id == group.id
            ],
        }

    def set_group_licenses(self, key: str, licenses: Any) -> dict[str, Any]:
        """Replace a group's licenses; every member is reprocessed after the delay.

        States for SKUs the group no longer carries go at once (and their seats, when the
        user holds the SKU no other way).
        """
        with self._lock:
            self._tick()
            group = self._group(key)
            parsed = licensing.parse_licenses(licenses, f"group {group.id}", self._sku_plan_ids())
            if parsed and not group.security_enabled:
                raise DirectoryFormatError("only security groups can carry licenses")
            kept = {lic.sku_id for lic in parsed}
            for user_id in group.members:
                user = self._users[user_id]
                for state_key in [k for k in user.group_states if k[0] == group.id]:
                    if state_key[1] in kept:
                        continue
                    held_before = state_key[1] in user.held_skus()
                    del user.group_states[state_key]
                    if held_before and state_key[1] not in user.held_skus():
                        self._skus[state_key[1]].consumed -= 1
            group.licenses = parsed
            for user_id in group.members:
                self._schedule(user_id, group.id)
            return self._group_json(group)

    def licensing_settings(self) -> dict[str, Any]:
        """`groupLicenseDelaySeconds` and `tenantUsageLocation`."""
        with self._lock:
            return {
                "groupLicenseDelaySeconds": self._group_delay,
                "tenantUsageLocation": self._tenant_location,
            }

    def set_licensing(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change the processing delay (for processing scheduled from now) or the location."""
        unknown = set(changes) - {"groupLicenseDelaySeconds", "tenantUsageLocation"}
        if unknown:
            raise DirectoryFormatError(f"unknown licensing settings: {sorted(unknown)}")
        with self._lock:
            self._tick()
            if "groupLicenseDelaySeconds" in changes:
                self._group_delay = licensing.delay(changes["groupLicenseDelaySeconds"])
            if "tenantUsageLocation" in changes:
                self._tenant_location = licensing.usage_location(
                    changes["tenantUsageLocation"], "tenantUsageLocation"
                )
            return self.licensing_settings()

    def license_states(self, key: str) -> list[dict[str, Any]]:
        """A user's licenseAssignmentStates as Graph shows them (KeyError if unknown)."""
        with self._lock:
            self._tick()
            return self._license_states(self._require(key))

    def add_member(self, group_id: str, body: Any) -> None:
        """`POST /groups/{id}/members/$ref`: 204, then license processing after the delay.

        Order: the body (400), the group (404 naming it), the user (404 naming it, also
        while the user's writeNotFound lag lasts), already a member (400).
        """
        member_id = _member_reference(body)
        with self._lock:
            self._tick()
            group = self._groups.get(group_id.lower())
            if group is None:
                raise not_found(group_id)
            user = self._writable(member_id)
            if user.id in group.members:
                raise bad_request(ALREADY_MEMBER)
            group.members.append(user.id)
            self._schedule(user.id, group.id)

    def reprocess_license_assignment(self, key: str) -> dict[str, Any]:
        """`POST /users/{id}/reprocessLicenseAssignment`: the user now, processing after the delay.

        Entra does not retry a CountViolation by itself (licensing-groups-resolve-problems.md,
        "Force group license processing"); this is how a client asks.
        """
        with self._lock:
            self._tick()
            user = self._writable(key)
            for group in self._groups.values():
                if user.id in group.members:
                    self._schedule(user.id, group.id)
            return self._view(user)


# --------------------------------------------------------------------- parsing


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise DirectoryFormatError(f"{what} must be a list")
    return value


def _guid(value: Any, what: str) -> str:
    if not isinstance(value, str) or not GUID_RE.match(value):
        raise DirectoryFormatError(f"{what} must be a GUID, got {value!r}")
    return value.lower()


def _int(spec: Mapping[str, Any], key: str, default: int) -> int:
    value = spec.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise DirectoryFormatError(f"{key} must be an integer")
    return value


def _parse_lag(spec: Any, what: str) -> dict[str, int]:
    """Validate lag counters (`writeNotFound`, `usageLocationLag`, `keyLookupLag`)."""
    if not isinstance(spec, Mapping):
        raise DirectoryFormatError(f"{what} must be an object")
    unknown = set(spec) - set(LAG_KEYS)
    if unknown:
        raise DirectoryFormatError(f"{what}: unknown keys {sorted(unknown)}; use {list(LAG_KEYS)}")
    out: dict[str, int] = {}
    for name, value in spec.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise DirectoryFormatError(f"{what}.{name} must be a non-negative integer")
        out[name] = value
    return out


def _parse_sku(spec: Any) -> Sku:
    if not isinstance(spec, dict):
        raise DirectoryFormatError("each SKU must be an object")
    part = spec.get("skuPartNumber")
    if not isinstance(part, str) or not part:
        raise DirectoryFormatError("each SKU needs a skuPartNumber")
    plans = []
    for plan in _list(spec.get("servicePlans", []), f"{part}.servicePlans"):
        if not isinstance(plan, dict) or not isinstance(plan.get("servicePlanName"), str):
            raise DirectoryFormatError(f"{part}: each service plan needs a servicePlanName")
        plans.append(
            {
                "servicePlanId": _guid(plan.get("servicePlanId"), f"{part} servicePlanId"),
                "servicePlanName": plan["servicePlanName"],
                "provisioningStatus": plan.get("provisioningStatus", "Success"),
                "appliesTo": plan.get("appliesTo", "User"),
            }
        )
    prohibited = _list(spec.get("prohibitedUsageLocations", []), f"{part}.prohibitedUsageLocations")
    for location in prohibited:
        licensing.usage_location(location, f"{part}.prohibitedUsageLocations")
    return Sku(
        prohibited=frozenset(prohibited),
        sku_id=_guid(spec.get("skuId") or str(uuid.uuid4()), f"{part} skuId"),
        part_number=part,
        enabled=_int(spec, "enabled", 0),
        consumed=_int(spec, "consumedUnits", 0),
        plans=plans,
        applies_to=spec.get("appliesTo", "User"),
        capability_status=spec.get("capabilityStatus", "Enabled"),
        suspended=_int(spec, "suspended", 0),
        warning=_int(spec, "warning", 0),
        locked_out=_int(spec, "lockedOut", 0),
        account_id=spec.get("accountId", "00000000-0000-0000-0000-000000000001"),
        account_name=spec.get("accountName", "Contoso"),
    )


def _parse_rules(spec: Any) -> PlanRules:
    if not isinstance(spec, dict):
        raise DirectoryFormatError("planRules must be an object")
    groups = []
    for group in _list(spec.get("mutuallyExclusive", []), "planRules.mutuallyExclusive"):
        if (
            not isinstance(group, list)
            or len(group) < 2
            or not all(isinstance(p, str) for p in group)
        ):
            raise DirectoryFormatError("each mutuallyExclusive entry is a list of 2+ plan names")
        groups.append(tuple(group))
    prereqs = spec.get("prerequisites", {})
    if not isinstance(prereqs, dict) or not all(
        isinstance(v, list) and v and all(isinstance(p, str) for p in v) for v in prereqs.values()
    ):
        raise DirectoryFormatError("prerequisites maps a plan name to a non-empty list of names")
    return PlanRules(tuple(groups), {k: tuple(v) for k, v in prereqs.items()})


def _parse_user(spec: Any, now: float, skus: Mapping[str, Sku]) -> UserRecord:
    if not isinstance(spec, dict):
        raise DirectoryFormatError("each user must be an object")
    upn = spec.get("userPrincipalName")
    if not isinstance(upn, str) or "@" not in upn:
        raise DirectoryFormatError(f"user needs a userPrincipalName with a domain: {upn!r}")
    unknown = set(spec) - set(USER_PROPERTIES) - _CONTROL_KEYS - {"givenName", "surname"}
    if unknown:
        raise DirectoryFormatError(f"{upn}: unknown user keys {sorted(unknown)}")
    computed = set(spec) & _COMPUTED_PROPERTIES
    if computed:
        raise DirectoryFormatError(f"{upn}: {sorted(computed)} are computed, not set")
    props = {k: v for k, v in spec.items() if k not in _CONTROL_KEYS}
    props["id"] = _guid(spec.get("id") or str(uuid.uuid4()), f"{upn} id")
    direct: dict[str, list[str]] = {}
    for lic in _list(spec.get("assignedLicenses", []), f"{upn}.assignedLicenses"):
        if not isinstance(lic, dict):
            raise DirectoryFormatError(f"{upn}: each assigned license is an object")
        sku_id = _known_sku(lic.get("skuId"), skus, upn)
        disabled = [_guid(d, f"{upn} disabledPlans") for d in lic.get("disabledPlans") or []]
        direct[sku_id] = disabled
    group = [
        _known_sku(s, skus, upn) for s in _list(spec.get("groupLicenses", []), "groupLicenses")
    ]
    appear = spec.get("appearAfterSeconds") or 0
    sync_after = spec.get("syncAfterSeconds")
    for name, value in (("appearAfterSeconds", appear), ("syncAfterSeconds", sync_after)):
        if value is not None and (not isinstance(value, int | float) or value < 0):
            raise DirectoryFormatError(f"{upn}: {name} must be a non-negative number")
    awaiting = spec.get("awaitingSync", False)
    if not isinstance(awaiting, bool):
        raise DirectoryFormatError(f"{upn}: awaitingSync must be true or false")
    if awaiting and (spec.get("appearAfterSeconds") or sync_after is not None):
        raise DirectoryFormatError(
            f"{upn}: awaitingSync (synced by a cycle or provisionOnDemand) excludes "
            "appearAfterSeconds and syncAfterSeconds"
        )
    user = UserRecord(
        props, direct, group, added_at=now, appear_at=NEVER if awaiting else now + appear
    )
    user.awaiting = awaiting
    user.license_times = dict.fromkeys(direct, now)
    if sync_after is not None:
        user.sync_at = now + sync_after
    elif awaiting:
        props.pop("onPremisesLastSyncDateTime", None)  # filled in when the sync happens
    elif props.get("onPremisesSyncEnabled") is True and not props.get("onPremisesLastSyncDateTime"):
        props["onPremisesLastSyncDateTime"] = iso_z(now)
    return user


def _known_sku(value: Any, skus: Mapping[str, Sku], upn: str) -> str:
    sku_id = _guid(value, f"{upn} skuId")
    if sku_id not in skus:
        raise DirectoryFormatError(f"{upn}: license {sku_id} is not one of the directory's SKUs")
    return sku_id


def _checked_patch_value(name: str, value: Any) -> Any:
    invalid = bad_request(f"Invalid value specified for property '{name}' of resource 'User'.")
    if name in READ_ONLY_PROPERTIES:
        raise bad_request(f"Property '{name}' is read-only and cannot be set.")
    if name == "usageLocation":
        if not isinstance(value, str) or not USAGE_LOCATION_RE.match(value):
            raise invalid
    elif name == "accountEnabled":
        if not isinstance(value, bool):
            raise invalid
    elif name == "businessPhones":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid
    elif name in _STRING_WRITABLE:
        if value is not None and not isinstance(value, str):
            raise invalid
    else:
        raise bad_request(
            f"Property '{name}' does not exist as a declared property or extension property."
        )
    return value


def _missing_parameter(name: str) -> GraphRefusal:
    return bad_request(
        "One or more parameters of the operation 'assignLicense' are missing from the request "
        f"payload. The missing parameters are: {name}."
    )


def _request_guid(value: Any, prop: str) -> str:
    if not isinstance(value, str) or not GUID_RE.match(value):
        raise bad_request(f"Invalid value specified for property '{prop}' of resource 'License'.")
    return value.lower()


def _parse_additions(add: Any) -> dict[str, list[str]]:
    if not isinstance(add, list):
        raise bad_request("Invalid value specified for property 'addLicenses'.")
    out: dict[str, list[str]] = {}
    for item in add:
        if not isinstance(item, dict):
            raise bad_request("Invalid value specified for property 'addLicenses'.")
        sku_id = _request_guid(item.get("skuId"), "skuId")
        disabled = item.get("disabledPlans") or []
        if not isinstance(disabled, list):
            raise bad_request("Invalid value specified for property 'disabledPlans'.")
        out[sku_id] = [_request_guid(d, "disabledPlans") for d in disabled]
    return out


def _parse_removals(remove: Any) -> list[str]:
    if not isinstance(remove, list):
        raise bad_request("Invalid value specified for property 'removeLicenses'.")
    return [_request_guid(s, "removeLicenses") for s in remove]


def check_assign_license_parameters(body: Any) -> tuple[Any, Any]:
    """Return (addLicenses, removeLicenses) or Graph's 'missing parameters' 400."""
    if not isinstance(body, dict):
        raise _missing_parameter("addLicenses, removeLicenses")
    missing = [p for p in ("addLicenses", "removeLicenses") if body.get(p) is None]
    if missing:
        raise _missing_parameter(", ".join(missing))
    return body["addLicenses"], body["removeLicenses"]


def _member_reference(body: Any) -> str:
    """The user id of a members/$ref body `{"@odata.id": ".../directoryObjects/{id}"}`.

    Graph documents `https://graph.microsoft.com/v1.0/directoryObjects/{id}`
    (group-post-members); `.../users/{id}` is accepted too. The 400s' wording is the
    emulator's (not verified).
    """
    reference = body.get("@odata.id") if isinstance(body, dict) else None
    if not isinstance(reference, str) or not reference:
        raise bad_request(
            'Invalid request body: expected {"@odata.id": '
            '"https://graph.microsoft.com/v1.0/directoryObjects/{id}"}.'
        )
    parts = [p for p in urlsplit(reference).path.split("/") if p]
    if len(parts) < 2 or parts[-2] not in {"directoryObjects", "users"}:
        raise bad_request(f"Invalid object identifier '{reference}'.")
    if not GUID_RE.match(parts[-1]):
        raise bad_request(f"Invalid object identifier '{parts[-1]}'.")
    return parts[-1].lower()
