"""The `Directory` port on Microsoft Graph, through msgraph-sdk.

Lookup URLs are built in one place, `_Probe.relative_url` (the UPN as one percent-encoded
path segment, or `users('...')` for a UPN starting with `$`; filter values as OData
literals), and serve both single GETs and `$batch` items (whose body is built here:
msgraph-core's helpers send `depends_on`). Writes use msgraph-sdk's request builders and
models. Answers are read as raw JSON through the SDK's request adapter (auth,
middleware), which avoids loading ~1,200 typed model modules on a cold start.

Every msgraph-sdk `APIError`/`ODataError` and httpx error is translated into
`shared.errors.GraphError` in `_translate`, and nowhere else: what Graph meant (`kind`)
and which call it refused; what to do about it is the workflow's decision.

OData string literals escape `'` as `''` (`odata_literal`); that is the only way a
value from a message reaches a `$filter`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    AuthenticationProvider,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.assigned_license import AssignedLicense
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user import User
from msgraph.generated.users.item.assign_license.assign_license_post_request_body import (
    AssignLicensePostRequestBody,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory

from shared.codes import ForcedSyncStatus
from shared.errors import GraphCall, GraphError, GraphErrorKind
from shared.requests import UserIdentifiers
from shared.settings import LOCAL_GRAPH_TOKEN
from shared.telemetry import TelemetryEvent, emit
from shared.tenant import (
    Ambiguous,
    CloudSyncJob,
    DirectoryUser,
    ForcedSyncResult,
    Found,
    LicenseAssignment,
    LicenseState,
    Lookup,
    LookupFailed,
    NotFound,
    ServicePlan,
    Sku,
    SkuCatalog,
)

log = logging.getLogger("user_onboarding.graph")
# httpx logs every request at INFO: in Application Insights that is a trace per Graph call.
# What matters (retries, refusals) is logged here instead.
logging.getLogger("httpx").setLevel(logging.WARNING)

USER_FIELDS: Final = (
    "id",
    "userPrincipalName",
    "employeeId",
    "accountEnabled",
    "usageLocation",
    "assignedLicenses",
    "onPremisesSyncEnabled",
    "onPremisesLastSyncDateTime",
    "onPremisesImmutableId",
    "licenseAssignmentStates",  # group-based licensing's outcome; only returned on $select
)
SKU_FIELDS: Final = (
    "skuId",
    "skuPartNumber",
    "appliesTo",
    "capabilityStatus",
    "consumedUnits",
    "prepaidUnits",
    "servicePlans",
)
BATCH_LIMIT: Final = 20
GRAPH_SCOPE: Final = "https://graph.microsoft.com/.default"
_ERRORS: Final = {"XXX": ODataError}

# assignLicense answers every refusal with 400 Request_BadRequest: the message is the
# only thing that tells them apart (docs/graph-facts.md, "assignLicense errors").
_ASSIGN_REFUSALS: Final = (
    ("invalid usage location", GraphErrorKind.USAGE_LOCATION_INVALID),
    ("does not have any available licenses", GraphErrorKind.NO_SEATS),
    ("are mutually exclusive", GraphErrorKind.MUTUALLY_EXCLUSIVE),
    ("depends on the service plan(s)", GraphErrorKind.MISSING_PREREQUISITE),
    ("does not correspond to a valid company license", GraphErrorKind.UNKNOWN_SKU),
)
# Graph's 400 for a member already in the group: docs/graph-facts.md, "Group-based licensing".
_ALREADY_MEMBER: Final = "added object references already exist"
# Without a Retry-After, how long a 429 closes the throttling gate.
DEFAULT_THROTTLE_SECONDS: Final = 2.0


def odata_literal(value: str) -> str:
    """An OData string literal: quoted, with `'` doubled."""
    return "'" + value.replace("'", "''") + "'"


def _key_path(upn: str) -> str:
    """`/users('...')`: how Graph wants a UPN that starts with `$`."""
    return "/users(" + quote(odata_literal(upn), safe="'") + ")"


@dataclass(frozen=True)
class _Probe:
    """One lookup of one identifier: a key GET (`/users/{upn}`) or a `$filter` query."""

    field: str
    value: str
    key: bool = False

    def relative_url(self) -> str:
        select = "$select=" + ",".join(USER_FIELDS)
        if self.key:
            path = (
                _key_path(self.value)
                if self.value.startswith("$")
                else ("/users/" + quote(self.value, safe=""))
            )
            return f"{path}?{select}"
        expression = f"{self.field} eq {odata_literal(self.value)}"
        return f"/users?$filter={quote(expression, safe='')}&{select}"


def _probes(ids: UserIdentifiers) -> list[_Probe]:
    """UPN by key, then (because a key GET can lag behind the `$filter` index right after
    a user appears: docs/graph-facts.md, "Eventual consistency") by filter; then employeeId, then
    immutableId, by filter."""
    probes = []
    if ids.user_principal_name is not None:
        upn = ids.user_principal_name
        probes += [_Probe("userPrincipalName", upn, key=True), _Probe("userPrincipalName", upn)]
    if ids.employee_id is not None:
        probes.append(_Probe("employeeId", ids.employee_id))
    if ids.immutable_id is not None:
        probes.append(_Probe("onPremisesImmutableId", ids.immutable_id))
    return probes


class _FixedToken(AccessTokenProvider):  # type: ignore[misc]  # kiota is untyped here
    """The local emulator's development token, only ever sent to loopback hosts."""

    def __init__(self, host: str) -> None:
        self._hosts = AllowedHostsValidator([host])

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        return LOCAL_GRAPH_TOKEN

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._hosts


