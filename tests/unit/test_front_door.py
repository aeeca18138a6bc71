"""The HTTP front door's use case against in-memory fakes: what a caller gets, what is
recorded and queued, and how a posted request's message carries it on (the same service
the queue trigger runs). Every answer is checked against its schema in schemas/http/."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from shared.decisions import Backoff
from shared.domain.access import READ_ROLE, SUBMIT_ROLE, Caller, Refusal
from shared.domain.codes import EventType, RequestStatus
from shared.domain.events import MAX_ERRORS, Event
from shared.domain.fingerprint import fingerprint
from shared.domain.records import Decided, Progress
from shared.domain.requests import LicenseRequest, parse_request
from shared.service.front_door import FrontDoor
from shared.service.http_answers import AnswerCode, HttpAnswer
from shared.service.onboarding import OnboardingService, Policy
from tests.fakes import (
    T0,
    FakeAuthenticator,
    FakeClock,
    FakeDirectory,
    FakeEventSink,
    FakeLedger,
    FakeQueue,
    FakeRequestQueue,
    FakeSubmissions,
    FakeUser,
)
from tests.support.http_schemas import SCHEMA_DIR, assert_valid
from tests.unit.test_service_guarantees import HOSTILE_BODIES

TENANT = "6b0f3c2e-1d4a-4f5b-9c8e-7a6d5b4c3e2f"
CALLERS = {
    "hr": Caller("hr-app", "hr-sp", TENANT, frozenset({SUBMIT_ROLE})),
    "reporting": Caller("reporting-app", "reporting-sp", TENANT, frozenset({READ_ROLE})),
    "norole": Caller("norole-app", "norole-sp", TENANT, frozenset()),
}
UPN = "jane@contoso.com"


class Door:
    """The front door and the queue trigger's service over one set of fakes."""

    def __init__(self, *, front_door_on: bool = True, **policy: Any) -> None:
        self.clock = FakeClock()
        self.directory = FakeDirectory()
        self.events = FakeEventSink()
        self.ledger = FakeLedger()
        self.submissions = FakeSubmissions(self.ledger)
        self.queue = FakeRequestQueue()
        settings: dict[str, Any] = {
            "backoff": Backoff(timedelta(minutes=5), timedelta(minutes=30)),
            "sync_timeout": timedelta(hours=2),
            **policy,
        }
        self.service = OnboardingService(
            directory=self.directory,
            pending=FakeQueue(self.clock),
            poison=FakeQueue(self.clock),
            events=self.events,
            ledger=self.ledger,
            clock=self.clock,
            policy=Policy(**settings),
            submissions=self.submissions,
        )
        self.door = FrontDoor(
            authenticator=FakeAuthenticator(CALLERS) if front_door_on else None,
            submissions=self.submissions,
            ledger=self.ledger,
            queue=self.queue,
            clock=self.clock,
            rules=Policy(**settings).rules,
        )
        self.directory.add(FakeUser("u-jane", UPN))
        self.delivered = 0

    def post(self, body: dict[str, Any] | str | bytes, client: str | None = "hr") -> HttpAnswer:
        raw = body if isinstance(body, bytes) else _text(body).encode()
        answer = asyncio.run(self.door.submit(_bearer(client), raw))
        assert_valid(answer.status, answer.body)
        return answer

    def get(self, request_id: str, client: str | None = "reporting") -> HttpAnswer:
        answer = asyncio.run(self.door.status(_bearer(client), request_id))
        assert_valid(answer.status, answer.body)
        return answer

    def deliver(self) -> list[str]:
        """The queue trigger takes every message the front door sent so far."""
        outcomes = []
        for text in self.queue.sent[self.delivered :]:
            self.delivered += 1
            message_id = f"qm-{self.delivered}"
            outcomes.append(asyncio.run(self.service.handle_request(text, message_id)))
        return outcomes


def _text(body: dict[str, Any] | str) -> str:
    return body if isinstance(body, str) else json.dumps(body)


def _bearer(client: str | None) -> str | None:
    return f"Bearer {client}" if client else None


def request(request_id: str = "HR-1", **extra: Any) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "userPrincipalName": UPN,
        "licenses": [{"skuPartNumber": "MCOEV"}, {"skuPartNumber": "ENTERPRISEPACK"}],
        **extra,
    }


# --------------------------------------------------------------------------- accepted


