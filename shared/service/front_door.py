"""The HTTP front door (contract v1.2, "HTTP front door"; architecture guarantee 10): post a
request, read its status. Each call is authenticated and authorised by app role before
anything of it is read, and a refused caller gets its refusal only, never a hint whether
a requestId exists.

POST, in order (the same rules as the queue, answered at once instead of by an event):

1. the token, and the role `Onboarding.Submit` (401/403);
2. the size, before anything is parsed (413 over 32 KiB, the queue's limit);
3. `parse_request` and the admission rules that need only the settings and the clock
   (`decisions.admit`): 400 with the field errors a `rejected` event would carry; nothing
   is recorded, queued or published;
4. the ledger, in one insert-if-absent: the request `queued`, with its fingerprint and
   the caller's application id. A requestId already recorded with another fingerprint is
   409, nothing queued; with the same one, 202 again with its state now (and the message
   sent again if the request is still `queued`: a crash may have lost the first; the
   queue intake takes a `queued` request over once, so a copy is only a duplicate);
5. the body as it was posted, put on `user-onboard` (plain text, never expiring; see
   `queue_text` for the one exception), where the queue trigger handles it exactly like a
   queued request: 202 + Location.

A storage outage is 503 with Retry-After (nothing half-done is lost: a repeat of the
same POST finishes the job). GET needs `Onboarding.Read` or `Onboarding.Submit`, and
reads the ledger only.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import unquote

from shared.decisions import Rules, admit
from shared.domain.access import READ_ROLE, SUBMIT_ROLE, AccessTokenError, Caller, require_role
from shared.domain.codes import RequestStatus
from shared.domain.decoding import MAX_MESSAGE_BYTES
from shared.domain.errors import FieldError, InvalidRequest, StorageUnavailable
from shared.domain.fingerprint import fingerprint
from shared.domain.identifiers import REQUEST_ID
from shared.domain.requests import OnboardingRequest, parse_request
from shared.service import http_answers as answers
from shared.service.http_answers import AnswerCode, HttpAnswer
from shared.service.ports import Authenticator, Clock, RequestLedger, RequestQueue, Submissions
from shared.telemetry import TelemetryEvent, emit

log = logging.getLogger("user_onboarding")


class FrontDoor:
    """The two calls, over the ledger, `user-onboard` and the token validator (None: the
    front door is off, API_AUDIENCE unset, and every call is 503 `front_door_off`)."""

    def __init__(
        self,
        *,
        authenticator: Authenticator | None,
        submissions: Submissions,
        ledger: RequestLedger,
        queue: RequestQueue,
        clock: Clock,
        rules: Rules,
    ) -> None:
        self._authenticator = authenticator
        self._submissions = submissions
        self._ledger = ledger
        self._queue = queue
        self._clock = clock
        self._rules = rules

    async def submit(self, authorization: str | None, body: bytes) -> HttpAnswer:
        """POST /api/onboarding-requests."""
        caller = await self._caller("submit", authorization, {SUBMIT_ROLE})
        if isinstance(caller, HttpAnswer):
            return caller
        answer, request_id = await self._submit(caller, body)
        return _logged("submit", answer, caller.app_id, request_id)

    async def status(self, authorization: str | None, request_id: str) -> HttpAnswer:
        """GET /api/onboarding-requests/{requestId}; `request_id` as the route gave it."""
        caller = await self._caller("status", authorization, {READ_ROLE, SUBMIT_ROLE})
        if isinstance(caller, HttpAnswer):
            return caller
        wanted = _route_value(request_id)
        answer = await self._status(wanted)
        named = wanted if REQUEST_ID.fullmatch(wanted) else None
        return _logged("status", answer, caller.app_id, named)

    async def _caller(
        self, operation: str, authorization: str | None, roles: set[str]
    ) -> Caller | HttpAnswer:
        """The caller, or its refusal (logged with nothing the caller sent)."""
        if self._authenticator is None:
            off = answers.problem(
                AnswerCode.FRONT_DOOR_OFF,
                "the HTTP front door is off (API_AUDIENCE is not set); post to the queue",
            )
            return _logged(operation, off)
        try:
            caller = await self._authenticator.authenticate(authorization)
            require_role(caller, roles)
        except AccessTokenError as error:
            return _logged(operation, answers.refused(error), error.app_id)
        return caller

    async def _submit(self, caller: Caller, body: bytes) -> tuple[HttpAnswer, str | None]:
        if len(body) > MAX_MESSAGE_BYTES:
            message = f"the body is {len(body)} bytes; the limit is {MAX_MESSAGE_BYTES}"
            return answers.problem(AnswerCode.TOO_LARGE, message), None
        try:
            request = self._validated(body)
        except InvalidRequest as problem:
            return answers.invalid(problem), problem.request_id
        request_id = request.request_id
        try:
            return await self._record_and_queue(caller, request, body), request_id
        except StorageUnavailable:
            return _storage_unavailable(), request_id

    def _validated(self, body: bytes) -> OnboardingRequest:
        """The queue's rules: the request's own, then what admission checks against the
        settings and the clock. An unexpected error is answered as the queue answers it."""
        try:
            request = parse_request(body)
            admit(request, self._clock.now(), self._rules)
        except InvalidRequest:
            raise
        except Exception:
            log.exception("a body posted to the front door could not be read")
            raise InvalidRequest([FieldError("", "the app could not read this message")]) from None
        return request

    async def _record_and_queue(
        self, caller: Caller, request: OnboardingRequest, body: bytes
    ) -> HttpAnswer:
        request_id, mark = request.request_id, fingerprint(request)
        known = await self._submissions.submit(request_id, mark, caller.app_id, self._clock.now())
        if known is not None and known.fingerprint != mark:
            return answers.problem(
                AnswerCode.REQUEST_ID_IN_USE,
                f"the requestId {request_id} is already used by another request; "
                "send a new request with a new requestId",
            )
        if known is None or known.status == RequestStatus.QUEUED:
            await self._queue.send(queue_text(body, request))
        return answers.accepted(known, request_id)

    async def _status(self, request_id: str) -> HttpAnswer:
        unknown = answers.problem(AnswerCode.NOT_FOUND, "the app knows no request with this id")
        if not REQUEST_ID.fullmatch(request_id):  # none could exist (and `~` rows are not requests)
            return unknown
        try:
            record = await self._ledger.read(request_id)
        except StorageUnavailable:
            return _storage_unavailable()
        return answers.status(record) if record is not None else unknown


def queue_text(body: bytes, request: OnboardingRequest) -> str:
    """The message for `user-onboard`: the body as posted (valid, so UTF-8 text), unless
    it holds a character an XML body cannot carry (the queue service's REST API is XML:
    U+FFFE or U+FFFF, which a distinguished name may hold); then the request's canonical
    JSON, all ASCII, which the intake reads back as the same request (same fingerprint)."""
    text = body.decode("utf-8")
    if all(_XML_CHAR.fullmatch(ch) for ch in set(text)):
        return text
    return json.dumps(request.to_json())


# XML 1.0's Char production (www.w3.org/TR/xml/#charsets), less what UTF-8 cannot hold.
_XML_CHAR = re.compile("[\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _route_value(value: str) -> str:
    """The requestId as posted. The Functions host (ASP.NET Core routing) decodes a route
    value except `%2F`, which it leaves encoded; a requestId never holds `%`, so one more
    decoding is unambiguous."""
    return unquote(value) if "%" in value else value


def _storage_unavailable() -> HttpAnswer:
    return answers.problem(
        AnswerCode.STORAGE_UNAVAILABLE, "the app's storage did not answer; try again shortly"
    )


def _logged(
    operation: str, answer: HttpAnswer, app_id: str | None = None, request_id: str | None = None
) -> HttpAnswer:
    """One `http.call` record per call. A refused caller's record holds the refusal and,
    once its token's signature verified, its application id: nothing it sent."""
    emit(
        TelemetryEvent.HTTP_CALL,
        "front door %s: %d %s (app %s, request %s)",
        operation,
        answer.status,
        answer.code,
        app_id or "-",
        request_id or "-",
        level=logging.INFO if answer.status < 500 else logging.WARNING,
        operation=operation,
        status=answer.status,
        code=answer.code,
        appId=app_id,
        requestId=request_id,
    )
    return answer
