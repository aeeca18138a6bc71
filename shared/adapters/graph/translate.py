"""The one place Graph's and httpx's errors become the app's `GraphError`: what Graph
meant (`kind`) and which call it refused. Whether to wait for it is a decision
(`shared.decisions.after_graph_error`), not this module's."""

from __future__ import annotations

import json
import logging
from typing import Any, Final

import httpx
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.telemetry import TelemetryEvent, emit

# assignLicense answers every refusal with 400 Request_BadRequest: the message is the
# only thing that tells them apart (docs/graph-facts.md, "assignLicense errors").
_ASSIGN_REFUSALS: Final = (
    ("invalid usage location", GraphErrorKind.USAGE_LOCATION_INVALID),
    ("does not have any available licenses", GraphErrorKind.NO_SEATS),
    ("are mutually exclusive", GraphErrorKind.MUTUALLY_EXCLUSIVE),
    ("depends on the service plan(s)", GraphErrorKind.MISSING_PREREQUISITE),
    ("does not correspond to a valid company license", GraphErrorKind.UNKNOWN_SKU),
)
_TROUBLE: Final = (
    GraphErrorKind.THROTTLED,
    GraphErrorKind.UNAVAILABLE,
    GraphErrorKind.ACCESS_DENIED,
)


def translate(exc: APIError | httpx.HTTPError, call: GraphCall) -> GraphError:
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
    return classify(call, status, code, message, request_id, headers.get("retry-after"))


def classify(
    call: GraphCall,
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    retry_after: str | None,
) -> GraphError:
    """What Graph's answer means, from its status, code and (assignLicense) message."""
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


def parse_json(raw: bytes | None, call: GraphCall) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise malformed("body that is not JSON", call) from None


def malformed(what: str, call: GraphCall = GraphCall.LOOKUP) -> GraphError:
    return GraphError(
        f"Graph answered with a malformed {what}",
        kind=GraphErrorKind.UNAVAILABLE,
        call=call,
        code="MalformedResponse",
    )


def record(error: GraphError) -> None:
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