def test_a_valid_post_is_recorded_queued_and_put_on_the_queue_as_posted() -> None:
    """202 + Location; the ledger holds it `queued` with its fingerprint and poster; the
    queue gets the very text that was posted."""
    world = Door()
    text = json.dumps(request("HR/2026:1"), indent=2)

    answer = world.post(text)

    assert (answer.status, answer.body) == (202, {"requestId": "HR/2026:1", "state": "queued"})
    assert answer.all_headers()["Location"] == "/api/onboarding-requests/HR%2F2026%3A1"
    record = world.ledger.records["HR/2026:1"]
    assert record.status == RequestStatus.QUEUED
    assert record.fingerprint == fingerprint(parse_request(text))
    assert (record.owner, record.submitted_by) == ("", "hr-app")
    assert world.queue.sent == [text]
    assert world.events.events == []


def test_a_posted_request_is_carried_on_by_its_message_exactly_like_a_queued_one() -> None:
    """The message takes the queued row over; the request ends licensed, and the status
    shows the state and the one event."""
    world = Door()
    world.post(request())

    assert world.deliver() == ["licensed"]

    record = world.ledger.records["HR-1"]
    assert record.owner == "qm-1"
    assert [e.id for e in world.events.events] == ["HR-1:licensed"]
    status = world.get("HR-1")
    assert status.body["state"] == "licensed"
    assert status.body["events"] == [
        {
            "id": "HR-1:licensed",
            "type": "onboarding.user.licensed",
            "time": world.events.events[0].to_json()["time"],
        }
    ]
    assert "reason" not in status.body
    assert "deadline" not in status.body


def test_a_body_the_queue_cannot_carry_as_is_is_queued_as_its_canonical_ascii_form() -> None:
    """U+FFFF in a distinguished name is valid, but no XML body (the queue's REST API) can
    hold it: the message is the request's canonical JSON, read back as the same request,
    so its message still takes it over."""
    world = Door()
    body = request(onPremisesDistinguishedName="CN=Jane\uffffDoe,DC=contoso,DC=com")
    text = json.dumps(body, ensure_ascii=False)
    assert "\uffff" in text

    assert world.post(text).status == 202
    (sent,) = world.queue.sent
    assert sent.isascii()
    assert fingerprint(parse_request(sent)) == fingerprint(parse_request(text))
    assert world.deliver() == ["licensed"]


def test_whitespace_key_order_escapes_and_offsets_do_not_change_a_fingerprint() -> None:
    """The canonical form decides: the same request written differently is the same."""
    base = request(syncDeadline="2026-11-25T09:00:00Z", startDate="2026-11-30")
    variants = [
        json.dumps(base),
        json.dumps(dict(reversed(list(base.items()))), indent=4),
        json.dumps(base).replace('"HR-1"', '"\\u0048R-1"'),
        json.dumps({**base, "syncDeadline": "2026-11-25T10:00:00+01:00"}),
        json.dumps({**base, "startDate": "2026-11-30T00:00:00Z"}),
        "\ufeff" + json.dumps(base),
    ]
    marks = {fingerprint(parse_request(v)) for v in variants}
    assert len(marks) == 1
    others = [
        {**base, "usageLocation": "FR"},
        {**base, "licenses": list(reversed(base["licenses"]))},
        {**base, "syncDeadline": "2026-11-25T09:00:01Z"},
    ]
    assert marks.isdisjoint({fingerprint(parse_request(json.dumps(o))) for o in others})


def test_an_identical_repeat_is_202_with_the_same_location_and_resent_only_while_queued() -> None:
    """A repeat while the request is still `queued` sends the message again (a crash may
    have lost it); the two copies carry the request on once; a later repeat sends
    nothing and answers the state now."""
    world = Door()
    first = world.post(request())
    again = world.post(json.dumps(request(), indent=1))

    assert (again.status, again.body) == (first.status, first.body)
    assert again.all_headers()["Location"] == first.all_headers()["Location"]
    assert len(world.queue.sent) == 2

    assert world.deliver() == ["licensed", "redelivered"]
    assert {e.id for e in world.events.events} == {"HR-1:licensed"}
    assert [world.directory.seats_used(s.id) for s in world.directory.skus] == [1, 1]

    late = world.post(request())
    assert (late.status, late.body["state"]) == (202, "licensed")
    assert len(world.queue.sent) == 2


