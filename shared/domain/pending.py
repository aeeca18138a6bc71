"""The pending queue message's format: a `PendingState` as versioned JSON (internal to
the app, but it outlives a deployment: a new version must read what the old one parked).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from shared.domain.codes import ForcedSyncStatus, LastSeen, LicenseStatus, TeamsSeen
from shared.domain.errors import GraphCall, GraphErrorKind, InvalidRequest
from shared.domain.events import LicenseOutcome
from shared.domain.requests import validate_request
from shared.domain.state import LastError, NumberOrder, PendingState, TeamsProgress
from shared.domain.times import format_time, parse_time

STATE_VERSION: Final = 1


def to_message(state: PendingState) -> str:
    document: dict[str, Any] = {
        "v": STATE_VERSION,
        "request": state.request.to_json(),
        "receivedAt": format_time(state.received_at),
        "checks": state.checks,
        "receipts": state.receipts,
        "lastSeen": state.last_seen,
        "seenSynced": state.seen_synced,
        "firstCheckDone": state.first_check_done,
        "usageLocationWritten": state.usage_location_written,
        "awaitingSyncSent": state.awaiting_sync_sent,
        "blockedSent": state.blocked_sent,
        "lastError": _error_to_json(state.last_error) if state.last_error else None,
        "notBefore": format_time(state.not_before) if state.not_before else None,
        "scheduledSent": state.scheduled_sent,
        "groupsJoined": sorted(state.groups_joined),
        "forcedSync": (
            {"status": str(state.forced_sync), "message": state.forced_sync_message or ""}
            if state.forced_sync is not None
            else None
        ),
        "teams": _teams_to_json(state.teams) if state.teams else None,
        "provisioningSent": state.provisioning_sent,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def from_message(text: str) -> PendingState:
    """Read a pending message back; ValueError when it is not one of ours."""
    try:
        document = json.loads(text)
        if document.get("v") != STATE_VERSION:
            raise ValueError(f"unknown pending state version {document.get('v')!r}")
        request = validate_request(document["request"])
        if request.licenses is None or request.sync_deadline is None:
            raise ValueError("pending state without resolved licenses or deadline")
        last_error = document.get("lastError")
        forced = document.get("forcedSync")
        return PendingState(
            request=request,
            received_at=parse_time(document["receivedAt"]),
            checks=int(document["checks"]),
            receipts=int(document.get("receipts", 0)),
            last_seen=LastSeen(document["lastSeen"]) if document.get("lastSeen") else None,
            seen_synced=bool(document.get("seenSynced")),
            # Parked before v1.2: a request checked at least once had its first check.
            first_check_done=bool(document.get("firstCheckDone", int(document["checks"]) > 0)),
            usage_location_written=bool(document.get("usageLocationWritten")),
            awaiting_sync_sent=bool(document.get("awaitingSyncSent")),
            blocked_sent=bool(document.get("blockedSent")),
            last_error=_error_from_json(last_error) if last_error else None,
            not_before=parse_time(document["notBefore"]) if document.get("notBefore") else None,
            scheduled_sent=bool(document.get("scheduledSent")),
            groups_joined=frozenset(str(s) for s in document.get("groupsJoined") or ()),
            forced_sync=ForcedSyncStatus(forced["status"]) if forced else None,
            forced_sync_message=str(forced.get("message", "")) if forced else None,
            # Parked before v1.2 (or before the licenses were on): no Teams step yet.
            teams=_teams_from_json(document["teams"]) if document.get("teams") else None,
            provisioning_sent=bool(document.get("provisioningSent")),
        )
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a pending state: {exc}") from None
    except InvalidRequest as exc:
        raise ValueError(f"pending state holds an invalid request: {exc}") from None


def _error_to_json(error: LastError) -> dict[str, Any]:
    return {**error.to_json(), "kind": str(error.kind)}


def _error_from_json(document: Mapping[str, Any]) -> LastError:
    return LastError(
        kind=GraphErrorKind(document["kind"]),
        call=GraphCall(document["call"]),
        status=int(document["status"]),
        code=str(document["code"]),
        message=str(document["message"]),
        request_id=document.get("requestId"),
    )


def _teams_to_json(teams: TeamsProgress) -> dict[str, Any]:
    order = teams.order
    return {
        "startedAt": format_time(teams.started_at),
        "deadline": format_time(teams.deadline),
        "userId": teams.user_id,
        "userPrincipalName": teams.user_principal_name,
        "usageLocation": teams.usage_location,
        "licenses": [lic.to_json() for lic in teams.licenses],
        "checks": teams.checks,
        "lastSeen": teams.last_seen,
        "order": (
            {"intendedAt": format_time(order.intended_at), "operationId": order.operation_id}
            if order is not None
            else None
        ),
    }


def _teams_from_json(document: Mapping[str, Any]) -> TeamsProgress:
    order = document.get("order")
    return TeamsProgress(
        started_at=parse_time(document["startedAt"]),
        deadline=parse_time(document["deadline"]),
        user_id=str(document["userId"]),
        user_principal_name=str(document["userPrincipalName"]),
        usage_location=str(document.get("usageLocation") or ""),
        licenses=tuple(
            LicenseOutcome(
                str(lic["skuPartNumber"]), str(lic["skuId"]), LicenseStatus(lic["status"])
            )
            for lic in document["licenses"]
        ),
        checks=int(document.get("checks", 0)),
        last_seen=TeamsSeen(document["lastSeen"]) if document.get("lastSeen") else None,
        order=(
            NumberOrder(parse_time(order["intendedAt"]), order.get("operationId") or None)
            if order
            else None
        ),
    )
