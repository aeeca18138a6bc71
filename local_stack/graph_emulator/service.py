"""Graph v1.0 request handling, independent of the HTTP server.

`GraphService.handle` takes one request (from a socket or from inside a
`$batch`) and returns a `Reply`. Both paths run the same pipeline - auth
(401), injected faults, routing, permissions (403), throttling (429), the
directory rules (which include replication lag) - so a batch item fails
exactly as the same call made on its own would, and every exchange is
appended to the request log the tests and the OpenAPI check read.

Routes: `GET /users/{id|upn}` (and `users('...')`), `GET /users?$filter=`,
`PATCH /users/{id}`, `POST /users/{id}/assignLicense`,
`POST /users/{id}/reprocessLicenseAssignment`, `GET /subscribedSkus`,
`POST /groups/{id}/members/$ref`,
`GET /servicePrincipals/{sp}/synchronization/jobs/{job}/schema`,
`POST /servicePrincipals/{sp}/synchronization/jobs/{job}/provisionOnDemand`,
the Teams admin routes under `/admin/teams` (`teams_api`, metered against
Teams' own budget, `teams_throttle`) and `POST /$batch`; an action may also be
spelt `microsoft.graph.<action>` (`microsoft.graph.teamsAdministration.<action>`).

A route is registered in `_route` with a name (the key of
`permissions.ROUTE_PERMISSIONS`, e.g. `users.reprocessLicenseAssignment`) and
a cost path (the key of `throttle.BASE_COSTS`, e.g. `users/{id}`; a path not
in the table costs 1 unit, and 1 write for POST/PATCH/PUT/DELETE).

`$batch` answers list their items in a shuffled order by default: "Responses
to the batched requests might appear in a different order. The id property
can be used to correlate individual requests and responses."
(learn.microsoft.com/graph/json-batching). The shuffle uses a seeded RNG and
never returns the request order for 2+ items, so a client that pairs answers
by position fails every run rather than one run in n!.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .clock import Clock, iso_z, to_datetime
from .directory import DEFAULT_USER_PROPERTIES, USER_PROPERTIES, Directory
from .directory import check_assign_license_parameters as assign_parameters
from .errors import GraphRefusal, bad_request, error_body, selected_properties
from .faults import Faults
from .odata import parse_filter, parse_select, split_path
from .sync import select_schema
from .teams_api import TeamsApi
from .teams_throttle import TeamsThrottle
from .throttle import Refused, Throttle, request_cost

DEFAULT_TOKEN = "local-graph-emulator-token"  # noqa: S105 - a fixed development token, not a secret
API_PREFIX = "/v1.0"
ENTITY_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)
ERROR_CONTENT_TYPE = "application/json"
MAX_BATCH_REQUESTS = 20
ACTION_NAMESPACE = "microsoft.graph."
MAX_TOP = 999

SKU_PROPERTIES = (
    "accountId",
    "accountName",
    "appliesTo",
    "capabilityStatus",
    "consumedUnits",
    "id",
    "prepaidUnits",
    "servicePlans",
    "skuId",
    "skuPartNumber",
    "subscriptionIds",
)


@dataclass
class Request:
    """One Graph call: `raw_path` starts with `/v1.0` and is still percent-encoded."""

    method: str
    raw_path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: Any = None
    body_is_invalid_json: bool = False


@dataclass
class Reply:
    """What to send back; `drop` means close the connection without answering."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