def build_adapter(
    base_url: str,
    *,
    local: bool,
    client_id: str | None = None,
    http: httpx.AsyncClient,
) -> GraphRequestAdapter:
    """A request adapter for `base_url`: managed identity (azure-identity) in Azure, the
    fixed development token for a loopback emulator."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    auth: AuthenticationProvider
    if local:
        auth = BaseBearerTokenAuthenticationProvider(_FixedToken(parts.hostname))
    else:
        from azure.identity import DefaultAzureCredential

        # The sync credential: azure-identity's async one would need aiohttp. Tokens are
        # cached by the credential, so the blocking call is rare.
        credential = DefaultAzureCredential(managed_identity_client_id=client_id)
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=[GRAPH_SCOPE], allowed_hosts=[parts.hostname]
        )
    # The SDK's own retries sleep as long as Retry-After says (up to 3 minutes): turned
    # off here; GraphDirectory retries briefly itself and leaves long waits to the queue.
    client = GraphClientFactory.create_with_default_middleware(
        client=http,
        options={RetryHandlerOption.get_key(): RetryHandlerOption(should_retry=False)},
    )
    adapter = GraphRequestAdapter(auth, client=client)
    adapter.base_url = base_url
    return adapter


def connect(
    base_url: str,
    *,
    local: bool,
    client_id: str | None = None,
    timeout: httpx.Timeout | None = None,
    **options: Any,
) -> GraphDirectory:
    """A GraphDirectory that owns its HTTP client (close it with `aclose`)."""
    # msgraph-core wraps the client's transport in one without `aclose` (1.5.2), so
    # closing the client would leak its connections: keep the real transport to close.
    transport = httpx.AsyncHTTPTransport()
    http = httpx.AsyncClient(
        transport=transport, timeout=timeout or httpx.Timeout(15.0, connect=5.0)
    )
    adapter = build_adapter(base_url, local=local, client_id=client_id, http=http)
    return GraphDirectory(adapter, closers=(http.aclose, transport.aclose), **options)


class ThrottleGate:
    """Graph throttles an app as a whole: a 429 answer means every call the app sends
    during the Retry-After wait is refused too (docs/graph-facts.md, "Throttling budget"). So
    after a 429, every call of this process waits, not only the one that got it.

    A 429 on a read closes the gate for reads and writes (the resource-unit budget covers
    both); a 429 on a write closes it for writes only (writes have a budget of their own,
    3,000 per 150 s), so lookups go on meanwhile.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._all_until = 0.0
        self._writes_until = 0.0
        self._cause: GraphError | None = None

    def close(self, error: GraphError, *, write: bool) -> None:
        seconds = error.retry_after if error.retry_after is not None else DEFAULT_THROTTLE_SECONDS
        until = self._clock() + seconds
        if write:
            self._writes_until = max(self._writes_until, until)
        else:
            self._all_until = max(self._all_until, until)
        self._cause = error

    def closed_for(self, *, write: bool) -> float:
        """Seconds until a call of this kind may be sent (0 when it may go now)."""
        until = max(self._all_until, self._writes_until) if write else self._all_until
        return max(0.0, until - self._clock())

    def refusal(self, call: GraphCall, seconds: float) -> GraphError:
        """What a call that is not sent reports: the 429 that closed the gate, re-dated."""
        cause = self._cause
        return GraphError(
            f"not sent: Graph asked this app to wait ({cause.graph_message if cause else '429'})",
            kind=GraphErrorKind.THROTTLED,
            call=call,
            status=cause.status if cause else 429,
            code=cause.code if cause else "TooManyRequests",
            request_id=cause.request_id if cause else None,
            retry_after=seconds,
        )


