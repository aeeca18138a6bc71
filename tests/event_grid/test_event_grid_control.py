"""The stand-in's bad days and its control API: injected faults, outages, a refused
identity, the rate limit, a closed listener, and subscriptions managed over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ServiceRequestError
from azure.eventgrid import EventGridPublisherClient

from local_stack.event_grid import EventGridStandIn, SubscriptionError, parse_subscription
from tests.event_grid.standin_support import StandInFactory, subscription

pytestmark = pytest.mark.stack

BATCH = "application/cloudevents-batch+json; charset=utf-8"
EVENT = {"specversion": "1.0", "id": "E1", "source": "/s", "type": "t"}


def raw_publish(standin: EventGridStandIn, timeout: float = 10) -> httpx.Response:
    return httpx.post(
        f"{standin.endpoint}?api-version=2018-01-01",
        content=json.dumps([EVENT]).encode(),
        headers={"aeg-sas-key": standin.key, "Content-Type": BATCH},
        timeout=timeout,
    )


def control(standin: EventGridStandIn, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method,
        f"{standin.control_url}{path}",
        content=None if body is None else json.dumps(body).encode(),
        timeout=10,
    )


def statuses(standin: EventGridStandIn) -> list[int]:
    return [entry["status"] for entry in standin.publishes()]


def test_injected_503s_are_retried_by_the_sdk_until_the_topic_takes_the_event(
    make_standin: StandInFactory,
) -> None:
    """The SDK (azure-core) retries a POST answered 503; the third try is taken."""
    standin = make_standin()
    assert control(standin, "POST", "/faults", {"status": 503, "count": 2}).json() == {"pending": 2}
    client = EventGridPublisherClient(standin.endpoint, AzureKeyCredential(standin.key))
    client.send([EVENT], retry_backoff_factor=0.01)
    assert statuses(standin) == [503, 503, 200]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_an_injected_status_is_answered_with_event_grids_error_body(
    make_standin: StandInFactory, status: int
) -> None:
    """Each fault status, once, with Event Grid's error shape; then the topic is fine."""
    standin = make_standin()
    standin.add_fault({"status": status})
    refused = raw_publish(standin)
    assert refused.status_code == status
    assert refused.json()["error"]["message"].endswith("raise a support ticket.")
    assert raw_publish(standin).status_code == 200


def test_a_throttling_fault_can_say_how_long_to_wait(make_standin: StandInFactory) -> None:
    """429 with Retry-After, as a throttled service answers."""
    standin = make_standin()
    standin.add_fault({"status": 429, "retryAfter": 3600})
    refused = raw_publish(standin)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "3600"


def test_a_timeout_fault_holds_the_request_and_never_answers(make_standin: StandInFactory) -> None:
    """The publisher's read timeout fires; the topic logs the request without a status."""
    standin = make_standin()
    standin.add_fault({"kind": "timeout", "seconds": 5})
    with pytest.raises(httpx.ReadTimeout):
        raw_publish(standin, timeout=0.5)
    assert statuses(standin) == [0]
    assert standin.publishes()[0]["fault"] == "timeout"


def test_a_dropped_connection_answers_nothing(make_standin: StandInFactory) -> None:
    """The connection closes without a status line."""
    standin = make_standin()
    standin.add_fault({"kind": "drop"})
    with pytest.raises(httpx.RemoteProtocolError):
        raw_publish(standin)
    assert raw_publish(standin).status_code == 200


def test_an_outage_answers_every_publish_until_it_ends(make_standin: StandInFactory) -> None:
    """PUT /_eventgrid/outage, then DELETE: 503s meanwhile, even to a bad credential."""
    standin = make_standin()
    assert control(standin, "PUT", "/outage", {"status": 503}).status_code == 204
    assert [raw_publish(standin).status_code for _ in range(3)] == [503, 503, 503]
    assert control(standin, "DELETE", "/outage").status_code == 204
    assert raw_publish(standin).status_code == 200


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "EventGrid Data Sender"), (403, "rejected due to IpAddress filtering rules")],
)
def test_a_denied_identity_is_refused_with_the_reason(
    make_standin: StandInFactory, status: int, words: str
) -> None:
    """401: the role is missing; 403: the topic's network rules refuse the caller."""
    standin = make_standin()
    assert control(standin, "PUT", "/denied", {"status": status}).status_code == 204
    refused = raw_publish(standin)
    assert refused.status_code == status
    assert words in refused.json()["error"]["message"]
    control(standin, "DELETE", "/denied")
    assert raw_publish(standin).status_code == 200


