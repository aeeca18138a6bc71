"""Group-based licensing: licensed groups, their processing rules, and license states.

Pure data and decisions; the `Directory` owns the users, seats and the queue
of pending processing, and calls `evaluate_group` when a group's licenses are
due for a user. Sources:

- A user's license outcome is `licenseAssignmentStates`:
  `{assignedByGroup, disabledPlans, error, lastUpdatedDateTime, skuId, state}`,
  `assignedByGroup` null for a direct license, else the group id; `state`
  `Active` | `ActiveWithError` | `Disabled` | `Error`; `error` one of
  `CountViolation`, `MutuallyExclusiveViolation`, `DependencyViolation`,
  `ProhibitedInUsageLocationViolation`, `UniquenessViolation`, `Other`; returned
  only with `$select` (learn.microsoft.com/graph/api/resources/licenseassignmentstate,
  user resource). On success the docs say `error` is null; the OpenAPI excerpt's
  note and docs/graph-facts.md ("Group-based licensing") say the API
  sends `"None"`, which the emulator sends (not verified against a capture).
- The errors' meanings (Microsoft staff, microsoftgraph/microsoft-graph-docs#3167):
  CountViolation = no seat left; MutuallyExclusiveViolation = a plan that
  cannot stack with one the user has; DependencyViolation = a plan's
  prerequisite missing; ProhibitedInUsageLocationViolation = the usage location
  is prohibited for the license.
- "If Microsoft Entra ID can't assign one of the products because of business
  logic problems, it won't assign the other licenses in the group either"
  (entra-docs identity/users/licensing-groups-resolve-problems.md): a group's
  licenses succeed or fail together for a user.
- "any users without a usage location specified inherit the location of the
  directory" (same page, and licensing-admin-center.md).
- Only security groups carry licenses (docs/graph-facts.md), and a user holding a SKU
  several ways uses one seat ("they still consume only one license for that
  product", licensing-groups-resolve-problems.md).

Not verified: the order in which the emulator checks (usage location, seats,
exclusive plans, prerequisites), the `error` given to a group's other licenses
when one of them fails (`Other`), and that the tenant's usage location is
written to the user's `usageLocation`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import DirectoryFormatError

ACTIVE = "Active"
ERROR = "Error"
NO_ERROR = "None"  # what the API sends when a license is Active (see the module docstring)
COUNT_VIOLATION = "CountViolation"
MUTUALLY_EXCLUSIVE = "MutuallyExclusiveViolation"
DEPENDENCY = "DependencyViolation"
PROHIBITED_LOCATION = "ProhibitedInUsageLocationViolation"
OTHER = "Other"  # the current docs' spelling; older ones said "Others" (docs/graph-facts.md)
#: `assignedByGroup` of the static `groupLicenses` user key, which names no group.
STATIC_GROUP_ID = "00000000-0000-0000-0000-000000000000"
DEFAULT_GROUP_LICENSE_DELAY = 3.0
GROUP_KEYS = frozenset(
    {"id", "displayName", "securityEnabled", "licenses", "members", "description", "mailEnabled"}
)
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_LOCATION_RE = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class GroupLicense:
    """One license a group carries: a SKU and the plans it disables (lower-case GUIDs)."""

    sku_id: str
    disabled: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """As the directory file and Graph's assignedLicense spell it."""
        return {"skuId": self.sku_id, "disabledPlans": list(self.disabled)}


@dataclass
class Group:
    """A security group; `members` are user ids (lower case) in the order they joined."""

    id: str
    display_name: str
    security_enabled: bool
    licenses: list[GroupLicense]
    members: list[str] = field(default_factory=list)
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The group as the control API shows it."""
        return {
            "id": self.id,
            "displayName": self.display_name,
            "securityEnabled": self.security_enabled,
            "description": self.description,
            "licenses": [lic.to_json() for lic in self.licenses],
            "members": list(self.members),
        }


@dataclass
class LicenseState:
    """One group license's outcome for one user (`licenseAssignmentStates` entry)."""

    sku_id: str
    group_id: str
    disabled: tuple[str, ...]
    state: str
    error: str
    updated_at: float

    @property
    def active(self) -> bool:
        return self.state == ACTIVE


def guid(value: Any, what: str) -> str:
    """A GUID, lower-cased, or DirectoryFormatError."""
    if not isinstance(value, str) or not _GUID_RE.match(value):
        raise DirectoryFormatError(f"{what} must be a GUID, got {value!r}")
    return value.lower()


