"""Graph's identity-and-access throttling budget, per app (bearer token).

Source for every number here: Microsoft Graph docs, "Microsoft Graph
service-specific throttling limits", section "Identity and access service
limits" (learn.microsoft.com/graph/throttling-limits; its text lives in
microsoft-graph-docs-contrib includes/throttling-identity-and-access.md):

- per application+tenant pair, 3,500 resource units per 10 s for a small
  tenant (5,000 medium, 8,000 large) and 3,000 writes per 2 min 30 s;
- base costs: `GET users` (the collection) 2, `GET subscribedSkus` 3, the
  other rows of `BASE_COSTS`, "any identity path not listed" 1; POST, PATCH,
  PUT and DELETE also cost 1 write;
- `$select` -1, `$expand` +1, `$top` below 20 -1, never below 1;
- normal answers carry `x-ms-resource-unit` (the cost) and, above 0.8 of the
  limit, `x-ms-throttle-limit-percentage`; a 429 carries `Retry-After`,
  `x-ms-throttle-scope` (`<Scope>/<Limit>/<ApplicationId>/<TenantId>`) and
  `x-ms-throttle-information` (`ResourceUnitLimitExceeded`, `WriteLimitExceeded`).

So `GET /users/{id}` costs 1 with or without `$select` (only the collection is
listed at 2), and `GET /users?$filter=...&$select=...` costs 1.

The emulator's simplifications: fixed windows per client instead of Graph's
token bucket (so `Retry-After` is the time to the end of the window, in whole
seconds), one application+tenant budget (no per-app-across-tenants or
per-tenant write limits), and a refusal blocks the app: once over the
resource-unit budget every call of that token is refused until the window
ends ("A 429 applies to the app as a whole", docs/graph-facts.md), once
over the write quota every write is refused while reads still pass (Graph
throttling guidance: "you could encounter a scenario where writes are
throttled but reads are still permitted"; scope `.../Write/...`). A refused
call charges nothing: inside a fixed window it would change nothing visible.
"""

from __future__ import annotations

import math
import threading
import uuid
from dataclasses import dataclass

from .clock import Clock

RESOURCE_WINDOW_SECONDS = 10.0
WRITE_WINDOW_SECONDS = 150.0
DEFAULT_UNITS_PER_10S = 3500  # small tenant (under 50 users)
DEFAULT_WRITES_PER_150S = 3000
LIMIT_PERCENTAGE_FROM = 0.8  # x-ms-throttle-limit-percentage appears above this share
DEFAULT_TENANT_ID = "00000000-0000-0000-0000-000000000001"  # also the SKUs' default accountId
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})

#: Base (resource units, writes) by (method, request path template), the docs' table; a
#: path not listed costs 1 unit, plus 1 write for POST/PATCH/PUT/DELETE. The docs' `me/...`
#: rows apply to `users/{id}/...` too (their note), so they are listed that way.
BASE_COSTS: dict[tuple[str, str], tuple[int, int]] = {
    ("GET", "applications"): (2, 0),
    ("GET", "applications/{id}/extensionProperties"): (2, 0),
    ("GET", "contracts"): (3, 0),
    ("POST", "directoryObjects/getByIds"): (5, 0),  # 3 in older versions of the page
    ("GET", "domains/{id}/domainNameReferences"): (4, 0),
    ("POST", "getObjectsById"): (5, 0),  # 3 in older versions of the page
    ("GET", "groups/{id}/members"): (3, 0),
    ("GET", "groups/{id}/transitiveMembers"): (5, 0),
    ("POST", "isMemberOf"): (4, 0),
    ("POST", "users/{id}/checkMemberGroups"): (4, 0),
    ("POST", "users/{id}/checkMemberObjects"): (4, 0),
    ("POST", "users/{id}/getMemberGroups"): (2, 0),
    ("POST", "users/{id}/getMemberObjects"): (2, 0),
    ("GET", "users/{id}/licenseDetails"): (2, 0),
    ("GET", "users/{id}/memberOf"): (2, 0),
    ("GET", "users/{id}/ownedObjects"): (2, 0),
    ("GET", "users/{id}/transitiveMemberOf"): (2, 0),
    ("GET", "oauth2PermissionGrants"): (2, 0),
    ("GET", "oauth2PermissionGrants/{id}"): (2, 0),
    ("GET", "servicePrincipals/{id}/appRoleAssignments"): (2, 0),
    ("GET", "subscribedSkus"): (3, 0),
    ("GET", "users"): (2, 0),
}