def test_past_the_publish_rate_the_topic_answers_429(make_standin: StandInFactory) -> None:
    """The per-second limit counts events (in 64 KB chunks); a lower one shows it."""
    standin = make_standin(events_per_second=3)
    batch = [dict(EVENT, id=f"E{n}") for n in range(4)]
    response = httpx.post(
        f"{standin.endpoint}?api-version=2018-01-01",
        content=json.dumps(batch).encode(),
        headers={"aeg-sas-key": standin.key, "Content-Type": BATCH},
        timeout=10,
    )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "TooManyRequests"


def test_a_closed_listener_refuses_connections_until_it_comes_up(
    make_standin: StandInFactory,
) -> None:
    """go_down/come_up: the topic unreachable, then back on the same endpoint."""
    standin = make_standin()
    client = EventGridPublisherClient(standin.endpoint, AzureKeyCredential(standin.key))
    standin.go_down()
    with pytest.raises(ServiceRequestError):
        client.send([EVENT], retry_total=0)
    standin.come_up()
    client.send([EVENT])
    assert statuses(standin) == [200]


def test_subscriptions_are_managed_over_the_control_api(
    make_standin: StandInFactory, queue_prefix: str
) -> None:
    """PUT, GET and DELETE /_eventgrid/subscriptions/{name}; the summary lists them."""
    standin = make_standin()
    document = subscription("added", f"{queue_prefix}-q")
    del document["name"]
    put = control(standin, "PUT", "/subscriptions/added", document)
    assert put.status_code == 200
    assert [s["name"] for s in control(standin, "GET", "/subscriptions").json()] == ["added"]
    assert control(standin, "GET", "").json()["subscriptions"] == ["added"]
    assert control(standin, "DELETE", "/subscriptions/added").status_code == 204
    assert control(standin, "DELETE", "/subscriptions/added").status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/subscriptions/x", {}, "name 'x'"),
        ("/faults", {"status": 418}, "status must be one of"),
        ("/faults", {"kind": "explode"}, "kind must be"),
        ("/faults", {"status": 503, "count": 0}, "count must be"),
    ],
    ids=["short-name", "teapot", "unknown-kind", "zero-count"],
)
def test_the_control_api_refuses_what_it_cannot_do_with_400(
    make_standin: StandInFactory, path: str, body: dict[str, Any], words: str
) -> None:
    """A reason, not a crash."""
    method = "PUT" if path.startswith("/subscriptions") else "POST"
    response = control(make_standin(), method, path, body)
    assert response.status_code == 400
    assert words in response.json()["error"]


def test_the_delivery_and_publish_logs_are_served_and_cleared(
    make_standin: StandInFactory, queue_prefix: str
) -> None:
    """GET/DELETE /_eventgrid/publishes and /_eventgrid/deliveries."""
    standin = make_standin([subscription("logged", f"{queue_prefix}-q")])
    raw_publish(standin)
    assert standin.wait_for_deliveries(20)
    assert [e["eventIds"] for e in control(standin, "GET", "/publishes").json()] == [["E1"]]
    only = control(standin, "GET", "/deliveries?subscription=logged").json()
    assert [d["eventId"] for d in only] == ["E1"]
    assert control(standin, "GET", "/deliveries?subscription=other").json() == []
    control(standin, "DELETE", "/publishes")
    control(standin, "DELETE", "/deliveries")
    assert control(standin, "GET", "/publishes").json() == []
    assert control(standin, "GET", "/deliveries").json() == []
    assert control(standin, "POST", "/wait", {"timeout": 1}).json() == {"idle": True}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"destination": {"endpointType": "WebHook"}}, "must be StorageQueue"),
        (
            {"destination": {"endpointType": "StorageQueue", "properties": {"queueName": "Bad_Q"}}},
            "not a queue name",
        ),
        (
            {
                "destination": {
                    "endpointType": "StorageQueue",
                    "properties": {"queueName": "qqq", "queueMessageTimeToLiveInSeconds": 0},
                }
            },
            "positive number of seconds or -1",
        ),
        (
            {
                "filter": {
                    "advancedFilters": [
                        {"operatorType": "NumberIn", "key": "data.n", "values": [1]}
                    ]
                }
            },
            "not supported",
        ),
        ({"filter": {"includedEventTypes": "onboarding.user.licensed"}}, "list of types"),
        ({"eventDeliverySchema": "EventGridSchema"}, "CloudEventSchemaV1_0"),
        ({"retryPolicy": {"maxDeliveryAttempts": 31}}, "1 to 30"),
    ],
    ids=[
        "webhook",
        "queue-name",
        "ttl-zero",
        "number-filter",
        "types-not-list",
        "schema",
        "attempts",
    ],
)
def test_a_subscription_the_stand_in_cannot_honour_is_refused_when_created(
    change: dict[str, Any], words: str
) -> None:
    """Refused at once with the reason, rather than silently delivering something else."""
    document = {**subscription("valid-name", "valid-queue"), **change}
    with pytest.raises(SubscriptionError, match=words):
        parse_subscription(document)