class GraphDirectory:
    """`shared.ports.Directory` on Microsoft Graph v1.0."""

    def __init__(
        self,
        adapter: GraphRequestAdapter,
        *,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
        retries: int = 2,
        max_inline_wait: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        gate: ThrottleGate | None = None,
    ) -> None:
        self._adapter = adapter
        self._closers = closers
        self._client = GraphServiceClient(request_adapter=adapter)
        self._retries = retries
        self._max_inline_wait = max_inline_wait
        self._sleep = sleep
        self.gate = gate or ThrottleGate()

    async def aclose(self) -> None:
        for close in self._closers:
            await close()

    # --- lookups -------------------------------------------------------------------------

    async def find_user(self, ids: UserIdentifiers) -> Lookup:
        for probe in _probes(ids):
            try:
                body = await self._send(
                    GraphCall.LOOKUP, functools.partial(self._probe_request, probe)
                )
            except GraphError as exc:
                if exc.status == 404 and probe.key:
                    continue
                return LookupFailed(exc)
            result = _lookup_result(probe, body)
            if not isinstance(result, NotFound):
                return result
        return NotFound()

    async def find_users(self, many: Sequence[UserIdentifiers]) -> list[Lookup]:
        """Look up through `$batch`, 20 per request; fall back to the next probe only for
        the users the previous one did not find."""
        plans = [_probes(ids) for ids in many]
        results: list[Lookup] = [NotFound() for _ in many]
        stage = [0] * len(many)
        todo = [i for i, plan in enumerate(plans) if plan]
        while todo:
            answers = await self._batch_lookup([plans[i][stage[i]] for i in todo])
            next_round = []
            for i, answer in zip(todo, answers, strict=True):
                results[i] = answer
                if isinstance(answer, NotFound) and stage[i] + 1 < len(plans[i]):
                    stage[i] += 1
                    next_round.append(i)
            todo = next_round
        return results

    async def _batch_lookup(self, probes: Sequence[_Probe]) -> list[Lookup]:
        out: list[Lookup] = []
        for start in range(0, len(probes), BATCH_LIMIT):
            chunk = probes[start : start + BATCH_LIMIT]
            body = {
                "requests": [
                    {"id": str(n), "method": "GET", "url": probe.relative_url()}
                    for n, probe in enumerate(chunk)
                ]
            }
            try:
                answer = await self._send(
                    GraphCall.LOOKUP, functools.partial(self._batch_request, body)
                )
                items = _batch_items(answer, len(chunk))
            except GraphError as exc:
                out.extend(LookupFailed(exc) for _ in chunk)
                continue
            for n, probe in enumerate(chunk):
                status, headers, item_body = items[str(n)]
                result = _batch_item_result(probe, status, headers, item_body)
                if isinstance(result, LookupFailed):
                    self._note_throttling(result.error)
                out.append(result)
        return out

    def _note_throttling(self, error: GraphError) -> None:
        """Each `$batch` item is throttled on its own: an item's 429 closes the gate too."""
        _record(error)
        if error.kind == GraphErrorKind.THROTTLED:
            self.gate.close(error, write=False)

    # --- SKUs and writes -----------------------------------------------------------------

    async def subscribed_skus(self) -> SkuCatalog:
        def request() -> RequestInformation:
            params = self._client.subscribed_skus.SubscribedSkusRequestBuilderGetQueryParameters(
                select=list(SKU_FIELDS)
            )
            return self._client.subscribed_skus.to_get_request_information(
                RequestConfiguration(query_parameters=params)
            )

        return _catalog(await self._send(GraphCall.SUBSCRIBED_SKUS, request))

    async def set_usage_location(self, user_id: str, usage_location: str) -> None:
        def request() -> RequestInformation:
            return self._client.users.by_user_id(user_id).to_patch_request_information(
                User(usage_location=usage_location)
            )

        await self._send(GraphCall.SET_USAGE_LOCATION, request, expect_body=False)

    async def assign_licenses(
        self,
        user_id: str,
        add: Sequence[LicenseAssignment],
        *,
        usage_location_written: bool = False,
    ) -> None:
        def request() -> RequestInformation:
            body = AssignLicensePostRequestBody(
                add_licenses=[
                    AssignedLicense(
                        sku_id=uuid.UUID(item.sku_id),
                        disabled_plans=[uuid.UUID(p) for p in item.disabled_plan_ids],
                    )
                    for item in add
                ],
                # Graph requires both arrays; the SDK omits an unset one.
                remove_licenses=[],
            )
            builder = self._client.users.by_user_id(user_id).assign_license
            return builder.to_post_request_information(body)

        # Right after the app wrote the usage location, "invalid usage location" is the
        # replica that has not seen the write yet (docs/graph-facts.md, "Eventual consistency").
        lag = (GraphErrorKind.USAGE_LOCATION_INVALID,) if usage_location_written else ()
        await self._send(GraphCall.ASSIGN_LICENSE, request, expect_body=False, also_retry=lag)

    # --- group-based licensing -----------------------------------------------------------

    async def add_group_member(self, group_id: str, user_id: str) -> None:
        reference = {"@odata.id": f"{self._adapter.base_url}/directoryObjects/{user_id}"}

        def request() -> RequestInformation:
            info = RequestInformation(Method.POST)
            info.url = f"{self._adapter.base_url}/groups/{quote(group_id, safe='')}/members/$ref"
            info.headers = HeadersCollection()
            info.set_stream_content(json.dumps(reference).encode(), "application/json")
            return info

        try:
            await self._send(GraphCall.ADD_GROUP_MEMBER, request, expect_body=False)
        except GraphError as exc:
            if exc.status == 400 and _ALREADY_MEMBER in exc.graph_message.lower():
                return  # already a member counts as done (docs/graph-facts.md)
            if (
                exc.kind == GraphErrorKind.NOT_FOUND
                and group_id.lower() in exc.graph_message.lower()
            ):
                raise GraphError(
                    f"licensing group {group_id} does not exist (LICENSE_GROUPS): "
                    f"{exc.graph_message}",
                    kind=GraphErrorKind.REJECTED,
                    call=exc.call,
                    status=exc.status,
                    code=exc.code,
                    request_id=exc.request_id,
                ) from exc
            raise

    async def reprocess_licenses(self, user_id: str) -> None:
        def request() -> RequestInformation:
            info = RequestInformation(Method.POST)
            info.url = (
                f"{self._adapter.base_url}/users/{quote(user_id, safe='')}"
                "/reprocessLicenseAssignment"
            )
            return info

        await self._send(GraphCall.REPROCESS_LICENSES, request, expect_body=False)

    # --- Entra Cloud Sync ---------------------------------------------------------------

    async def sync_rule_id(self, job: CloudSyncJob) -> str:
        def request() -> RequestInformation:
            info = RequestInformation(Method.GET)
            info.url = (
                f"{self._adapter.base_url}{_job_path(job)}/schema?$select=synchronizationRules"
            )
            return info

        body = await self._send(GraphCall.SYNC_SCHEMA, request)
        return _ad_to_entra_rule(body)

    async def provision_on_demand(
        self, job: CloudSyncJob, rule_id: str, distinguished_name: str
    ) -> ForcedSyncResult:
        # The DN travels only in this JSON body, never in a URL or a filter.
        payload = {
            "parameters": [
                {
                    "ruleId": rule_id,
                    "subjects": [{"objectId": distinguished_name, "objectTypeName": "user"}],
                }
            ]
        }

        def request() -> RequestInformation:
            info = RequestInformation(Method.POST)
            info.url = f"{self._adapter.base_url}{_job_path(job)}/provisionOnDemand"
            info.headers = HeadersCollection()
            info.set_stream_content(json.dumps(payload).encode(), "application/json")
            return info

        return _forced_sync_result(await self._send(GraphCall.PROVISION_ON_DEMAND, request))

    # --- plumbing ------------------------------------------------------------------------

    def _probe_request(self, probe: _Probe) -> RequestInformation:
        """The same URL as the probe's `$batch` item (one way to build it: `_Probe`)."""
        info = RequestInformation(Method.GET)
        info.url = self._adapter.base_url + probe.relative_url()
        return info

    def _batch_request(self, body: dict[str, Any]) -> RequestInformation:
        info = RequestInformation(Method.POST)
        info.url = self._adapter.base_url + "/$batch"
        info.headers = HeadersCollection()
        info.set_stream_content(json.dumps(body).encode(), "application/json")
        return info

    async def _send(
        self,
        call: GraphCall,
        build: Callable[[], RequestInformation],
        *,
        expect_body: bool = True,
        also_retry: Sequence[GraphErrorKind] = (),
    ) -> Any:
        """Send with a few short retries; raise GraphError when Graph says no or asks to
        wait longer than `max_inline_wait` (the pending queue does the long waiting).

        Retried inline: throttling and outages; for writes, a 404 (the user a lookup has
        just returned is not on the replica yet); and `also_retry`.

        Hand-written rather than a retry library (stamina, tenacity; msgraph's own retry
        handler is off): the wait depends on the process-wide throttling gate, which can
        refuse to send at all; a wait longer than `max_inline_wait` must end the attempt
        (not sleep), so the invocation stays short and the queue does the waiting; and
        which answers are retryable depends on the call. stamina could express each of
        these with hooks, but the loop would be no shorter and less plain.
        """
        retryable = {GraphErrorKind.THROTTLED, GraphErrorKind.UNAVAILABLE, *also_retry}
        if call.is_write:
            retryable.add(GraphErrorKind.NOT_FOUND)
        if not call.directory_budget:  # its own limits; the caller decides about retries
            retryable.clear()
        attempt = 0
        while True:
            closed = self.gate.closed_for(write=call.is_write) if call.directory_budget else 0
            if closed > self._max_inline_wait:
                raise self.gate.refusal(call, closed)
            if closed > 0:
                await self._sleep(closed)
            info = build()
            info.headers.try_add("Accept", "application/json")
            try:
                if not expect_body:
                    await self._adapter.send_no_response_content_async(info, _ERRORS)
                    return None
                raw = await self._adapter.send_primitive_async(info, "bytes", _ERRORS)
                return _json(raw, call)
            except (APIError, httpx.HTTPError) as exc:
                error = _translate(exc, call)
            if error.kind == GraphErrorKind.THROTTLED and call.directory_budget:
                self.gate.close(error, write=call.is_write)
            _record(error)
            if error.kind not in retryable or attempt >= self._retries:
                raise error
            wait = error.retry_after if error.retry_after is not None else 0.5 * 2**attempt
            if wait > self._max_inline_wait:
                raise error
            attempt += 1
            log.info("Graph %s; retrying in %.1fs (attempt %d)", error, wait, attempt)
            if error.kind != GraphErrorKind.THROTTLED:  # the gate already makes 429s wait
                await self._sleep(wait)