def test_another_body_under_a_posted_request_id_is_409_and_nothing_is_queued() -> None:
    """A different request under a requestId in use: 409, no message, no event."""
    world = Door()
    world.post(request())

    answer = world.post(request(usageLocation="FR"))

    assert (answer.status, answer.body["code"]) == (409, AnswerCode.REQUEST_ID_IN_USE)
    assert len(world.queue.sent) == 1
    assert world.ledger.records["HR-1"].fingerprint == fingerprint(
        parse_request(json.dumps(request()))
    )


def test_a_request_id_first_queued_directly_is_409_for_another_body_and_202_for_its_own() -> None:
    """Intake records the fingerprint when it opens a row, so the front door can tell."""
    world = Door()
    assert asyncio.run(world.service.handle_request(json.dumps(request()), "direct")) == (
        "licensed"
    )

    assert world.post(request(usageLocation="FR")).status == 409
    same = world.post(request())
    assert (same.status, same.body["state"]) == (202, "licensed")
    assert world.queue.sent == []


def test_a_request_id_taken_by_an_invalid_queued_message_is_409() -> None:
    """A claim by a rejected message has no fingerprint: any valid body is another one."""
    world = Door()
    asyncio.run(world.service.handle_request('{"requestId": "HR-1"}', "bad"))

    assert world.post(request()).status == 409
    assert world.get("HR-1").body["state"] == "rejected"


def test_a_queue_message_with_another_body_does_not_take_a_posted_request_over() -> None:
    """Under a `queued` requestId, only a message with the posted request carries it on;
    one with another body is a duplicate, as a second message is on the queue."""
    world = Door()
    world.post(request())
    other = json.dumps(request(usageLocation="FR"))

    assert asyncio.run(world.service.handle_request(other, "intruder")) == "duplicate"
    assert world.ledger.records["HR-1"].status == RequestStatus.QUEUED
    assert world.deliver() == ["licensed"]
    assert world.ledger.records["HR-1"].owner == "qm-1"


def test_only_one_copy_of_a_posted_message_wins_the_takeover() -> None:
    """The second copy to try is told it is a duplicate, even before the first has moved
    the request on."""
    world = Door()
    world.post(request())
    world.post(request())

    assert asyncio.run(world.submissions.take_over("HR-1", "qm-a")) is True
    assert asyncio.run(world.submissions.take_over("HR-1", "qm-b")) is False
    assert asyncio.run(world.submissions.take_over("HR-1", "qm-a")) is True  # its redelivery


# --------------------------------------------------------------------------- refused bodies


def test_a_body_over_32_kib_is_413_before_it_is_parsed() -> None:
    """Size first: garbage of 33 KiB is too large, not invalid JSON."""
    world = Door()
    answer = world.post(b"\xff" * (33 * 1024))
    assert (answer.status, answer.body["code"]) == (413, AnswerCode.TOO_LARGE)
    assert world.ledger.records == {}
    assert world.queue.sent == []


def _raw(body: bytes | str) -> bytes:
    return body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body


# Those the size limit lets through (a larger one is 413 over HTTP).
SMALL_HOSTILE = {k: v for k, v in HOSTILE_BODIES.items() if len(_raw(v)) <= 32 * 1024}


@pytest.mark.parametrize("body", SMALL_HOSTILE.values(), ids=SMALL_HOSTILE.keys())
def test_a_hostile_body_gets_the_field_errors_a_queued_one_gets(body: bytes | str) -> None:
    """400 lists what the `rejected` event of the same body on the queue lists; nothing is
    recorded, queued or published."""
    posted, queued = Door(), Door()

    answer = posted.post(_raw(body))
    asyncio.run(queued.service.handle_request(body, "q1"))

    (event,) = queued.events.events
    data = json.loads(event.serialize())["data"]  # as a consumer reads it
    expected = {"errors": data["errors"]}
    if "errorsOmitted" in data:
        expected["errorsOmitted"] = data["errorsOmitted"]
    assert (answer.status, json.loads(answer.content())) == (400, expected)
    assert (posted.ledger.records, posted.queue.sent, posted.events.events) == ({}, [], [])


def test_a_long_error_list_is_cut_as_the_event_cuts_it() -> None:
    """2,000 unknown fields: 50 errors and the count of the rest."""
    answer = Door().post({f"f{n}": n for n in range(2_000)} | {"requestId": "HR-1"})
    assert len(answer.body["errors"]) == MAX_ERRORS
    assert answer.body["errorsOmitted"] == 2_000 + 1 - MAX_ERRORS  # and no identifier


