"""`shared.service.ports.TeamsPhone` on Microsoft Graph v1.0 (contract v1.2, "Teams Phone";
routes, shapes and sources in docs/teams-phone.md):

- readiness: `GET /admin/teams/userConfigurations/{userId}` (`$select`, and `Prefer:
  include-unknown-enum-members` so that `ineligibleUser` shows as itself), one user by a
  plain GET, several through `$batch`, 20 per request;
- the number: `GET .../telephoneNumberManagement/numberAssignments?$filter=telephoneNumber
  eq '+...'` (the number reaches the filter only as an OData literal, and only after the
  request's validation: '+' and digits);
- the order: msgraph-sdk's `assignNumber` request builder and model, with kiota's
  `HeadersInspectionHandlerOption` to read the `Location` of the 202 (the SDK's
  `send_no_response_content_async` drops it); the operation id is taken from it and read
  back at `.../operations/{id}` on the app's own Graph base URL, never at a URL Graph hands
  out;
- the order's operation: its `status` and its number's `statusDetail`.

Every call goes through a `GraphSender` of its own, so its throttling gate is Teams' (30
GETs and 30 other calls per second per app: a 429 there pauses the Teams calls of the
process, not the directory's), and errors are translated in one place like every other
Graph call (`translate`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import quote, unquote

from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.microsoft_graph_teams_administration_assign_number.assign_number_post_request_body import (  # noqa: E501
    AssignNumberPostRequestBody,
)
from msgraph.generated.models.teams_administration.number_type import NumberType as SdkNumberType
from msgraph.graph_request_adapter import GraphRequestAdapter

from shared.adapters.graph import reading
from shared.adapters.graph.probes import odata_literal
from shared.adapters.graph.sender import GraphSender
from shared.adapters.graph.translate import classify, malformed
from shared.domain.errors import GraphCall, GraphError
from shared.domain.phone import TeamsRequest
from shared.domain.teams import INCLUDE_UNKNOWN_ENUM_MEMBERS, OperationStatus
from shared.domain.teams_tenant import (
    NumberAssignment,
    NumberOperation,
    TeamsReading,
    TeamsUnknown,
    TeamsUnread,
    TeamsUser,
)

BATCH_LIMIT: Final = 20
CONFIGURATIONS: Final = "/admin/teams/userConfigurations"
NUMBERS: Final = "/admin/teams/telephoneNumberManagement"
CONFIGURATION_FIELDS: Final = ("accountType", "featureTypes", "telephoneNumbers")
# The Location of assignNumber's 202: `.../operations('{id}')` (the docs' example), or
# `.../operations/{id}`.
_OPERATION_ID: Final = re.compile(r"/operations(?:\('([^']+)'\)|/([^/?#]+))")


class GraphTeams:
    """The TeamsPhone port; `options` tune its sender (retries, max_inline_wait, sleep,
    gate: by default a gate of its own, Teams' budget being its own)."""

    def __init__(self, adapter: GraphRequestAdapter, **options: Any) -> None:
        self._send = GraphSender(adapter, **options)
        self._client = GraphServiceClient(request_adapter=adapter)
        self.gate = self._send.gate

    async def configurations(self, user_ids: Sequence[str]) -> list[TeamsReading]:
        if len(user_ids) == 1:
            return [await self._configuration(user_ids[0])]
        out: list[TeamsReading] = []
        for start in range(0, len(user_ids), BATCH_LIMIT):
            out += await self._batch(user_ids[start : start + BATCH_LIMIT])
        return out

    async def _configuration(self, user_id: str) -> TeamsReading:
        path = _configuration_path(user_id)

        def build() -> RequestInformation:
            info = RequestInformation(Method.GET)
            info.url = self._send.url(path)
            info.headers.try_add("Prefer", INCLUDE_UNKNOWN_ENUM_MEMBERS)
            return info

        try:
            body = await self._send.send(GraphCall.TEAMS_CONFIGURATION, build)
        except GraphError as exc:
            return TeamsUnknown() if exc.status == 404 else TeamsUnread(exc)
        return _configuration_of(body)

    async def _batch(self, user_ids: Sequence[str]) -> list[TeamsReading]:
        body = {
            "requests": [
                {
                    "id": str(n),
                    "method": "GET",
                    "url": _configuration_path(user_id),
                    "headers": {"Prefer": INCLUDE_UNKNOWN_ENUM_MEMBERS},
                }
                for n, user_id in enumerate(user_ids)
            ]
        }
        call = GraphCall.TEAMS_CONFIGURATION
        try:
            answer = await self._send.send(call, self._send.post("/$batch", body))
            items = reading.batch_items(answer, len(user_ids))
        except GraphError as exc:
            return [TeamsUnread(exc) for _ in user_ids]
        out: list[TeamsReading] = []
        for n in range(len(user_ids)):
            result = _batch_item(items[str(n)])
            if isinstance(result, TeamsUnread):
                self._send.note_throttling(result.error)
            out.append(result)
        return out

    async def number(self, phone_number: str) -> NumberAssignment | None:
        expression = quote(f"telephoneNumber eq {odata_literal(phone_number)}", safe="")
        build = self._send.get(f"{NUMBERS}/numberAssignments?$filter={expression}")
        body = await self._send.send(GraphCall.NUMBER_ASSIGNMENTS, build)
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list):
            raise malformed("numberAssignments list", GraphCall.NUMBER_ASSIGNMENTS)
        found = [_number_of(v) for v in values if isinstance(v, dict)]
        return next((n for n in found if n.telephone_number == phone_number), None)

    async def assign_number(self, user_id: str, teams: TeamsRequest) -> str | None:
        inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
        builder = (
            self._client.admin.teams.telephone_number_management.number_assignments
        ).microsoft_graph_teams_administration_assign_number

        def build() -> RequestInformation:
            body = AssignNumberPostRequestBody(
                telephone_number=teams.phone_number,
                assignment_target_id=user_id,
                number_type=SdkNumberType(str(teams.number_type)),
                location_id=teams.location_id,
            )
            info = builder.to_post_request_information(body)
            info.add_request_options([inspect])
            return info

        await self._send.send(GraphCall.ASSIGN_NUMBER, build, expect_body=False)
        locations = inspect.response_headers.get("location") or set()
        for location in locations:
            match = _OPERATION_ID.search(unquote(location))
            if match:
                return match.group(1) or match.group(2)
        return None

    async def operation(self, operation_id: str) -> NumberOperation:
        build = self._send.get(f"{NUMBERS}/operations/{quote(operation_id, safe='')}")
        return _operation_of(await self._send.send(GraphCall.NUMBER_OPERATION, build))


