"""Deliveries of the stand-in: each subscription's filters decide, each event becomes one
base64-encoded queue message holding the bytes the publisher sent, with the
subscription's time to live, and a failed delivery is tried again like Event Grid does."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.core.credentials import AzureKeyCredential
from azure.eventgrid import EventGridPublisherClient
from azure.storage.queue import QueueServiceClient

from local_stack.event_grid import EventGridStandIn
from tests.event_grid.standin_support import (
    StandInFactory,
    queue_events,
    queue_texts,
    subscription,
)

pytestmark = pytest.mark.stack

BATCH = "application/cloudevents-batch+json; charset=utf-8"


def event(event_id: str, event_type: str, subject: str | None, **data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/user-onboarding",
        "type": event_type,
        "data": data,
    }
    if subject is not None:
        out["subject"] = subject
    return out


def publish(standin: EventGridStandIn, events: list[dict[str, Any]]) -> None:
    with EventGridPublisherClient(standin.endpoint, AzureKeyCredential(standin.key)) as client:
        client.send(events)
    assert standin.wait_for_deliveries(20)


def ids(queues: QueueServiceClient, queue: str) -> list[str]:
    return [e["id"] for e in queue_events(queues, queue)]


def test_each_event_is_one_base64_message_holding_the_bytes_the_publisher_sent(
    make_standin: StandInFactory, queues: QueueServiceClient, queue_prefix: str
) -> None:
    """Event Grid's queue encoding: base64 of the event's JSON, one event per message; the
    spacing and key order the publisher chose are kept."""
    queue = f"{queue_prefix}-q"
    standin = make_standin([subscription("everything", queue)])
    first = '{"type":"a.b","specversion":"1.0","id":"E1","source":"/s","data":{"x":"\\u00e9"}}'
    second = '{ "id" : "E2", "source": "/s", "specversion": "1.0", "type": "a.c" }'
    body = f" [ {first} ,\n {second} ] "
    response = httpx.post(
        f"{standin.endpoint}?api-version=2018-01-01",
        content=body.encode(),
        headers={"aeg-sas-key": standin.key, "Content-Type": BATCH},
        timeout=10,
    )
    assert response.status_code == 200
    assert standin.wait_for_deliveries(20)
    texts = queue_texts(queues, queue)
    assert [base64.b64decode(t, validate=True).decode() for t in texts] == [first, second]


def test_every_subscription_gets_its_own_copy(
    make_standin: StandInFactory, queues: QueueServiceClient, queue_prefix: str
) -> None:
    """Fan-out: two subscriptions without filters each get every event."""
    standin = make_standin(
        [subscription("first", f"{queue_prefix}-1"), subscription("second", f"{queue_prefix}-2")]
    )
    publish(standin, [event("A", "t.one", "S"), event("B", "t.two", "S")])
    assert ids(queues, f"{queue_prefix}-1") == ["A", "B"]
    assert ids(queues, f"{queue_prefix}-2") == ["A", "B"]
    assert {d["status"] for d in standin.deliveries()} == {"delivered"}


def test_included_event_types_match_the_type_exactly_and_case_insensitively(
    make_standin: StandInFactory, queues: QueueServiceClient, queue_prefix: str
) -> None:
    """Only the listed types; 'onboarding.user.licensed' is not a prefix match."""
    queue = f"{queue_prefix}-q"
    types = ["Onboarding.User.Licensed", "onboarding.user.failed"]
    standin = make_standin([subscription("phones", queue, includedEventTypes=types)])
    publish(
        standin,
        [
            event("1", "onboarding.user.licensed", "HR-1"),
            event("2", "onboarding.user.licensed.extra", "HR-2"),
            event("3", "onboarding.user.awaiting_sync", "HR-3"),
            event("4", "onboarding.user.failed", "HR-4"),
        ],
    )
    assert ids(queues, queue) == ["1", "4"]


@pytest.mark.parametrize(
    ("filters", "delivered"),
    [
        ({"subjectBeginsWith": "hr-"}, ["1", "2"]),
        ({"subjectBeginsWith": "hr-", "isSubjectCaseSensitive": True}, []),
        ({"subjectEndsWith": "-9"}, ["2"]),
        ({"subjectBeginsWith": "HR-", "subjectEndsWith": "1"}, ["1"]),
        ({"subjectBeginsWith": ""}, ["1", "2", "3"]),
    ],
    ids=["begins", "case-sensitive", "ends", "both", "empty"],
)
def test_subject_filters_are_prefix_and_suffix_matches(
    make_standin: StandInFactory,
    queues: QueueServiceClient,
    queue_prefix: str,
    filters: dict[str, Any],
    delivered: list[str],
) -> None:
    """Case-insensitive unless asked; an event without a subject fails a subject filter."""
    queue = f"{queue_prefix}-q"
    standin = make_standin([subscription("subjects", queue, **filters)])
    publish(standin, [event("1", "t", "HR-1"), event("2", "t", "HR-2-9"), event("3", "t", None)])
    assert ids(queues, queue) == delivered


def test_string_advanced_filters_look_into_data(
    make_standin: StandInFactory, queues: QueueServiceClient, queue_prefix: str
) -> None:
    """StringIn on data.reason.code, AND-ed with a StringNotIn on the type."""
    queue = f"{queue_prefix}-q"
    advanced = [
        {"operatorType": "StringIn", "key": "data.reason.code", "values": ["NO_SEATS"]},
        {"operatorType": "StringNotIn", "key": "type", "values": ["onboarding.user.failed"]},
    ]
    standin = make_standin([subscription("seats", queue, advancedFilters=advanced)])
    publish(
        standin,
        [
            event("1", "onboarding.user.blocked", "HR-1", reason={"code": "no_seats"}),
            event("2", "onboarding.user.blocked", "HR-2", reason={"code": "poisoned"}),
            event("3", "onboarding.user.failed", "HR-3", reason={"code": "no_seats"}),
            event("4", "onboarding.user.licensed", "HR-4"),
        ],
    )
    assert ids(queues, queue) == ["1"]


@pytest.mark.parametrize(
    ("ttl", "lives"),
    [(-1, timedelta(days=3650)), (300, timedelta(seconds=300)), (None, timedelta(days=7))],
    ids=["never", "five-minutes", "queue-default"],
)
def test_messages_live_as_long_as_the_subscription_says(
    make_standin: StandInFactory,
    queues: QueueServiceClient,
    queue_prefix: str,
    ttl: int | None,
    lives: timedelta,
) -> None:
    """queueMessageTimeToLiveInSeconds: -1 never expires, absent is the queue's 7 days."""
    queue = f"{queue_prefix}-q"
    options = {} if ttl is None else {"ttl": ttl}
    standin = make_standin([subscription("ttl", queue, **options)])
    publish(standin, [event("1", "t", "S")])
    (message,) = queues.get_queue_client(queue).peek_messages()
    lived = message.expires_on - message.inserted_on
    if ttl == -1:
        assert lived > lives
    else:
        assert abs(lived - lives) <= timedelta(seconds=2)