class GraphService:
    """Answers Graph v1.0 calls against a `Directory`, with auth, faults, throttling and a log."""

    def __init__(
        self,
        directory: Directory,
        clock: Clock,
        *,
        token: str = DEFAULT_TOKEN,
        throttle: Throttle | None = None,
        faults: Faults | None = None,
        shuffle_batch: bool = True,
        batch_seed: int | None = None,
        teams_throttle: TeamsThrottle | None = None,
    ) -> None:
        self.directory = directory
        self.clock = clock
        self.token = token
        self.throttle = throttle or Throttle(clock)
        self.teams_throttle = teams_throttle or TeamsThrottle(clock)
        self.teams_api = TeamsApi(directory, clock, lambda: self.base_url)
        self.faults = faults or Faults()
        self.shuffle_batch = shuffle_batch
        self._batch_rng = random.Random(batch_seed)  # shuffles test data, not crypto
        self._batch_rng_lock = threading.Lock()
        self.base_url = "http://127.0.0.1" + API_PREFIX
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()

    # --------------------------------------------------------------- the log

    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log, oldest first."""
        with self._log_lock:
            return json.loads(json.dumps(self._log))  # type: ignore[no-any-return]

    def clear_requests(self) -> None:
        """Forget every logged exchange."""
        with self._log_lock:
            self._log.clear()

    def _record(self, request: Request, reply: Reply, *, batch_item: bool) -> None:
        entry = {
            "method": request.method,
            "path": request.raw_path,
            "query": request.query,
            "headers": {
                "authorization": "authorization" in request.headers,
                "client-request-id": request.headers.get("client-request-id"),
                "content-type": request.headers.get("content-type"),
            },
            "body": request.body,
            "status": None if reply.drop else reply.status,
            "dropped": reply.drop,
            "responseBody": reply.body,
            "batchItem": batch_item,
            "time": iso_z(self.clock.now()),
        }
        with self._log_lock:
            self._log.append(entry)

    # -------------------------------------------------------------- pipeline

    def handle(self, request: Request, *, batch_item: bool = False) -> Reply:
        """Answer one call and log it."""
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id")
        try:
            reply = self._pipeline(request, batch_item)
        except GraphRefusal as exc:
            reply = Reply(
                exc.status, self._error(exc.code, exc.message, request), dict(exc.headers)
            )
        reply.headers.setdefault(
            "Content-Type", ERROR_CONTENT_TYPE if reply.status >= 400 else ENTITY_CONTENT_TYPE
        )
        reply.headers["request-id"] = request_id
        if client_request_id:
            reply.headers["client-request-id"] = client_request_id
        if isinstance(reply.body, dict) and "error" in reply.body:
            inner = reply.body["error"].get("innerError", {})
            inner["request-id"] = request_id
            inner["client-request-id"] = client_request_id or request_id
        self._record(request, reply, batch_item=batch_item)
        return reply

    def _error(self, code: str, message: str, request: Request) -> dict[str, Any]:
        return error_body(
            code,
            message,
            request_id="",  # filled in by `handle`, which owns the id
            client_request_id=request.headers.get("client-request-id"),
            now=to_datetime(self.clock.now()),
        )

    def _pipeline(self, request: Request, batch_item: bool) -> Reply:
        self._authenticate(request.headers.get("authorization"))
        decoded_path = unquote(request.raw_path[len(API_PREFIX) :]) or "/"
        fault = self.faults.pick(request.method, decoded_path)
        if fault is not None:
            if fault.delay_ms:
                time.sleep(fault.delay_ms / 1000)
            if fault.drop and not batch_item:
                return Reply(0, drop=True)
            answer = fault.error()
            if answer is not None:
                status, code, message = answer
                headers = (
                    {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                )
                raise GraphRefusal(status, code, message, headers)
        segments = split_path(request.raw_path[len(API_PREFIX) :])
        route = self._route(request.method, segments, batch_item)
        query = _parse_query(request.query)
        # A refused call costs no budget: whether Graph meters 403s is not documented.
        self.directory.permissions.require(route.name)
        metered: dict[str, str] = {}
        if route.budget == "teams":
            # Teams' own budget (teams_throttle.py): no resource units, only Retry-After.
            wait = self.teams_throttle.admit(
                request.headers.get("authorization", ""), request.method
            )
            if wait is not None:
                raise GraphRefusal(
                    429, "TooManyRequests", "Please retry again later.", {"Retry-After": str(wait)}
                )
        elif route.cost_path is not None:
            client = request.headers.get("authorization", "")
            units, writes = request_cost(request.method, route.cost_path, query)
            verdict = self.throttle.admit(client, units, writes)
            if isinstance(verdict, Refused):
                # Code and message of Graph's sample 429 ("Microsoft Graph throttling guidance",
                # learn.microsoft.com/graph/throttling#sample-response); headers per throttle.py.
                raise GraphRefusal(
                    429, "TooManyRequests", "Please retry again later.", verdict.headers(client)
                )
            metered = verdict.headers()
        try:
            if request.body_is_invalid_json:
                raise GraphRefusal(
                    400,
                    "BadRequest",
                    "Unable to read JSON request payload. Please ensure Content-Type header is "
                    "set and payload is of valid JSON format.",
                )
            reply = route.handler(request, segments, query)
        except GraphRefusal as exc:
            raise GraphRefusal(
                exc.status, exc.code, exc.message, {**exc.headers, **metered}
            ) from exc
        reply.headers.update(metered)
        return reply

    def _authenticate(self, header: str | None) -> None:
        if not header:
            raise GraphRefusal(401, "InvalidAuthenticationToken", "Access token is empty.", _www())
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            raise GraphRefusal(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
                _www(),
            )

    def _route(self, method: str, segments: list[str], batch_item: bool) -> _Route:
        routes: dict[str, _Route]
        if segments and segments[-1].startswith(ACTION_NAMESPACE):
            # Actions may be namespace-qualified (microsoft.graph.assignLicense).
            segments = [*segments[:-1], segments[-1][len(ACTION_NAMESPACE) :]]
        sync_job = (
            len(segments) == 6
            and segments[0] == "servicePrincipals"
            and segments[2:4] == ["synchronization", "jobs"]
        )
        if segments == ["users"]:
            routes = {"GET": _Route(self._list_users, "users.list", "users")}
        elif len(segments) == 2 and segments[0] == "users":
            routes = {
                "GET": _Route(self._get_user, "users.get", "users/{id}"),
                "PATCH": _Route(self._patch_user, "users.update", "users/{id}"),
            }
        elif len(segments) == 3 and segments[0] == "users" and segments[2] == "assignLicense":
            routes = {
                "POST": _Route(
                    self._assign_license, "users.assignLicense", "users/{id}/assignLicense"
                )
            }
        elif (
            len(segments) == 3
            and segments[0] == "users"
            and segments[2] == "reprocessLicenseAssignment"
        ):
            routes = {
                "POST": _Route(
                    self._reprocess_license_assignment,
                    "users.reprocessLicenseAssignment",
                    "users/{id}/reprocessLicenseAssignment",
                )
            }
        elif len(segments) == 4 and segments[0] == "groups" and segments[2:] == ["members", "$ref"]:
            routes = {
                "POST": _Route(self._add_member, "groups.members.add", "groups/{id}/members/$ref")
            }
        elif sync_job and segments[5] == "schema":
            routes = {
                "GET": _Route(
                    self._sync_schema,
                    "servicePrincipals.synchronization.jobs.schema.get",
                    "servicePrincipals/{id}/synchronization/jobs/{id}/schema",
                )
            }
        elif sync_job and segments[5] == "provisionOnDemand":
            routes = {
                "POST": _Route(
                    self._provision_on_demand,
                    "servicePrincipals.synchronization.jobs.provisionOnDemand",
                    "servicePrincipals/{id}/synchronization/jobs/{id}/provisionOnDemand",
                )
            }
        elif segments == ["subscribedSkus"]:
            routes = {"GET": _Route(self._subscribed_skus, "subscribedSkus.list", "subscribedSkus")}
        elif segments[:2] == ["admin", "teams"] and (teams := self.teams_api.route(segments)):
            routes = {
                method: _Route(_answering(handler), name, None, budget="teams")
                for method, (handler, name) in teams.items()
            }
        elif segments == ["$batch"] and not batch_item:
            # Not metered itself: "requests in a batch are evaluated individually against
            # throttling limits" (learn.microsoft.com/graph/throttling, "Throttling and batching").
            routes = {"POST": _Route(self._batch, "$batch", None)}
        else:
            known = {"users", "subscribedSkus", "groups", "servicePrincipals", "synchronization"}
            known |= {"admin", "teams", "telephoneNumberManagement"}
            where = next((s for s in segments if s not in known), segments[0] if segments else "")
            raise GraphRefusal(400, "BadRequest", f"Resource not found for the segment '{where}'.")
        route = routes.get(method)
        if route is None:
            raise GraphRefusal(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        return route

    # -------------------------------------------------------------- handlers

    def _context(self, fragment: str) -> str:
        return f"{self.base_url}/$metadata#{fragment}"

    def _get_user(self, request: Request, segments: list[str], query: dict[str, str]) -> Reply:
        _only(query, {"$select", "$expand"})
        selected = parse_select(query.get("$select"), USER_PROPERTIES)
        user = self.directory.get_user(segments[1])
        return Reply(200, self._shape_user(user, selected, entity=True))

    def _shape_user(
        self, user: Mapping[str, Any], selected: list[str] | None, *, entity: bool
    ) -> dict[str, Any]:
        props = selected if selected is not None else list(DEFAULT_USER_PROPERTIES)
        body = {p: user[p] for p in props}
        if entity:
            fragment = "users/$entity" if selected is None else f"users({','.join(props)})/$entity"
            return {"@odata.context": self._context(fragment), **body}
        return body

    def _list_users(self, request: Request, segments: list[str], query: dict[str, str]) -> Reply:
        _only(query, {"$select", "$filter", "$top", "$count"})
        selected = parse_select(query.get("$select"), USER_PROPERTIES)
        raw_filter = query.get("$filter")
        if raw_filter is None:
            raise GraphRefusal(
                400,
                "Request_UnsupportedQuery",
                "The emulator lists users only with a $filter (eq or in on userPrincipalName, "
                "employeeId or onPremisesImmutableId).",
            )
        parsed = parse_filter(raw_filter)
        users = self.directory.find_users(parsed.prop, parsed.values)
        top = _top(query.get("$top"))
        if top is not None:
            users = users[:top]
        fragment = "users" if selected is None else f"users({','.join(selected)})"
        body: dict[str, Any] = {"@odata.context": self._context(fragment)}
        if query.get("$count", "").lower() == "true":
            if request.headers.get("consistencylevel", "").lower() != "eventual":
                raise GraphRefusal(
                    400,
                    "Request_BadRequest",
                    "$count is not currently supported without the ConsistencyLevel: eventual "
                    "header.",
                )
            body["@odata.count"] = len(users)
        body["value"] = [self._shape_user(u, selected, entity=False) for u in users]
        return Reply(200, body)

    def _patch_user(self, request: Request, segments: list[str], query: dict[str, str]) -> Reply:
        _only(query, set())
        self.directory.update_user(segments[1], request.body)
        return Reply(204, None, {})

    def _assign_license(
        self, request: Request, segments: list[str], query: dict[str, str]
    ) -> Reply:
        _only(query, set())
        add, remove = assign_parameters(request.body)
        user = self.directory.assign_license(segments[1], add, remove)
        shown = [*DEFAULT_USER_PROPERTIES, "assignedLicenses"]
        return Reply(
            200, {"@odata.context": self._context("users/$entity"), **{p: user[p] for p in shown}}
        )

    def _reprocess_license_assignment(
        self, request: Request, segments: list[str], query: dict[str, str]
    ) -> Reply:
        """200 with the user, as assignLicense answers (user-reprocesslicenseassignment)."""
        _only(query, set())
        user = self.directory.reprocess_license_assignment(segments[1])
        shown = [*DEFAULT_USER_PROPERTIES, "assignedLicenses"]
        return Reply(
            200, {"@odata.context": self._context("users/$entity"), **{p: user[p] for p in shown}}
        )

    def _add_member(self, request: Request, segments: list[str], query: dict[str, str]) -> Reply:
        """204 No Content (group-post-members)."""
        _only(query, set())
        self.directory.add_member(segments[1], request.body)
        return Reply(204, None, {})

    def _sync_schema(self, request: Request, segments: list[str], query: dict[str, str]) -> Reply:
        _only(query, {"$select"})
        sp_id, job_id = segments[1], segments[4]
        context = self._context(
            f"servicePrincipals('{sp_id}')/synchronization/jobs('{job_id}')/schema/$entity"
        )
        body = self.directory.sync_schema(sp_id, job_id, context)
        return Reply(200, select_schema(body, query.get("$select")))

    def _provision_on_demand(
        self, request: Request, segments: list[str], query: dict[str, str]
    ) -> Reply:
        _only(query, set())
        return Reply(
            200, self.directory.provision_on_demand(segments[1], segments[4], request.body)
        )

    def _subscribed_skus(
        self, request: Request, segments: list[str], query: dict[str, str]
    ) -> Reply:
        unsupported = [k for k in query if k.startswith("$") and k != "$select"]
        if unsupported:
            raise GraphRefusal(
                400,
                "Request_UnsupportedQuery",
                f"The query option '{unsupported[0]}' is not supported on subscribedSkus.",
            )
        selected = _select_sku(query.get("$select"))
        skus = self.directory.subscribed_skus()
        fragment = "subscribedSkus" if selected is None else f"subscribedSkus({','.join(selected)})"
        value = [s if selected is None else {p: s[p] for p in selected} for s in skus]
        return Reply(200, {"@odata.context": self._context(fragment), "value": value})

    # ----------------------------------------------------------------- batch

    def _batch(self, request: Request, segments: list[str], query: dict[str, str]) -> Reply:
        items = _parse_batch(request.body)
        replies: dict[str, Reply] = {}
        for item in _dependency_order(items):
            failed = [d for d in item.get("dependsOn") or [] if replies[d].status >= 400]
            if failed:
                replies[item["id"]] = self._failed_dependency(request, item, failed[0])
                continue
            replies[item["id"]] = self.handle(_item_request(request, item), batch_item=True)
        responses = []
        for item in items:
            reply = replies[item["id"]]
            entry: dict[str, Any] = {"id": item["id"], "status": reply.status}
            # Items carry their own Retry-After and x-ms-resource-unit / x-ms-throttle-* headers
            # (learn.microsoft.com/graph/json-batching, example response), and Location (an
            # assignNumber order's operation: item headers are "the headers returned by the
            # server", same page).
            entry["headers"] = {
                k: v
                for k, v in reply.headers.items()
                if k in {"Content-Type", "Retry-After", "Location"} or k.startswith("x-ms-")
            }
            if reply.body is not None:
                entry["body"] = reply.body
            responses.append(entry)
        if self.shuffle_batch:
            responses = self._shuffled(responses)
        return Reply(200, {"responses": responses}, {"Content-Type": ERROR_CONTENT_TYPE})

    def _shuffled(self, responses: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Any order but the request order (for 2+ items), from the seeded RNG."""
        shuffled = list(responses)
        with self._batch_rng_lock:
            self._batch_rng.shuffle(shuffled)
        if len(shuffled) > 1 and [r["id"] for r in shuffled] == [r["id"] for r in responses]:
            shuffled = shuffled[1:] + shuffled[:1]
        return shuffled

    def _failed_dependency(self, outer: Request, item: Mapping[str, Any], dependency: str) -> Reply:
        """Graph's answer for an item whose dependency failed: 424, not run at all."""
        request = _item_request(outer, item)
        reply = Reply(
            424,
            self._error(
                "FailedDependency",
                f"Failed dependency: request {dependency} failed, so request {item['id']} "
                "was not executed.",
                request,
            ),
            {"Content-Type": ERROR_CONTENT_TYPE},
        )
        inner = reply.body["error"]["innerError"]
        inner["request-id"] = str(uuid.uuid4())
        inner["client-request-id"] = inner["request-id"]
        self._record(request, reply, batch_item=True)
        return reply