def _configuration_path(user_id: str) -> str:
    select = ",".join(CONFIGURATION_FIELDS)
    return f"{CONFIGURATIONS}/{quote(user_id, safe='')}?$select={select}"


def _configuration_of(body: Any) -> TeamsReading:
    if not isinstance(body, dict) or not isinstance(body.get("accountType"), str):
        return TeamsUnread(malformed("teamsUserConfiguration", GraphCall.TEAMS_CONFIGURATION))
    features = body.get("featureTypes") or []
    numbers = body.get("telephoneNumbers") or []
    if not isinstance(features, list) or not isinstance(numbers, list):
        return TeamsUnread(malformed("teamsUserConfiguration", GraphCall.TEAMS_CONFIGURATION))
    return TeamsUser(
        account_type=body["accountType"],
        feature_types=frozenset(str(f) for f in features),
        telephone_numbers=tuple(
            str(n["telephoneNumber"])
            for n in numbers
            if isinstance(n, dict) and n.get("telephoneNumber")
        ),
    )


def _batch_item(item: reading.BatchItem) -> TeamsReading:
    status, headers, body = item
    if 200 <= status < 300:
        return _configuration_of(body)
    if status == 404:
        return TeamsUnknown()
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    inner = error.get("innerError")
    inner = inner if isinstance(inner, dict) else {}
    return TeamsUnread(
        classify(
            GraphCall.TEAMS_CONFIGURATION,
            status,
            str(error.get("code", "")),
            str(error.get("message", f"batch item answered {status}")),
            inner.get("request-id") or headers.get("request-id"),
            headers.get("retry-after"),
        )
    )


def _number_of(value: dict[str, Any]) -> NumberAssignment:
    target = value.get("assignmentTargetId")
    return NumberAssignment(
        telephone_number=str(value.get("telephoneNumber") or ""),
        number_type=str(value.get("numberType") or ""),
        assignment_target_id=str(target) if target else None,
        assignment_status=str(value.get("assignmentStatus") or ""),
        activation_state=str(value.get("activationState") or ""),
    )


def _operation_of(body: Any) -> NumberOperation:
    # The get page's example wraps the entity in {"value": ...}; OData's shape does not.
    if isinstance(body, dict) and "status" not in body and isinstance(body.get("value"), dict):
        body = body["value"]
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        raise malformed("telephoneNumberLongRunningOperation", GraphCall.NUMBER_OPERATION)
    try:
        status = OperationStatus(body["status"])
    except ValueError:  # an evolvable enum's member added since: not an end the app knows
        status = OperationStatus.UNKNOWN_FUTURE_VALUE
    numbers = body.get("numbers")
    first = numbers[0] if isinstance(numbers, list) and numbers else {}
    detail = first.get("statusDetail") if isinstance(first, dict) else None
    return NumberOperation(status, str(detail) if detail else None)