def parse_licenses(spec: Any, what: str, sku_plans: Mapping[str, set[str]]) -> list[GroupLicense]:
    """A group's `licenses`: known SKUs, each once, disabling only plans of that SKU."""
    if not isinstance(spec, list):
        raise DirectoryFormatError(f"{what}.licenses must be a list")
    out: list[GroupLicense] = []
    for item in spec:
        if not isinstance(item, Mapping) or set(item) - {"skuId", "disabledPlans"}:
            raise DirectoryFormatError(f"{what}: each license is {{skuId, disabledPlans}}")
        sku_id = guid(item.get("skuId"), f"{what} skuId")
        if sku_id not in sku_plans:
            raise DirectoryFormatError(f"{what}: license {sku_id} is not one of the tenant's SKUs")
        if any(lic.sku_id == sku_id for lic in out):
            raise DirectoryFormatError(f"{what}: license {sku_id} is listed twice")
        disabled_spec = item.get("disabledPlans") or []
        if not isinstance(disabled_spec, list):
            raise DirectoryFormatError(f"{what}: disabledPlans must be a list")
        disabled = tuple(guid(d, f"{what} disabledPlans") for d in disabled_spec)
        unknown = [d for d in disabled if d not in sku_plans[sku_id]]
        if unknown:
            raise DirectoryFormatError(f"{what}: plan {unknown[0]} is not part of {sku_id}")
        out.append(GroupLicense(sku_id, disabled))
    return out


def parse_group(spec: Any, sku_plans: Mapping[str, set[str]]) -> tuple[Group, list[str]]:
    """A group of the directory file and its member keys (ids or UPNs, resolved by the caller)."""
    if not isinstance(spec, Mapping):
        raise DirectoryFormatError("each group must be an object")
    unknown = set(spec) - GROUP_KEYS
    if unknown:
        raise DirectoryFormatError(f"group: unknown keys {sorted(unknown)}")
    group_id = guid(spec.get("id") or str(uuid.uuid4()), "group id")
    name = spec.get("displayName", "")
    if not isinstance(name, str):
        raise DirectoryFormatError(f"group {group_id}: displayName must be a string")
    security = spec.get("securityEnabled", True)
    if not isinstance(security, bool):
        raise DirectoryFormatError(f"group {group_id}: securityEnabled must be a boolean")
    licenses = parse_licenses(spec.get("licenses", []), f"group {group_id}", sku_plans)
    if licenses and not security:
        raise DirectoryFormatError(
            f"group {group_id}: only security groups can carry licenses (securityEnabled true)"
        )
    members = spec.get("members", [])
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise DirectoryFormatError(f"group {group_id}: members must be a list of user ids")
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise DirectoryFormatError(f"group {group_id}: description must be a string")
    return Group(group_id, name, security, licenses, [], description), list(members)


def usage_location(value: Any, what: str) -> str | None:
    """A two-letter upper-case country code or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not _LOCATION_RE.match(value):
        raise DirectoryFormatError(f"{what} must be a two-letter country code like 'FR'")
    return value


def delay(value: Any, what: str = "groupLicenseDelaySeconds") -> float:
    """A non-negative number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise DirectoryFormatError(f"{what} must be a non-negative number")
    return float(value)


@dataclass(frozen=True)
class SkuFacts:
    """What evaluation needs of one SKU: free seats, prohibited locations, plan names."""

    free_seats: int
    prohibited: frozenset[str]
    plans: frozenset[str]  # names of the plans this license enables (disabled ones removed)


def evaluate_group(
    licenses: Iterable[GroupLicense],
    facts: Mapping[str, SkuFacts],
    *,
    held_elsewhere: set[str],
    active_here: set[str],
    other_plans: set[str],
    location: str | None,
    mutually_exclusive: Iterable[Iterable[str]],
    prerequisites: Mapping[str, Iterable[str]],
) -> dict[str, str | None]:
    """The error (or None) of each of a group's licenses for one user, evaluated alone.

    `held_elsewhere`: SKUs the user holds by other means (no seat needed);
    `active_here`: SKUs this group already gave the user (seat already taken);
    `other_plans`: plan names the user has from everything but this group.
    """
    licenses = list(licenses)
    group_plans: set[str] = set()
    for lic in licenses:
        group_plans |= facts[lic.sku_id].plans
    available = other_plans | group_plans
    results: dict[str, str | None] = {}
    for lic in licenses:
        sku = facts[lic.sku_id]
        needs_seat = lic.sku_id not in held_elsewhere and lic.sku_id not in active_here
        added = set(sku.plans) - other_plans
        after = other_plans | sku.plans
        error: str | None = None
        if location is None:
            error = OTHER  # no usage location at all: nothing documented, not verified
        elif location in sku.prohibited:
            error = PROHIBITED_LOCATION
        elif needs_seat and sku.free_seats < 1:
            error = COUNT_VIOLATION
        elif any(
            len(clash := [p for p in exclusive if p in after]) > 1 and set(clash) & added
            for exclusive in mutually_exclusive
        ):
            error = MUTUALLY_EXCLUSIVE
        elif any(
            plan in added and not set(prerequisites[plan]) & available for plan in prerequisites
        ):
            error = DEPENDENCY
        results[lic.sku_id] = error
    return results


def state_json(
    sku_id: str,
    *,
    group_id: str | None,
    disabled: Iterable[str],
    state: str,
    error: str,
    updated: str | None,
) -> dict[str, Any]:
    """One `licenseAssignmentStates` entry, keys as in the resource's JSON representation."""
    return {
        "assignedByGroup": group_id,
        "disabledPlans": list(disabled),
        "error": error,
        "lastUpdatedDateTime": updated,
        "skuId": sku_id,
        "state": state,
    }