_TROUBLE: Final = (
    GraphErrorKind.THROTTLED,
    GraphErrorKind.UNAVAILABLE,
    GraphErrorKind.ACCESS_DENIED,
)


def _record(error: GraphError) -> None:
    """One `graph.trouble` record per throttled, failed or refused answer (the workbook's
    Graph panel and the metrics count them)."""
    if error.kind in _TROUBLE:
        emit(
            TelemetryEvent.GRAPH_TROUBLE,
            "Graph %s on %s: %s %s",
            error.kind,
            error.call,
            error.status or "no answer",
            error.code,
            level=logging.WARNING,
            call=error.call,
            status=error.status,
            kind=error.kind,
        )


# --- translation: the one place Graph's and httpx's errors become ours ---------------------


def _translate(exc: APIError | httpx.HTTPError, call: GraphCall) -> GraphError:
    if isinstance(exc, httpx.HTTPError):
        return GraphError(
            f"{type(exc).__name__}: {exc}",
            kind=GraphErrorKind.UNAVAILABLE,
            call=call,
            code="NetworkError",
        )
    status = exc.response_status_code or 0
    headers = {k.lower(): v for k, v in (exc.response_headers or {}).items()}
    code, message, request_id = "", str(exc), headers.get("request-id")
    if isinstance(exc, ODataError) and exc.error is not None:
        code = exc.error.code or ""
        message = exc.error.message or message
        inner = exc.error.inner_error
        request_id = (inner.request_id if inner is not None else None) or request_id
    return _classify(call, status, code, message, request_id, headers.get("retry-after"))