def request_cost(method: str, path: str, query: dict[str, str]) -> tuple[int, int]:
    """(resource units, writes) of one identity call: the table, then the query modifiers."""
    method = method.upper()
    units, writes = BASE_COSTS.get((method, path), (1, 1 if method in WRITE_METHODS else 0))
    if "$select" in query:
        units -= 1
    if "$expand" in query:
        units += 1
    top = query.get("$top", "")
    if top.isdigit() and int(top) < 20:
        units -= 1
    return max(1, units), writes


def application_id(client: str) -> str:
    """A stable application id for a bearer token (the emulator has no app registrations)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "graph-emulator-app:" + client))


@dataclass(frozen=True)
class Admitted:
    """A charged call: its cost and, above 0.8 of a limit, the share used."""

    cost: int
    limit_percentage: float | None = None

    def headers(self) -> dict[str, str]:
        """`x-ms-resource-unit` and, near the limit, `x-ms-throttle-limit-percentage`."""
        headers = {"x-ms-resource-unit": str(self.cost)}
        if self.limit_percentage is not None:
            headers["x-ms-throttle-limit-percentage"] = f"{self.limit_percentage:.2f}"
        return headers


@dataclass(frozen=True)
class Refused:
    """A throttled call: whole seconds to wait and which limit refused it."""

    retry_after: int
    limit: str  # "ReadWrite" (resource units) or "Write" (write quota)
    information: str  # ResourceUnitLimitExceeded | WriteLimitExceeded

    def headers(self, client: str, tenant_id: str = DEFAULT_TENANT_ID) -> dict[str, str]:
        """`Retry-After` plus the documented `x-ms-throttle-*` headers of a throttled answer."""
        return {
            "Retry-After": str(self.retry_after),
            "x-ms-throttle-scope": (
                f"Tenant_Application/{self.limit}/{application_id(client)}/{tenant_id}"
            ),
            "x-ms-throttle-information": self.information,
        }


@dataclass
class _Window:
    start: float
    used: int = 0


class Throttle:
    """Fixed-window budgets per client; `admit` charges a call or says how long to wait."""

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
        self._blocked: dict[str, float] = {}  # client -> every call refused until then
        self._writes_blocked: dict[str, float] = {}  # client -> every write refused until then

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
            self._blocked.clear()
            self._writes_blocked.clear()

    def admit(self, client: str, cost: int, writes_cost: int = 0) -> Admitted | Refused:
        """Charge `cost` units and `writes_cost` writes, or refuse while the app is over budget."""
        is_write = writes_cost > 0
        with self._lock:
            now = self._clock.now()
            blocked = self._blocked.get(client, 0.0)
            if now < blocked:
                return _refused(blocked - now, "ReadWrite", "ResourceUnitLimitExceeded")
            writes_blocked = self._writes_blocked.get(client, 0.0)
            if is_write and now < writes_blocked:
                return _refused(writes_blocked - now, "Write", "WriteLimitExceeded")
            units = self._window(self._units, client, now, RESOURCE_WINDOW_SECONDS)
            writes = self._window(self._writes, client, now, WRITE_WINDOW_SECONDS)
            if self.units_per_10s and units.used + cost > self.units_per_10s:
                until = self._blocked[client] = units.start + RESOURCE_WINDOW_SECONDS
                return _refused(until - now, "ReadWrite", "ResourceUnitLimitExceeded")
            if (
                is_write
                and self.writes_per_150s
                and writes.used + writes_cost > self.writes_per_150s
            ):
                until = self._writes_blocked[client] = writes.start + WRITE_WINDOW_SECONDS
                return _refused(until - now, "Write", "WriteLimitExceeded")
            units.used += cost
            shares = [units.used / self.units_per_10s] if self.units_per_10s else []
            if is_write:
                writes.used += writes_cost
                if self.writes_per_150s:
                    shares.append(writes.used / self.writes_per_150s)
            share = max(shares, default=0.0)
            return Admitted(cost, share if share > LIMIT_PERCENTAGE_FROM else None)

    @staticmethod
    def _window(windows: dict[str, _Window], client: str, now: float, length: float) -> _Window:
        window = windows.get(client)
        if window is None or now >= window.start + length:
            window = windows[client] = _Window(now)
        return window


def _refused(wait: float, limit: str, information: str) -> Refused:
    return Refused(max(1, math.ceil(wait)), limit, information)
