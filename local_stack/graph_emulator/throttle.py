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

Two models (`model`), one application+tenant budget in both (no
per-app-across-tenants or per-tenant write limits):

- `window` (the default): fixed windows per client instead of Graph's token
  bucket (so `Retry-After` is the time to the end of the window), and a refusal
  blocks the app: once over the resource-unit budget every call of that token is
  refused until the window ends ("A 429 applies to the app as a whole",
  docs/graph-facts.md), once over the write quota every write is refused while
  reads still pass (Graph throttling guidance: "you could encounter a scenario
  where writes are throttled but reads are still permitted"; scope
  `.../Write/...`). A refused call charges nothing: inside a fixed window it
  would change nothing visible.
- `bucket`: what the limits page says Graph does ("Throttling is based on a
  token bucket algorithm ... Only the requests exceeding the limits will be
  throttled"): each budget is a bucket of that many tokens refilled evenly over
  its window (3,000 writes per 150 s: 20 a second), a call is admitted while
  its bucket holds its cost, and `Retry-After` is the time until it will. A
  refused call is charged all the same (down to one bucket of debt), because
  "Microsoft Graph continues to log resource usage while a client is being
  throttled" and "all requests accrue against your usage limits" (Graph
  throttling guidance, learn.microsoft.com/graph/throttling): calls sent while
  throttled push the app's next success further away.

`time_scale` S (default 1) runs Graph's clock S times faster for benchmarks:
windows last 10/S and 150/S seconds while budgets keep Graph's numbers (so the
rates are S times Graph's), and `Retry-After` counts in steps of 1/S second, the
image of Graph's whole seconds (it is a decimal such as `0.2` when S > 1).
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
MODELS = ("window", "bucket")
# Clock seconds since the epoch carry ~1e-7 s of float error: a bucket refilled to exactly
# one token may read 0.99999 (a thousandth of a call is no budget anyone can use).
_TOKEN_SLACK = 1e-3
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
    """A throttled call: seconds to wait (whole seconds of Graph's clock) and which limit
    refused it."""

    retry_after: float
    limit: str  # "ReadWrite" (resource units) or "Write" (write quota)
    information: str  # ResourceUnitLimitExceeded | WriteLimitExceeded

    def headers(self, client: str, tenant_id: str = DEFAULT_TENANT_ID) -> dict[str, str]:
        """`Retry-After` plus the documented `x-ms-throttle-*` headers of a throttled answer."""
        return {
            "Retry-After": f"{self.retry_after:.3f}".rstrip("0").rstrip("."),
            "x-ms-throttle-scope": (
                f"Tenant_Application/{self.limit}/{application_id(client)}/{tenant_id}"
            ),
            "x-ms-throttle-information": self.information,
        }


@dataclass
class _Window:
    start: float
    used: int = 0


@dataclass
class _Bucket:
    level: float  # tokens left; below zero while refused calls are still charged
    at: float  # when `level` was last brought up to date


@dataclass(frozen=True)
class _Limit:
    """One budget as it applies to one call."""

    name: str  # "units" | "writes"
    capacity: int  # per window
    seconds: float  # the window (scaled)
    amount: int  # what this call costs against it
    scope: str  # "ReadWrite" | "Write", as x-ms-throttle-scope names it

    @property
    def information(self) -> str:
        return "WriteLimitExceeded" if self.scope == "Write" else "ResourceUnitLimitExceeded"