def _classify(
    call: GraphCall,
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    retry_after: str | None,
) -> GraphError:
    """What Graph's answer means. Whether to wait for it is the workflow's decision."""
    kind = GraphErrorKind.REJECTED
    if status == 429:
        kind = GraphErrorKind.THROTTLED
    elif status >= 500 or status in (0, 408):
        kind = GraphErrorKind.UNAVAILABLE
    elif status in (401, 403):
        kind = GraphErrorKind.ACCESS_DENIED
    elif status == 404:
        kind = GraphErrorKind.NOT_FOUND
    elif status == 400 and call == GraphCall.ASSIGN_LICENSE:
        lowered = message.lower()
        kind = next((k for part, k in _ASSIGN_REFUSALS if part in lowered), kind)
    return GraphError(
        message,
        kind=kind,
        call=call,
        status=status,
        code=code,
        request_id=request_id,
        retry_after=_seconds(retry_after),
    )


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _json(raw: bytes | None, call: GraphCall) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise _malformed("body that is not JSON", call) from None


def _malformed(what: str, call: GraphCall = GraphCall.LOOKUP) -> GraphError:
    return GraphError(
        f"Graph answered with a malformed {what}",
        kind=GraphErrorKind.UNAVAILABLE,
        call=call,
        code="MalformedResponse",
    )