@pytest.mark.parametrize(
    ("body", "policy", "field"),
    [
        ({"requestId": "HR-1", "userPrincipalName": UPN}, {}, "licenses"),
        (request(startDate="2029-01-01"), {}, "startDate"),
        (
            request(startDate="2026-12-20", syncDeadline="2026-12-01T00:00:00Z"),
            {},
            "syncDeadline",
        ),
        (
            request(licenses=[{"skuPartNumber": "MCOEV", "disabledPlans": ["X_PLAN"]}]),
            {"license_groups": {"MCOEV": "g-1"}},
            "licenses[0].disabledPlans",
        ),
    ],
    ids=["no licenses, no DEFAULT_LICENSES", "start too far", "deadline before window", "group"],
)
def test_the_admission_rules_of_the_queue_apply_at_once(
    body: dict[str, Any], policy: dict[str, Any], field: str
) -> None:
    """What only the settings and the clock can judge is judged at the door too: 400."""
    answer = Door(**policy).post(body)
    assert answer.status == 400
    assert [e["field"] for e in answer.body["errors"]] == [field]


def test_default_licenses_make_a_request_without_licenses_acceptable() -> None:
    """With DEFAULT_LICENSES, no `licenses` is fine, and the fingerprint stays the
    request's own (the default is not part of it)."""
    world = Door(default_licenses=(LicenseRequest("MCOEV"),))
    body = {"requestId": "HR-1", "userPrincipalName": UPN}
    assert world.post(body).status == 202
    assert world.ledger.records["HR-1"].fingerprint == fingerprint(parse_request(json.dumps(body)))


# --------------------------------------------------------------------------- refused callers


