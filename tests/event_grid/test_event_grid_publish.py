"""The stand-in's publish API: what azure-eventgrid sends is taken, and what Event Grid
refuses (credentials, limits, malformed CloudEvents) is refused with Event Grid's answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken, AzureKeyCredential, AzureSasCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from azure.eventgrid import EventGridPublisherClient, generate_sas

from local_stack.event_grid import EventGridStandIn
from local_stack.event_grid.wire import MAX_BATCH_BYTES, MAX_EVENTS_PER_BATCH
from tests.event_grid.standin_support import StandInFactory

pytestmark = pytest.mark.stack

BATCH = "application/cloudevents-batch+json; charset=utf-8"


def cloud_event(event_id: str = "HR-1:licensed", **fields: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/user-onboarding",
        "type": "onboarding.user.licensed",
        "subject": "HR-1",
        **fields,
    }


def post(
    standin: EventGridStandIn,
    body: bytes | str,
    *,
    headers: dict[str, str] | None = None,
    query: str = "api-version=2018-01-01",
    path: str = "/api/events",
) -> httpx.Response:
    """A raw request, as a client other than the SDK could send it."""
    sent = {"aeg-sas-key": standin.key, "Content-Type": BATCH, **(headers or {})}
    sent = {k: v for k, v in sent.items() if v}
    url = f"http://{standin.host}:{standin.port}{path}" + (f"?{query}" if query else "")
    content = body.encode() if isinstance(body, str) else body
    return httpx.post(url, content=content, headers=sent, timeout=10)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    error: dict[str, Any] = body["error"]
    assert error["details"][0]["message"] == error["message"]
    assert error["message"].endswith("to our forums for assistance or raise a support ticket.")
    return error


def test_the_sdk_publishes_a_cloud_event_with_the_topic_key(make_standin: StandInFactory) -> None:
    """azure-eventgrid's client, with the key credential, gets 200 and the event is logged."""
    standin = make_standin()
    with EventGridPublisherClient(standin.endpoint, AzureKeyCredential(standin.key)) as client:
        client.send([cloud_event()])
    (entry,) = standin.publishes()
    assert entry["status"] == 200
    assert entry["credential"] == "key"
    assert entry["eventIds"] == ["HR-1:licensed"]
    assert entry["contentType"] == BATCH


def test_a_shared_access_signature_from_the_sdk_is_checked_and_taken(
    make_standin: StandInFactory,
) -> None:
    """generate_sas with the topic key for this endpoint passes; the SDK sends aeg-sas-token."""
    standin = make_standin()
    sas = generate_sas(standin.endpoint, standin.key, datetime.now(UTC) + timedelta(hours=1))
    EventGridPublisherClient(standin.endpoint, AzureSasCredential(sas)).send([cloud_event()])
    assert [e["credential"] for e in standin.publishes()] == ["sas"]


@pytest.mark.parametrize(
    ("endpoint_of", "key", "expires_in", "reason"),
    [
        (lambda s: s.endpoint, "b3RoZXIta2V5", timedelta(hours=1), "signature does not match"),
        (lambda s: s.endpoint, None, timedelta(hours=-1), "has expired"),
        (lambda s: "http://127.0.0.1:1/api/events", None, timedelta(hours=1), "was made for"),
    ],
    ids=["another-key", "expired", "another-topic"],
)
def test_a_shared_access_signature_that_does_not_fit_is_refused_401(
    make_standin: StandInFactory,
    endpoint_of: Any,
    key: str | None,
    expires_in: timedelta,
    reason: str,
) -> None:
    """Signed with another key, expired, or made for another topic: 401 naming why."""
    standin = make_standin()
    sas = generate_sas(endpoint_of(standin), key or standin.key, datetime.now(UTC) + expires_in)
    client = EventGridPublisherClient(standin.endpoint, AzureSasCredential(sas))
    with pytest.raises(ClientAuthenticationError) as refused:
        client.send([cloud_event()])
    assert refused.value.status_code == 401
    assert reason in str(refused.value)


def test_a_wrong_key_is_refused_401_and_nothing_is_accepted(make_standin: StandInFactory) -> None:
    """The SDK raises ClientAuthenticationError on Event Grid's 401."""
    standin = make_standin()
    client = EventGridPublisherClient(standin.endpoint, AzureKeyCredential("d3Jvbmc="))
    with pytest.raises(ClientAuthenticationError) as refused:
        client.send([cloud_event()])
    assert "is not authorized for 127.0.0.1" in str(refused.value)
    assert [e["status"] for e in standin.publishes()] == [401]