def _user(body: Any) -> DirectoryUser:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise _malformed("user")
    licenses = body.get("assignedLicenses") or []
    sync = body.get("onPremisesSyncEnabled")
    if not isinstance(licenses, list) or sync not in (True, False, None):
        raise _malformed("user")
    states = body.get("licenseAssignmentStates") or []
    if not isinstance(states, list):
        raise _malformed("user")
    return DirectoryUser(
        id=body["id"],
        user_principal_name=str(body.get("userPrincipalName") or ""),
        sync_enabled=sync,
        usage_location=body.get("usageLocation") or None,
        assigned_sku_ids=frozenset(
            str(item.get("skuId", "")).lower() for item in licenses if isinstance(item, dict)
        ),
        license_states=tuple(
            LicenseState(
                sku_id=str(item.get("skuId", "")).lower(),
                assigned_by_group=(
                    str(item["assignedByGroup"]).lower() if item.get("assignedByGroup") else None
                ),
                state=str(item.get("state") or ""),
                error=str(item["error"]) if item.get("error") else None,
            )
            for item in states
            if isinstance(item, dict)
        ),
    )


def _lookup_result(probe: _Probe, body: Any) -> Lookup:
    try:
        if probe.key:
            return Found(_user(body))
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list):
            raise _malformed("user list")
        if not values:
            return NotFound()
        if len(values) > 1:
            return Ambiguous(probe.field, len(values))
        return Found(_user(values[0]))
    except GraphError as exc:
        return LookupFailed(exc)


def _batch_items(answer: Any, expected: int) -> dict[str, tuple[int, dict[str, str], Any]]:
    """Items by id: Graph does not promise the order of `responses`."""
    responses = answer.get("responses") if isinstance(answer, dict) else None
    if not isinstance(responses, list):
        raise _malformed("$batch response")
    items: dict[str, tuple[int, dict[str, str], Any]] = {}
    for item in responses:
        if isinstance(item, dict) and isinstance(item.get("status"), int):
            headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
            items[str(item.get("id"))] = (item["status"], headers, item.get("body"))
    if len(items) != expected or any(str(n) not in items for n in range(expected)):
        raise _malformed("$batch response")
    return items