@dataclass(frozen=True)
class _Route:
    """A handler, its permissions.ROUTE_PERMISSIONS name and throttle.BASE_COSTS path."""

    handler: Callable[[Request, list[str], dict[str, str]], Reply]
    name: str
    cost_path: str | None  # None: not metered as identity (the $batch envelope, Teams routes)
    budget: str = "identity"  # or "teams": Teams' own requests-per-second budget


def _answering(
    handler: Callable[
        [Mapping[str, str], Any, list[str], dict[str, str]], tuple[int, Any, dict[str, str]]
    ],
) -> Callable[[Request, list[str], dict[str, str]], Reply]:
    """A `teams_api` handler as a route handler."""

    def answer(request: Request, segments: list[str], query: dict[str, str]) -> Reply:
        status, body, headers = handler(request.headers, request.body, segments, query)
        return Reply(status, body, headers)

    return answer


def _www() -> dict[str, str]:
    return {
        "WWW-Authenticate": 'Bearer realm="", '
        'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
        'client_id="00000003-0000-0000-c000-000000000000"'
    }


def _parse_query(raw: str) -> dict[str, str]:
    """Decode the query string (`+` is a space, like ASP.NET); repeated options are a 400."""
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        if name in query:
            raise GraphRefusal(
                400,
                "BadRequest",
                f"Query option '{name}' was specified more than once, but it must be specified "
                "at most once.",
            )
        query[name] = value
    return query