@pytest.mark.parametrize(
    ("client", "status", "code", "challenge"),
    [
        (None, 401, Refusal.MISSING_TOKEN, "Bearer"),
        ("forged", 401, Refusal.INVALID_SIGNATURE, 'error="invalid_token"'),
        ("reporting", 403, Refusal.MISSING_ROLE, 'error="insufficient_scope"'),
        ("norole", 403, Refusal.MISSING_ROLE, 'error="insufficient_scope"'),
    ],
)
def test_a_refused_poster_gets_only_its_refusal_and_nothing_is_recorded_or_logged(
    client: str | None,
    status: int,
    code: Refusal,
    challenge: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Authentication and the role come before the body is read: no row, no message, no
    event, and the log holds the refusal, never the body."""
    caplog.set_level(logging.DEBUG)
    world = Door()
    answer = world.post(request("HR-SECRET-7"), client=client)

    assert (answer.status, answer.body["code"]) == (status, code)
    assert challenge in answer.all_headers()["WWW-Authenticate"]
    assert (world.ledger.records, world.queue.sent, world.events.events) == ({}, [], [])
    assert "HR-SECRET-7" not in caplog.text
    assert UPN not in caplog.text
    (record,) = [r for r in caplog.records if getattr(r, "onboardingEvent", "") == "http.call"]
    assert (record.status, record.code) == (str(status), str(code))  # type: ignore[attr-defined]


def test_a_refused_status_query_never_says_whether_the_request_exists() -> None:
    """The same refusal for a known and an unknown requestId."""
    world = Door()
    world.post(request())
    for client in (None, "forged", "norole"):
        known, unknown = world.get("HR-1", client), world.get("HR-404", client)
        assert (known.status, known.body) == (unknown.status, unknown.body)
        assert known.status in (401, 403)


def test_both_roles_may_read_and_only_submit_may_post() -> None:
    """Onboarding.Read or Onboarding.Submit reads; a poster may read what it posted."""
    world = Door()
    world.post(request())
    assert world.get("HR-1", "reporting").status == 200
    assert world.get("HR-1", "hr").status == 200
    assert world.post(request("HR-2"), client="reporting").status == 403


def test_with_the_front_door_off_every_call_is_503_front_door_off() -> None:
    """API_AUDIENCE unset: no caller can be checked, so none is let in (machine-readable)."""
    world = Door(front_door_on=False)
    for answer in (world.post(request()), world.get("HR-1")):
        assert (answer.status, answer.body["code"]) == (503, AnswerCode.FRONT_DOOR_OFF)
    assert world.ledger.records == {}


# --------------------------------------------------------------------------- outages


def test_a_queue_outage_is_503_retry_after_and_the_repeat_finishes_the_job() -> None:
    """The row is written, the message is not: 503 with Retry-After; the same POST again
    sends it (the request is still `queued`), and it is handled once."""
    world = Door()
    world.queue.fail = 1

    failed = world.post(request())
    assert (failed.status, failed.body["code"]) == (503, AnswerCode.STORAGE_UNAVAILABLE)
    assert failed.all_headers()["Retry-After"] == "10"

    assert world.post(request()).status == 202
    assert world.deliver() == ["licensed"]


# --------------------------------------------------------------------------- status


def test_a_waiting_request_shows_its_event_next_check_and_deadline() -> None:
    """Not synced yet: `waiting`, the awaiting_sync event, nextCheckAt and deadline."""
    world = Door()
    world.post(request("HR-2", userPrincipalName="late@contoso.com"))
    assert world.deliver() == ["waiting"]

    body = world.get("HR-2").body
    assert body["state"] == "waiting"
    assert [e["id"] for e in body["events"]] == ["HR-2:awaiting_sync"]
    assert body["nextCheckAt"] == "2026-11-24T09:05:00Z"
    assert body["deadline"] == "2026-11-24T11:00:00Z"
    assert "reason" not in body


def test_a_failed_request_shows_the_reason_and_every_event_in_order() -> None:
    """awaiting_sync, then failed/sync_timeout with its reason; no deadline any more."""
    world = Door()
    world.post(request("HR-3", userPrincipalName="never@contoso.com"))
    world.deliver()
    for _ in range(8):
        world.clock.advance(timedelta(minutes=30))
        asyncio.run(world.service.sweep())

    body = world.get("HR-3").body
    assert body["state"] == "failed"
    assert [e["type"] for e in body["events"]] == [
        "onboarding.user.awaiting_sync",
        "onboarding.user.failed",
    ]
    assert body["reason"]["code"] == "sync_timeout"
    assert "deadline" not in body
    assert "nextCheckAt" not in body


def test_a_request_a_message_holds_but_has_not_checked_yet_is_queued() -> None:
    """`received` is internal: the caller reads `queued`."""
    world = Door()
    asyncio.run(world.ledger.open("HR-4", "qm-x", world.clock.now()))
    assert world.get("HR-4").body == {"requestId": "HR-4", "state": "queued", "events": []}


@pytest.mark.parametrize("request_id", ["HR-404", "~deadletter", "~parked", "a b", "x" * 129])
def test_an_unknown_or_impossible_request_id_is_404(request_id: str) -> None:
    """Nothing known, or no such requestId could exist (the ledger's own partitions)."""
    world = Door()
    asyncio.run(world.ledger.open("~parked", "q", world.clock.now()))  # never shown
    answer = world.get(request_id)
    assert (answer.status, answer.body["code"]) == (404, AnswerCode.NOT_FOUND)


def test_a_request_id_with_an_encoded_slash_is_found() -> None:
    """The host leaves `%2F` encoded in a route value; the front door decodes it once."""
    world = Door()
    world.post(request("HR/2026/5"))
    assert world.get("HR%2F2026%2F5").body["requestId"] == "HR/2026/5"
    assert world.get("HR/2026/5").status == 200


# --------------------------------------------------------------------------- schemas


def test_the_problem_schema_lists_exactly_the_codes_the_front_door_answers() -> None:
    """Every refusal code (a token's, the front door's own) and no other."""
    schema = json.loads((SCHEMA_DIR / "problem.schema.json").read_text(encoding="utf-8"))
    codes = {str(r) for r in Refusal} | {str(c) for c in AnswerCode}
    assert set(schema["properties"]["code"]["enum"]) == codes


def test_every_state_the_ledger_can_hold_is_a_state_word_of_the_schemas() -> None:
    """What `public_state` can say is in the contract's list, in both answers."""
    world = Door()
    words = set()
    terminal = {kind.word: kind for kind in EventType if kind.terminal}
    for n, status in enumerate(RequestStatus):
        request_id = f"HR-S{n}"
        if status in terminal:
            data: dict[str, Any] = {"requestId": request_id}
            if status != RequestStatus.LICENSED:
                data["reason"] = {"code": "sync_timeout", "message": "never synced"}
            event = Event(terminal[status], f"{request_id}:{status}", T0, data)
            asyncio.run(world.ledger.decide(request_id, Decided(event, "q")))
        else:
            asyncio.run(world.ledger.note(request_id, Progress(status, parked=False)))
        words.add(world.get(request_id).body["state"])
    for name in ("accepted", "status"):
        schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
        enum = schema["properties"]["state"].get("enum") or schema["$defs"]["state"]["enum"]
        assert words <= set(enum)
    assert "received" not in words