def _batch_item_result(probe: _Probe, status: int, headers: dict[str, str], body: Any) -> Lookup:
    if 200 <= status < 300:
        return _lookup_result(probe, body)
    if status == 404 and probe.key:
        return NotFound()
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    inner = error.get("innerError")
    inner = inner if isinstance(inner, dict) else {}
    classified = _classify(
        GraphCall.LOOKUP,
        status,
        str(error.get("code", "")),
        str(error.get("message", f"batch item answered {status}")),
        inner.get("request-id") or headers.get("request-id"),
        headers.get("retry-after"),
    )
    return LookupFailed(classified)


def _catalog(body: Any) -> SkuCatalog:
    values = body.get("value") if isinstance(body, dict) else None
    if not isinstance(values, list):
        raise _malformed("subscribedSkus list", GraphCall.SUBSCRIBED_SKUS)
    skus = []
    for item in values:
        try:
            prepaid = item.get("prepaidUnits") or {}
            skus.append(
                Sku(
                    id=str(item["skuId"]).lower(),
                    part_number=str(item["skuPartNumber"]),
                    applies_to=str(item.get("appliesTo") or ""),
                    capability_status=str(item.get("capabilityStatus") or ""),
                    enabled_units=int(prepaid.get("enabled") or 0),
                    consumed_units=int(item.get("consumedUnits") or 0),
                    service_plans=tuple(
                        ServicePlan(str(p["servicePlanId"]).lower(), str(p["servicePlanName"]))
                        for p in item.get("servicePlans") or []
                    ),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise _malformed("subscribedSkus entry", GraphCall.SUBSCRIBED_SKUS) from None
    return SkuCatalog(tuple(skus))


def _job_path(job: CloudSyncJob) -> str:
    return (
        f"/servicePrincipals/{quote(job.service_principal_id, safe='')}"
        f"/synchronization/jobs/{quote(job.job_id, safe='')}"
    )


def _ad_to_entra_rule(body: Any) -> str:
    """The job's rule from Active Directory to Entra ID (a Cloud Sync job has one)."""
    rules = body.get("synchronizationRules") if isinstance(body, dict) else None
    if not isinstance(rules, list):
        raise _malformed("synchronization schema", GraphCall.SYNC_SCHEMA)
    usable = [r for r in rules if isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"]]
    for rule in usable:
        source = str(rule.get("sourceDirectoryName") or "").lower()
        target = str(rule.get("targetDirectoryName") or "").lower()
        if source == "active directory" and target != source:
            return str(rule["id"])
    if usable:
        return str(usable[0]["id"])
    raise GraphError(
        "the synchronization job's schema has no rule",
        kind=GraphErrorKind.REJECTED,
        call=GraphCall.SYNC_SCHEMA,
        code="NoSynchronizationRule",
    )


def _forced_sync_result(body: Any) -> ForcedSyncResult:
    """provisionOnDemand's reply: `key` and `value` are JSON documents held in strings;
    `key.result` is Success, Failure or Skipped, with `details.errorCode/errorMessage`."""
    try:
        key = json.loads(body["key"])
        result = str(key.get("result") or "")
        details = key.get("details") or {}
    except (KeyError, TypeError, ValueError, AttributeError):
        return ForcedSyncResult(ForcedSyncStatus.FAILED, "Graph's reply could not be read")
    if result.lower() == "success":
        return ForcedSyncResult(ForcedSyncStatus.REQUESTED, "Cloud Sync provisioned the user")
    code = str(details.get("errorCode") or "") if isinstance(details, dict) else ""
    why = str(details.get("errorMessage") or "") if isinstance(details, dict) else ""
    message = f"Cloud Sync answered {result or 'no result'}" + (
        f" ({code}: {why})" if code or why else ""
    )
    return ForcedSyncResult(ForcedSyncStatus.FAILED, message[:500])