def test_a_delivery_to_a_missing_queue_is_tried_again_until_the_queue_exists(
    make_standin: StandInFactory, queues: QueueServiceClient, queue_prefix: str
) -> None:
    """Event Grid retries a failed delivery on its schedule: nothing is lost meanwhile."""
    queue = f"{queue_prefix}-late"
    standin = make_standin([subscription("late", queue)], create_queues=False, retry_scale=0.02)
    with EventGridPublisherClient(standin.endpoint, AzureKeyCredential(standin.key)) as client:
        client.send([event("1", "t", "S")])
    assert not standin.wait_for_deliveries(0.5)  # failing meanwhile
    (pending,) = standin.deliveries("late")
    assert pending["status"] == "pending"
    assert "ResourceNotFoundError" in pending["lastError"]
    queues.create_queue(queue)
    assert standin.wait_for_deliveries(30)
    (done,) = standin.deliveries("late")
    assert done["status"] == "delivered"
    assert done["attempts"] > 1
    assert ids(queues, queue) == ["1"]


def test_a_delivery_that_never_succeeds_is_dropped_after_the_subscriptions_attempts(
    make_standin: StandInFactory, queue_prefix: str
) -> None:
    """maxDeliveryAttempts bounds the retries; without a dead-letter place it is dropped."""
    document = subscription(
        "doomed", f"{queue_prefix}-none", retryPolicy={"maxDeliveryAttempts": 2}
    )
    standin = make_standin([document], create_queues=False, retry_scale=0.01)
    publish(standin, [event("1", "t", "S")])
    (dropped,) = standin.deliveries("doomed")
    assert dropped["status"] == "dropped"
    assert dropped["attempts"] == 2


def test_events_published_before_a_subscription_exists_are_not_delivered_to_it(
    make_standin: StandInFactory, queues: QueueServiceClient, queue_prefix: str
) -> None:
    """A subscription sees what is published after it was created, as in Event Grid."""
    queue = f"{queue_prefix}-q"
    queues.create_queue(queue)
    standin = make_standin()
    publish(standin, [event("before", "t", "S")])
    standin.add_subscription(subscription("newcomer", queue))
    publish(standin, [event("after", "t", "S")])
    assert ids(queues, queue) == ["after"]


def test_the_delivery_log_names_subscription_queue_event_and_outcome(
    make_standin: StandInFactory, queue_prefix: str
) -> None:
    """What `GET /_eventgrid/deliveries` shows for a delivered event."""
    standin = make_standin([subscription("logged", f"{queue_prefix}-q")])
    publish(standin, [event("HR-1:licensed", "onboarding.user.licensed", "HR-1")])
    (record,) = standin.deliveries()
    assert record["subscription"] == "logged"
    assert record["queue"] == f"{queue_prefix}-q"
    assert record["eventId"] == "HR-1:licensed"
    assert record["type"] == "onboarding.user.licensed"
    assert record["subject"] == "HR-1"
    assert record["status"] == "delivered"
    delivered = datetime.fromisoformat(record["deliveredAt"])
    assert abs(datetime.now(UTC) - delivered) < timedelta(minutes=5)
    assert json.dumps(record)  # plain JSON for the control API