def test_a_request_without_any_credential_gets_event_grids_401(
    make_standin: StandInFactory,
) -> None:
    """No aeg-sas-key, aeg-sas-token or Authorization: the real service's message."""
    standin = make_standin()
    response = post(standin, json.dumps([cloud_event()]), headers={"aeg-sas-key": ""})
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "Unauthorized"
    assert error["message"].startswith(
        "Request must contain one of the following authorization signature: aeg-sas-token, "
        "aeg-sas-key."
    )


def test_the_development_bearer_token_is_taken_and_any_other_refused(
    make_standin: StandInFactory,
) -> None:
    """Authorization: Bearer with the fixed token passes; another token, or Basic, is 401."""
    standin = make_standin()
    body = json.dumps([cloud_event()])
    bearer = {"aeg-sas-key": "", "Authorization": f"Bearer {standin.token}"}
    assert post(standin, body, headers=bearer).status_code == 200
    forged = {"aeg-sas-key": "", "Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."}
    assert post(standin, body, headers=forged).status_code == 401
    basic = {"aeg-sas-key": "", "Authorization": "Basic dXNlcjpwYXNz"}
    assert (
        "unsupported Authorization scheme"
        in error_of(post(standin, body, headers=basic))["message"]
    )


def test_azure_core_will_not_send_a_bearer_token_over_plain_http(
    make_standin: StandInFactory,
) -> None:
    """Why the app uses the key locally: the SDK refuses before anything is sent."""
    standin = make_standin()

    class Token:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken(standin.token, 2**31)

    with pytest.raises(ServiceRequestError, match="non-TLS"):
        EventGridPublisherClient(standin.endpoint, Token()).send([cloud_event()])
    assert standin.publishes() == []


def test_a_topic_without_local_auth_refuses_keys_but_takes_tokens(
    make_standin: StandInFactory,
) -> None:
    """disableLocalAuth: true (the app's Bicep): only a Microsoft Entra token is taken."""
    standin = make_standin(local_auth=False)
    body = json.dumps([cloud_event()])
    assert "Local authentication" in error_of(post(standin, body))["message"]
    bearer = {"aeg-sas-key": "", "Authorization": f"Bearer {standin.token}"}
    assert post(standin, body, headers=bearer).status_code == 200


def test_a_batch_over_one_megabyte_is_refused_413_and_one_just_under_is_taken(
    make_standin: StandInFactory,
) -> None:
    """Event Grid's 1 MB limit on the array (and on each event)."""
    standin = make_standin()
    client = EventGridPublisherClient(standin.endpoint, AzureKeyCredential(standin.key))
    envelope = len(json.dumps([cloud_event(data="")]))
    client.send([cloud_event(data="x" * (MAX_BATCH_BYTES - envelope - 100))])
    with pytest.raises(HttpResponseError) as refused:
        client.send([cloud_event(data="x" * MAX_BATCH_BYTES)])
    assert refused.value.status_code == 413
    assert [e["status"] for e in standin.publishes()] == [200, 413]