class Throttle:
    """Budgets per client; `admit` charges a call or says how long to wait."""

    def __init__(
        self,
        clock: Clock,
        units_per_10s: int = DEFAULT_UNITS_PER_10S,
        writes_per_150s: int = DEFAULT_WRITES_PER_150S,
        *,
        time_scale: float = 1.0,
        model: str = "window",
    ) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be above zero")
        if model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}")
        self._clock = clock
        self._lock = threading.Lock()
        self.units_per_10s = units_per_10s
        self.writes_per_150s = writes_per_150s
        self.time_scale = time_scale
        self.model = model
        self._unit_seconds = RESOURCE_WINDOW_SECONDS / time_scale
        self._write_seconds = WRITE_WINDOW_SECONDS / time_scale
        self._buckets: dict[tuple[str, str], _Bucket] = {}
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
            self._buckets.clear()

    def admit(self, client: str, cost: int, writes_cost: int = 0) -> Admitted | Refused:
        """Charge `cost` units and `writes_cost` writes, or refuse while the app is over budget."""
        with self._lock:
            if self.model == "bucket":
                return self._admit_bucket(client, cost, writes_cost)
            return self._admit_window(client, cost, writes_cost)

    def _admit_window(self, client: str, cost: int, writes_cost: int) -> Admitted | Refused:
        is_write = writes_cost > 0
        now = self._clock.now()
        blocked = self._blocked.get(client, 0.0)
        if now < blocked:
            return self._refused(blocked - now, "ReadWrite", "ResourceUnitLimitExceeded")
        writes_blocked = self._writes_blocked.get(client, 0.0)
        if is_write and now < writes_blocked:
            return self._refused(writes_blocked - now, "Write", "WriteLimitExceeded")
        units = self._window(self._units, client, now, self._unit_seconds)
        writes = self._window(self._writes, client, now, self._write_seconds)
        if self.units_per_10s and units.used + cost > self.units_per_10s:
            until = self._blocked[client] = units.start + self._unit_seconds
            return self._refused(until - now, "ReadWrite", "ResourceUnitLimitExceeded")
        if is_write and self.writes_per_150s and writes.used + writes_cost > self.writes_per_150s:
            until = self._writes_blocked[client] = writes.start + self._write_seconds
            return self._refused(until - now, "Write", "WriteLimitExceeded")
        units.used += cost
        shares = [units.used / self.units_per_10s] if self.units_per_10s else []
        if is_write:
            writes.used += writes_cost
            if self.writes_per_150s:
                shares.append(writes.used / self.writes_per_150s)
        share = max(shares, default=0.0)
        return Admitted(cost, share if share > LIMIT_PERCENTAGE_FROM else None)

    def _admit_bucket(self, client: str, cost: int, writes_cost: int) -> Admitted | Refused:
        now = self._clock.now()
        limits = [_Limit("units", self.units_per_10s, self._unit_seconds, cost, "ReadWrite")]
        if writes_cost:
            limits.append(
                _Limit("writes", self.writes_per_150s, self._write_seconds, writes_cost, "Write")
            )
        limits = [limit for limit in limits if limit.capacity]  # a budget of 0 is no limit
        buckets = [self._bucket(client, limit, now) for limit in limits]
        short = next(
            (n for n, b in enumerate(buckets) if b.level < limits[n].amount - _TOKEN_SLACK), None
        )
        for bucket, limit in zip(buckets, limits, strict=True):
            bucket.level = max(-limit.capacity, bucket.level - limit.amount)
        if short is not None:
            limit, bucket = limits[short], buckets[short]
            wait = (limit.amount - bucket.level) * limit.seconds / limit.capacity
            return self._refused(wait, limit.scope, limit.information)
        shares = [1 - b.level / limit.capacity for b, limit in zip(buckets, limits, strict=True)]
        share = max(shares, default=0.0)
        return Admitted(cost, share if share > LIMIT_PERCENTAGE_FROM else None)

    def _bucket(self, client: str, limit: _Limit, now: float) -> _Bucket:
        """The client's bucket for `limit`, refilled up to now; full the first time."""
        bucket = self._buckets.get((client, limit.name))
        if bucket is None:
            bucket = self._buckets[(client, limit.name)] = _Bucket(float(limit.capacity), now)
        else:
            refill = (now - bucket.at) * limit.capacity / limit.seconds
            bucket.level = min(float(limit.capacity), bucket.level + refill)
        bucket.at = now
        return bucket

    def _refused(self, wait: float, limit: str, information: str) -> Refused:
        """Graph's Retry-After is whole seconds of its clock: steps of 1/S here."""
        steps = max(1, math.ceil(round(wait * self.time_scale, 9)))
        return Refused(steps / self.time_scale, limit, information)

    @staticmethod
    def _window(windows: dict[str, _Window], client: str, now: float, length: float) -> _Window:
        window = windows.get(client)
        if window is None or now >= window.start + length:
            window = windows[client] = _Window(now)
        return window
