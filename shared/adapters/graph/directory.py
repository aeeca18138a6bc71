"""`shared.service.ports.Directory` on Microsoft Graph v1.0: lookups (single, and `$batch`
20 at a time), the SKU catalog, writes through msgraph-sdk's request builders and models,
group-based licensing and Entra Cloud Sync."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final
from urllib.parse import quote

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphServiceClient
from msgraph.generated.models.assigned_license import AssignedLicense
from msgraph.generated.models.user import User
from msgraph.generated.users.item.assign_license.assign_license_post_request_body import (
    AssignLicensePostRequestBody,
)
from msgraph.graph_request_adapter import GraphRequestAdapter

from shared.adapters.graph import reading
from shared.adapters.graph.client import build_adapter
from shared.adapters.graph.probes import Probe, probes_for
from shared.adapters.graph.sender import GraphSender
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.domain.requests import UserIdentifiers
from shared.domain.tenant import (
    CloudSyncJob,
    ForcedSyncResult,
    LicenseAssignment,
    Lookup,
    LookupFailed,
    NotFound,
    SkuCatalog,
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
# Graph's 400 for a member already in the group (docs/graph-facts.md, "Group-based licensing").
_ALREADY_MEMBER: Final = "added object references already exist"


class GraphDirectory:
    """The Directory port; `options` tune the sender (retries, max_inline_wait, sleep,
    gate)."""

    def __init__(
        self,
        adapter: GraphRequestAdapter,
        *,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
        **options: Any,
    ) -> None:
        self.adapter = adapter  # shared with the Teams port (`GraphTeams`)
        self._send = GraphSender(adapter, **options)
        self._closers = closers
        self._client = GraphServiceClient(request_adapter=adapter)
        self.gate = self._send.gate

    async def aclose(self) -> None:
        for close in self._closers:
            await close()

    async def find_user(self, ids: UserIdentifiers) -> Lookup:
        for probe in probes_for(ids):
            try:
                body = await self._send.send(GraphCall.LOOKUP, self._send.get(probe.relative_url()))
            except GraphError as exc:
                if exc.status == 404 and probe.key:
                    continue
                return LookupFailed(exc)
            result = reading.lookup_result(probe, body)
            if not isinstance(result, NotFound):
                return result
        return NotFound()

    async def find_users(self, many: Sequence[UserIdentifiers]) -> list[Lookup]:
        """Look up through `$batch`, 20 per request; fall back to the next probe only for
        the users the previous one did not find."""
        plans = [probes_for(ids) for ids in many]
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

    async def _batch_lookup(self, probes: Sequence[Probe]) -> list[Lookup]:
        """The `$batch` requests of up to 20 lookups each, sent together (a sweep's chunk
        is read in one round trip, not five, so its writes keep Graph's rate)."""
        starts = range(0, len(probes), BATCH_LIMIT)
        chunks = [probes[start : start + BATCH_LIMIT] for start in starts]
        answers = await asyncio.gather(*(self._one_batch(chunk) for chunk in chunks))
        return [lookup for answer in answers for lookup in answer]

    async def _one_batch(self, chunk: Sequence[Probe]) -> list[Lookup]:
        body = {
            "requests": [
                {"id": str(n), "method": "GET", "url": probe.relative_url()}
                for n, probe in enumerate(chunk)
            ]
        }
        try:
            answer = await self._send.send(GraphCall.LOOKUP, self._send.post("/$batch", body))
            items = reading.batch_items(answer, len(chunk))
        except GraphError as exc:
            return [LookupFailed(exc) for _ in chunk]
        out: list[Lookup] = []
        for n, probe in enumerate(chunk):
            result = reading.batch_item_result(probe, items[str(n)])
            if isinstance(result, LookupFailed):
                self._send.note_throttling(result.error)
            out.append(result)
        return out

    async def subscribed_skus(self) -> SkuCatalog:
        def request() -> RequestInformation:
            params = self._client.subscribed_skus.SubscribedSkusRequestBuilderGetQueryParameters(
                select=list(SKU_FIELDS)
            )
            return self._client.subscribed_skus.to_get_request_information(
                RequestConfiguration(query_parameters=params)
            )

        return reading.catalog_of(await self._send.send(GraphCall.SUBSCRIBED_SKUS, request))

    async def set_usage_location(self, user_id: str, usage_location: str) -> None:
        def request() -> RequestInformation:
            return self._client.users.by_user_id(user_id).to_patch_request_information(
                User(usage_location=usage_location)
            )

        await self._send.send(GraphCall.SET_USAGE_LOCATION, request, expect_body=False)

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
        await self._send.send(GraphCall.ASSIGN_LICENSE, request, expect_body=False, also_retry=lag)

    async def add_group_member(self, group_id: str, user_id: str) -> None:
        reference = {"@odata.id": self._send.url(f"/directoryObjects/{user_id}")}
        path = f"/groups/{quote(group_id, safe='')}/members/$ref"
        try:
            build = self._send.post(path, reference)
            await self._send.send(GraphCall.ADD_GROUP_MEMBER, build, expect_body=False)
        except GraphError as exc:
            if exc.status == 400 and _ALREADY_MEMBER in exc.graph_message.lower():
                return  # docs/graph-facts.md: "already a member" counts as done
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
        build = self._send.post(f"/users/{quote(user_id, safe='')}/reprocessLicenseAssignment")
        await self._send.send(GraphCall.REPROCESS_LICENSES, build, expect_body=False)

    async def sync_rule_id(self, job: CloudSyncJob) -> str:
        build = self._send.get(f"{_job_path(job)}/schema?$select=synchronizationRules")
        return reading.ad_to_entra_rule(await self._send.send(GraphCall.SYNC_SCHEMA, build))

    async def provision_on_demand(
        self, job: CloudSyncJob, rule_id: str, distinguished_name: str
    ) -> ForcedSyncResult:
        # The DN travels only in this JSON body, never in a URL or a filter.
        subject = {"objectId": distinguished_name, "objectTypeName": "user"}
        payload = {"parameters": [{"ruleId": rule_id, "subjects": [subject]}]}
        build = self._send.post(f"{_job_path(job)}/provisionOnDemand", payload)
        return reading.forced_sync_result(
            await self._send.send(GraphCall.PROVISION_ON_DEMAND, build)
        )


def _job_path(job: CloudSyncJob) -> str:
    return (
        f"/servicePrincipals/{quote(job.service_principal_id, safe='')}"
        f"/synchronization/jobs/{quote(job.job_id, safe='')}"
    )


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