def _only(query: Mapping[str, str], allowed: set[str]) -> None:
    for name in query:
        if name.startswith("$") and name not in allowed:
            raise GraphRefusal(
                400, "BadRequest", f"The query parameter '{name}' is not supported here."
            )


def _top(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
        raise GraphRefusal(
            400,
            "Request_UnsupportedQuery",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_TOP} inclusive.",
        )
    return int(raw)


def _select_sku(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return selected_properties(raw, SKU_PROPERTIES, "subscribedSku")


def _invalid_batch(detail: str) -> GraphRefusal:
    return GraphRefusal(400, "BadRequest", f"Invalid batch payload format. {detail}".strip())


def _parse_batch(body: Any) -> list[dict[str, Any]]:
    """Validate the envelope; problems with the batch itself fail the whole batch with 400."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _invalid_batch("The body must be an object with a 'requests' array.")
    items = body["requests"]
    if not items:
        raise _invalid_batch("The 'requests' array is empty.")
    if len(items) > MAX_BATCH_REQUESTS:
        raise GraphRefusal(
            400,
            "BadRequest",
            f"Number of batch requests exceeds the maximum of {MAX_BATCH_REQUESTS}: "
            f"{len(items)} requests were sent.",
        )
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item.get(k) for k in ("id", "method", "url")
        ):
            raise _invalid_batch("Each request needs string 'id', 'method' and 'url'.")
        if item["id"].lower() in seen:
            raise _invalid_batch(f"Request id '{item['id']}' is not unique in the batch.")
        seen.add(item["id"].lower())
        headers = item.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise _invalid_batch("'headers' must be an object of strings.")
        depends = item.get("dependsOn")
        if depends is not None and (
            not isinstance(depends, list) or not all(isinstance(d, str) for d in depends)
        ):
            raise _invalid_batch("'dependsOn' must be an array of request ids.")
        has_body = item.get("body") is not None
        if has_body and not any(k.lower() == "content-type" for k in headers):
            raise bad_request(
                f"Write request id : {item['id']} does not contain Content-Type header or body.",
                "BadRequest",
            )
    ids = {item["id"] for item in items}
    for item in items:
        for dep in item.get("dependsOn") or []:
            if dep not in ids:
                raise _invalid_batch(f"Request '{item['id']}' depends on unknown id '{dep}'.")
    return list(items)


def _dependency_order(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests in an order that runs every dependency first; a cycle is a 400."""
    by_id = {item["id"]: item for item in items}
    ordered: list[dict[str, Any]] = []
    state: dict[str, str] = {}

    def visit(item_id: str) -> None:
        if state.get(item_id) == "done":
            return
        if state.get(item_id) == "visiting":
            raise _invalid_batch(f"Circular dependsOn involving request '{item_id}'.")
        state[item_id] = "visiting"
        for dep in by_id[item_id].get("dependsOn") or []:
            visit(dep)
        state[item_id] = "done"
        ordered.append(by_id[item_id])

    for item in items:
        visit(item["id"])
    return ordered


def _item_request(outer: Request, item: Mapping[str, Any]) -> Request:
    """A batch item as a standalone call: the outer auth, the item's own headers and body."""
    url = urlsplit(item["url"] if item["url"].startswith("/") else "/" + item["url"])
    headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
    if "authorization" in outer.headers:
        headers["authorization"] = outer.headers["authorization"]
    else:
        headers.pop("authorization", None)
    body = item.get("body")
    invalid = body is not None and not isinstance(body, dict | list)
    return Request(
        method=item["method"].upper(),
        raw_path=API_PREFIX + url.path,
        query=url.query,
        headers=headers,
        body=None if invalid else body,
        body_is_invalid_json=invalid,
    )
