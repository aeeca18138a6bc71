"""The HTTP front door end to end over real HTTP: tokens from the emulator's Entra ID
issuer, the development host serving `function_app.py`'s routes, Azurite behind. Every
answer is checked against its schema in schemas/http/."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.data.tables import TableServiceClient

from local_stack import post as post_tool
from local_stack.stack import LocalStack
from local_stack.stress.bodies import carriable_text, generate, raw_bytes
from shared.domain.errors import InvalidRequest
from shared.domain.requests import parse_request, request_id_in
from shared.names import TABLE_REQUESTS
from tests.support.http_schemas import assert_valid

pytestmark = pytest.mark.stack

SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"
ROUTE = "/api/onboarding-requests"
FAST = {
    "SWEEP_SCHEDULE": "*/1 * * * * *",
    "SYNC_TIMEOUT": "PT60S",
    "RECHECK_INITIAL_DELAY": "PT1S",
    "RECHECK_MAX_DELAY": "PT2S",
    "DEFAULT_LICENSES": "",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    directory = json.loads((SAMPLES / "directory.json").read_text(encoding="utf-8"))
    with LocalStack(tmp_path_factory.mktemp("front-door"), directory, settings=FAST) as running:
        running.start_host()
        yield running


@pytest.fixture(scope="module")
def http(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.http_url(), timeout=30) as client:
        yield client


def add_user(stack: LocalStack, upn: str, **extra: Any) -> None:
    assert stack.graph is not None
    stack.graph.add_user(
        {"userPrincipalName": upn, "onPremisesSyncEnabled": True, "usageLocation": "FR", **extra}
    )


def onboard(request_id: str, upn: str, **extra: Any) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "userPrincipalName": upn,
        "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}],
        **extra,
    }


def post(http: httpx.Client, stack: LocalStack, body: Any, client: str = "hr") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {stack.token(client)}", "Content-Type": "application/json"}
    answer = http.post(ROUTE, content=content, headers=headers)
    assert_valid(answer.status_code, answer.json())
    return answer


def get(
    http: httpx.Client, path: str, authorization: str | None
) -> tuple[int, dict[str, Any], httpx.Headers]:
    headers = {"Authorization": authorization} if authorization else {}
    answer = http.get(path, headers=headers)
    assert_valid(answer.status_code, answer.json())
    return answer.status_code, answer.json(), answer.headers


def ledger_rows(stack: LocalStack, request_id: str) -> list[dict[str, Any]]:
    assert stack.azurite is not None
    with TableServiceClient.from_connection_string(stack.azurite.connection_string) as tables:
        table = tables.get_table_client(TABLE_REQUESTS)
        key = request_id.replace("/", "|")
        return [
            dict(r) for r in table.query_entities("PartitionKey eq @pk", parameters={"pk": key})
        ]


def event_ids(stack: LocalStack, request_id: str) -> list[str]:
    stack.drain_events()
    return [e["id"] for e in stack.events_seen if e.get("subject") == request_id]


def _valid(text: str) -> bool:
    try:
        parse_request(text)
    except InvalidRequest:
        return False
    return True


def settle(stack: LocalStack, request_ids: list[str], timeout: float = 30.0) -> None:
    """Every request terminal; then a message put on the queue behind anything else has
    its answer too, so nothing posted before is still on its way."""
    terminal = stack.wait_for_terminal(request_ids, timeout)
    assert set(request_ids) <= set(terminal), sorted(set(request_ids) - set(terminal))
    sentinel = f"SENTINEL-{time.monotonic_ns()}"
    stack.post(onboard(sentinel, "jane.doe@contoso.com"))
    assert sentinel in stack.wait_for_terminal([sentinel], timeout)
    time.sleep(1.0)
    stack.drain_events()


def test_a_posted_request_is_queued_then_waiting_then_licensed(
    stack: LocalStack, http: httpx.Client
) -> None:
    """202 with Location and `queued`; the status then shows `waiting` (awaiting_sync, next
    check, deadline) and ends `licensed`, with the same events the queue carried."""
    add_user(stack, "slow.sync@contoso.com", onPremisesSyncEnabled=None, syncAfterSeconds=4)
    answer = post(http, stack, onboard("FD/HTTP-1", "slow.sync@contoso.com"))

    assert answer.status_code == 202
    assert answer.headers["Location"] == f"{ROUTE}/FD%2FHTTP-1"
    assert answer.json() == {"requestId": "FD/HTTP-1", "state": "queued"}
    reader = f"Bearer {stack.token('reporting')}"
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 30
    while "licensed" not in seen:
        assert time.monotonic() < deadline, f"states seen: {list(seen)}"
        status, body, _ = get(http, answer.headers["Location"], reader)
        assert status == 200
        seen.setdefault(body["state"], body)
        time.sleep(0.2)

    assert [s for s in seen if s != "queued"] == ["waiting", "licensed"]
    waiting = seen["waiting"]
    assert [e["id"] for e in waiting["events"]] == ["FD/HTTP-1:awaiting_sync"]
    assert {"nextCheckAt", "deadline"} <= set(waiting)
    final = seen["licensed"]
    assert [e["id"] for e in final["events"]] == ["FD/HTTP-1:awaiting_sync", "FD/HTTP-1:licensed"]
    assert set(final) == {"requestId", "state", "events"}
    assert event_ids(stack, "FD/HTTP-1") == [e["id"] for e in final["events"]]


def test_hostile_bodies_get_over_http_the_field_errors_the_queue_gives_them(
    stack: LocalStack, http: httpx.Client
) -> None:
    """A sample of the stress suite's hostile bodies, each posted over HTTP and put on the
    queue as the same text: the 400's errors are the `rejected` event's; the 400 itself
    records and publishes nothing."""
    bodies = [
        text
        for body in generate(60)
        if (text := carriable_text(body.content)) is not None
        and len(raw_bytes(body.content)) <= 32 * 1024
        and not _valid(text)
    ]
    stack.drain_events()
    before = len(stack.events_seen)
    refused = {}
    for text in bodies:
        answer = post(http, stack, text.encode("utf-8"))
        assert answer.status_code == 400, answer.text
        refused[text] = answer.json()
    assert len(refused) >= 20
    settle(stack, [])
    assert {e["subject"][:8] for e in stack.events_seen[before:]} == {"SENTINEL"}
    named = {request_id_in(text) for text in refused} - {None}
    assert named
    assert all(ledger_rows(stack, str(request_id)) == [] for request_id in named)
    by_message = {stack.post(text): text for text in refused}
    rejected: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 30
    while set(rejected) != set(by_message):
        assert time.monotonic() < deadline, "not every body was answered on the queue"
        for event in stack.drain_events():
            if event["type"] == "onboarding.request.rejected":
                rejected[event["data"]["queueMessageId"]] = event["data"]
        time.sleep(0.2)

    for message_id, text in by_message.items():
        data = rejected[message_id]
        expected = {"errors": data["errors"]}
        if "errorsOmitted" in data:
            expected["errorsOmitted"] = data["errorsOmitted"]
        assert refused[text] == expected, text[:200]


def test_a_body_over_32_kib_is_413_and_leaves_no_trace(
    stack: LocalStack, http: httpx.Client
) -> None:
    """Too large: refused before it is parsed; no ledger row, no event."""
    body = onboard("FD-BIG", "jane.doe@contoso.com", onPremisesImmutableId="x" * 33_000)
    answer = post(http, stack, body)
    assert (answer.status_code, answer.json()["code"]) == (413, "too_large")
    settle(stack, [])
    assert ledger_rows(stack, "FD-BIG") == []
    assert event_ids(stack, "FD-BIG") == []


def test_another_body_under_a_known_request_id_is_409_and_nothing_is_queued(
    stack: LocalStack, http: httpx.Client
) -> None:
    """Posted first over HTTP, or put on the queue first: a different body under the same
    requestId is 409, and nothing reaches the queue (no second event for it)."""
    add_user(stack, "conflict@contoso.com")
    assert post(http, stack, onboard("FD-409", "conflict@contoso.com")).status_code == 202
    stack.post(onboard("FD-409Q", "conflict@contoso.com"))
    settle(stack, ["FD-409", "FD-409Q"])

    for request_id in ("FD-409", "FD-409Q"):
        other = onboard(request_id, "conflict@contoso.com", usageLocation="DE")
        answer = post(http, stack, other)
        assert (answer.status_code, answer.json()["code"]) == (409, "request_id_in_use")
    settle(stack, [])

    assert event_ids(stack, "FD-409") == ["FD-409:licensed"]
    assert event_ids(stack, "FD-409Q") == ["FD-409Q:licensed"]
    same = post(http, stack, onboard("FD-409Q", "conflict@contoso.com"))
    assert (same.status_code, same.json()["state"]) == (202, "licensed")


def test_an_identical_repeat_is_idempotent(stack: LocalStack, http: httpx.Client) -> None:
    """The same request posted again (keys reordered, spaces added): the same 202 and
    Location, one outcome, one seat; a repeat after the outcome says `licensed`."""
    add_user(stack, "repeat@contoso.com")
    body = onboard("FD-REPEAT", "repeat@contoso.com")
    first = post(http, stack, body)
    again = post(http, stack, json.dumps(dict(reversed(body.items())), indent=3).encode())

    assert (first.status_code, again.status_code) == (202, 202)
    assert first.headers["Location"] == again.headers["Location"]
    settle(stack, ["FD-REPEAT"])
    assert set(event_ids(stack, "FD-REPEAT")) == {"FD-REPEAT:licensed"}
    assert stack.graph is not None
    user = stack.graph.user_record("repeat@contoso.com")
    assert len(user["assignedLicenses"]) == 1
    late = post(http, stack, body)
    assert (late.status_code, late.json()["state"]) == (202, "licensed")


def test_the_status_of_a_queued_request_and_of_no_request(
    stack: LocalStack, http: httpx.Client
) -> None:
    """A request put on the queue directly is readable too; an unknown one is 404."""
    stack.post(onboard("FD-DIRECT", "jane.doe@contoso.com"))
    settle(stack, ["FD-DIRECT"])
    reader = f"Bearer {stack.token('reporting')}"

    status, body, _ = get(http, f"{ROUTE}/FD-DIRECT", reader)
    assert (status, body["state"]) == (200, "licensed")
    status, body, _ = get(http, f"{ROUTE}/FD-NOBODY", reader)
    assert (status, body["code"]) == (404, "not_found")


@pytest.mark.parametrize("client", [None, "expired", "norole"])
def test_a_refused_status_query_says_nothing_of_whether_the_request_exists(
    stack: LocalStack, http: httpx.Client, client: str | None
) -> None:
    """No token, an expired one, or no role: the same answer for a known requestId and an
    unknown one."""
    stack.post(onboard("FD-KNOWN", "jane.doe@contoso.com"))
    settle(stack, ["FD-KNOWN"])
    assert stack.graph is not None
    now = int(time.time())
    authorization = {
        None: None,
        "expired": "Bearer "
        + stack.graph.identity.mint(
            "reporting", claims={"exp": now - 3600, "iat": now - 7200, "nbf": now - 7200}
        ),
        "norole": f"Bearer {stack.token('norole')}",
    }[client]

    known = get(http, f"{ROUTE}/FD-KNOWN", authorization)
    unknown = get(http, f"{ROUTE}/FD-UNKNOWN", authorization)
    assert known[0] in (401, 403)
    assert (known[0], known[1], known[2].get("WWW-Authenticate")) == (
        unknown[0],
        unknown[1],
        unknown[2].get("WWW-Authenticate"),
    )


def test_make_post_http_sends_a_file_through_the_front_door(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    """`make post HTTP=1`: the sample HR system's token, one POST, the answer printed, and
    the request handled like any other."""
    for name, value in stack.api_settings().items():
        monkeypatch.setenv(name, value)
    add_user(stack, "posted.file@contoso.com")
    path = tmp_path / "one.json"
    path.write_text(json.dumps(onboard("FD-POST", "posted.file@contoso.com")), encoding="utf-8")

    assert post_tool.main(["--http", "--host-url", stack.http_url(), str(path)]) == 0

    assert "FD-POST: 202 Location: /api/onboarding-requests/FD-POST" in capsys.readouterr().out
    settle(stack, ["FD-POST"])
    assert event_ids(stack, "FD-POST") == ["FD-POST:licensed"]
