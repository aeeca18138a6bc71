"""Every answer of the HTTP front door, as status, headers and JSON body, in one place
(contract v1.2, "HTTP front door"; their JSON Schemas are in `schemas/http/`).

    202 {"requestId", "state"} + Location   accepted (or the same request again)
    200 {"requestId", "state", "events", "nextCheckAt"?, "deadline"?, "reason"?}
    400 {"errors": [{"field", "problem"}], "errorsOmitted"?}   the same as a `rejected` event
    401 / 403 / 404 / 409 / 413 / 503 {"code", "message"}      (401 and 403 with
        WWW-Authenticate, RFC 6750; 503 storage_unavailable with Retry-After)

Every answer is `application/json` and `Cache-Control: no-store` (a status changes, and
no proxy should keep one caller's answer for another). The triggers turn an `HttpAnswer`
into the Functions worker's `HttpResponse`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote

from shared.domain.access import AccessTokenError
from shared.domain.codes import EventType, RequestStatus
from shared.domain.errors import InvalidRequest
from shared.domain.events import MAX_ERRORS, carryable, event_id
from shared.domain.records import RequestRecord
from shared.domain.times import format_time

ROUTE: Final = "/api/onboarding-requests"
STORAGE_RETRY_AFTER_SECONDS: Final = 10


class AnswerCode(StrEnum):
    """`code` of the front door's own refusals (a token's are `shared.domain.access`'s)."""

    FRONT_DOOR_OFF = "front_door_off"  # API_AUDIENCE is not set: no caller can be checked
    TOO_LARGE = "too_large"
    REQUEST_ID_IN_USE = "request_id_in_use"
    NOT_FOUND = "not_found"
    STORAGE_UNAVAILABLE = "storage_unavailable"


@dataclass(frozen=True)
class HttpAnswer:
    """One answer: status, extra headers, JSON body."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    code: str = ""  # what the http.call record names (the refusal's code, or the state)

    def content(self) -> bytes:
        """The body as ASCII JSON, an echoed lone surrogate (which no UTF-8 text holds)
        written out as the six characters of its escape: as a `rejected` event has it."""
        return json.dumps(carryable(self.body)).encode("ascii")

    def all_headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json; charset=utf-8",
            "Cache-Control": "no-store",
            **self.headers,
        }


def location(request_id: str) -> str:
    """`/api/onboarding-requests/{requestId}`, the id percent-encoded as one path segment
    (`/` and `:` are allowed in a requestId)."""
    return f"{ROUTE}/{quote(request_id, safe='')}"


def public_state(record: RequestRecord) -> str:
    """The contract's word for where a request stands. `received` (a message has it and
    nothing is checked yet) is `queued` to a caller."""
    status = record.status
    return str(RequestStatus.QUEUED if status == RequestStatus.RECEIVED else status)


def accepted(record: RequestRecord | None, request_id: str) -> HttpAnswer:
    """202: queued now (no record before), or the same request again (its state now)."""
    state = public_state(record) if record is not None else str(RequestStatus.QUEUED)
    return HttpAnswer(
        202,
        {"requestId": request_id, "state": state},
        {"Location": location(request_id)},
        code=state,
    )


def invalid(problem: InvalidRequest) -> HttpAnswer:
    """400 with the field errors a `rejected` event would carry, cut the same way."""
    body: dict[str, Any] = {"errors": [e.to_json() for e in problem.errors[:MAX_ERRORS]]}
    if len(problem.errors) > MAX_ERRORS:
        body["errorsOmitted"] = len(problem.errors) - MAX_ERRORS
    return HttpAnswer(400, body, code="invalid_message")


def refused(error: AccessTokenError) -> HttpAnswer:
    """401, 403 (or 503 when the tenant's keys cannot be fetched): the refusal only."""
    challenge = error.www_authenticate()
    headers = {"WWW-Authenticate": challenge} if challenge else {}
    return HttpAnswer(error.status, error.to_json(), headers, code=str(error.reason))


def problem(code: AnswerCode, message: str) -> HttpAnswer:
    """One of the front door's own refusals."""
    status = {
        AnswerCode.FRONT_DOOR_OFF: 503,
        AnswerCode.TOO_LARGE: 413,
        AnswerCode.REQUEST_ID_IN_USE: 409,
        AnswerCode.NOT_FOUND: 404,
        AnswerCode.STORAGE_UNAVAILABLE: 503,
    }[code]
    headers = {}
    if code is AnswerCode.STORAGE_UNAVAILABLE:
        headers["Retry-After"] = str(STORAGE_RETRY_AFTER_SECONDS)
    return HttpAnswer(status, {"code": str(code), "message": message}, headers, code=str(code))


def status(record: RequestRecord) -> HttpAnswer:
    """200: where the request stands, from the ledger."""
    return HttpAnswer(200, status_body(record), code=public_state(record))


def status_body(record: RequestRecord) -> dict[str, Any]:
    """The contract's status: state, the events so far (`Sent_*` and the terminal row),
    and while the request is open its next check (when parked), deadline and the reason
    it is blocked; once decided, the outcome's reason (failed, rejected). No identifier of
    the person: what the contract lists, nothing more."""
    body: dict[str, Any] = {
        "requestId": record.request_id,
        "state": public_state(record),
        "events": _events(record),
    }
    progress = record.progress
    if record.decided is None:
        if progress.parked and progress.next_check_at is not None:
            body["nextCheckAt"] = format_time(progress.next_check_at)
        if progress.deadline is not None:
            body["deadline"] = format_time(progress.deadline)
        if progress.reason:
            body["reason"] = _reason(progress.reason)
    else:
        reason = record.decided.event.data.get("reason")
        if isinstance(reason, Mapping):
            body["reason"] = _reason(reason)
    return body


def _events(record: RequestRecord) -> list[dict[str, str]]:
    by_word = {kind.word: kind for kind in EventType}
    sent = [
        (moment, by_word[word])
        for word, moment in record.progress.sent.items()
        if word in by_word and not by_word[word].terminal
    ]
    if record.decided is not None:
        sent.append((record.decided.event.time, record.decided.event.type))
    return [
        {"id": event_id(record.request_id, kind), "type": str(kind), "time": format_time(moment)}
        for moment, kind in sorted(sent, key=lambda item: (item[0], item[1].terminal))
    ]


def _reason(reason: Mapping[str, Any]) -> dict[str, str]:
    return {"code": str(reason.get("code", "")), "message": str(reason.get("message", ""))}