def test_more_than_five_thousand_events_in_one_request_are_refused_413(
    make_standin: StandInFactory,
) -> None:
    """Event Grid's limit of 5,000 events per request."""
    standin = make_standin()
    batch = [cloud_event(f"e{n}") for n in range(MAX_EVENTS_PER_BATCH + 1)]
    response = post(standin, json.dumps(batch, separators=(",", ":")))
    assert response.status_code == 413
    assert error_of(response)["code"] == "RequestEntityTooLarge"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([{k: v for k, v in cloud_event().items() if k != "id"}], "requires 'id' property"),
        ([{k: v for k, v in cloud_event().items() if k != "source"}], "requires 'source'"),
        ([{k: v for k, v in cloud_event().items() if k != "type"}], "requires 'type'"),
        ([{k: v for k, v in cloud_event().items() if k != "specversion"}], "'specversion'"),
        ([cloud_event(id="")], "requires 'id'"),
        ([cloud_event(specversion="0.3")], "specversion '0.3' is not supported"),
        ([cloud_event(time="yesterday")], "not an RFC 3339 timestamp"),
        ([cloud_event(time="2026-11-24T10:15:02")], "not an RFC 3339 timestamp"),
        ([cloud_event(subject=7)], "'subject' must be a string"),
        ([cloud_event(data={}, data_base64="e30=")], "either 'data' or 'data_base64'"),
        ([cloud_event(**{"Bad-Name": 1})], "attribute name 'Bad-Name' is invalid"),
        ([], "does not conform to the expected schema"),
        ([7], "does not conform to the expected schema"),
        (cloud_event(), "not valid JSON"),
    ],
    ids=[
        "no-id",
        "no-source",
        "no-type",
        "no-specversion",
        "empty-id",
        "specversion-0.3",
        "time-not-a-time",
        "time-without-offset",
        "subject-number",
        "data-and-base64",
        "bad-extension-name",
        "empty-batch",
        "not-an-object",
        "object-not-array",
    ],
)
def test_a_malformed_cloud_event_is_refused_400_naming_the_problem(
    make_standin: StandInFactory, body: Any, words: str
) -> None:
    """Each problem gets a 400 InputJsonInvalid whose message says what is wrong."""
    standin = make_standin()
    response = post(standin, json.dumps(body))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "BadRequest"
    assert error["details"][0]["code"] == "InputJsonInvalid"
    assert words in error["message"]


@pytest.mark.parametrize(
    "raw",
    [b"[{", b"\xff\xfe[]", b'[{"specversion": NaN}]', b"[{}] trailing", b"[{},]"],
    ids=["truncated", "not-utf8", "nan", "trailing-text", "trailing-comma"],
)
def test_a_body_that_is_not_json_is_refused_400(make_standin: StandInFactory, raw: bytes) -> None:
    """What a JSON parser refuses, Event Grid refuses."""
    response = post(make_standin(), raw)
    assert response.status_code == 400
    assert "not valid JSON" in error_of(response)["message"]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/cloudevents-batch+json; charset=latin-1", ""],
    ids=["text", "latin1", "missing"],
)
def test_a_content_type_event_grid_does_not_take_is_refused_415(
    make_standin: StandInFactory, content_type: str
) -> None:
    """Only the CloudEvents media types (and application/json), in UTF-8."""
    response = post(
        make_standin(), json.dumps([cloud_event()]), headers={"Content-Type": content_type}
    )
    assert response.status_code == 415


def test_a_single_event_in_structured_mode_is_taken(make_standin: StandInFactory) -> None:
    """application/cloudevents+json carries one event, not an array."""
    standin = make_standin()
    single = {"Content-Type": "application/cloudevents+json; charset=utf-8"}
    assert post(standin, json.dumps(cloud_event()), headers=single).status_code == 200
    assert post(standin, json.dumps([cloud_event()]), headers=single).status_code == 400


@pytest.mark.parametrize("query", ["", "api-version=2099-01-01"], ids=["missing", "unknown"])
def test_the_api_version_is_required(make_standin: StandInFactory, query: str) -> None:
    """The SDK always sends api-version=2018-01-01; a request without it is refused."""
    response = post(make_standin(), json.dumps([cloud_event()]), query=query)
    assert response.status_code == 400
    assert "api-version" in error_of(response)["message"]


def test_another_path_is_404_and_another_method_405(make_standin: StandInFactory) -> None:
    """Event Grid's "No HTTP resource was found" for an unknown path; GET is not publish."""
    standin = make_standin()
    missing = post(standin, "[]", path="/api/event")
    assert missing.status_code == 404
    assert error_of(missing)["message"].startswith("No HTTP resource was found that matches")
    wrong = httpx.get(standin.endpoint, timeout=10)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"


def test_a_body_far_over_the_limit_is_refused_without_being_read(
    make_standin: StandInFactory,
) -> None:
    """A hostile Content-Length does not make the stand-in read gigabytes."""
    standin = make_standin()
    response = post(standin, b"[" + b" " * (5 * MAX_BATCH_BYTES) + b"]")
    assert response.status_code == 413


def test_the_stand_in_only_binds_loopback(make_standin: StandInFactory) -> None:
    """It never faces a network."""
    with pytest.raises(ValueError, match="loopback"):
        make_standin(host="0.0.0.0")  # noqa: S104 - the refusal is what is tested
