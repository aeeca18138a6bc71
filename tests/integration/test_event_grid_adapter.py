"""The Event Grid publisher adapter against the stand-in over HTTP, on the local stack: each
consumer's queue gets exactly `Event.serialize()`, and every way the topic can fail is
translated into the app's error tree (transient, access denied, or a bug)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.pipeline.policies import RetryPolicy
from azure.eventgrid import EventGridPublisherClient

from local_stack.event_grid import EventGridStandIn
from local_stack.stack import LocalStack
from shared.adapters.event_grid import (
    CONTENT_TYPE,
    ROLE,
    SERVERLESS_RETRY,
    EventGridSink,
    _pipeline_client,
)
from shared.domain.codes import EventType, LicenseStatus, RejectionCode
from shared.domain.errors import EventGridRejected, EventGridUnavailable, FieldError
from shared.domain.events import (
    Event,
    LicenseOutcome,
    Reason,
    Subject,
    awaiting_sync_event,
    licensed_event,
    rejected_event,
)
from shared.settings import Settings

pytestmark = pytest.mark.stack

SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"
NOW = datetime(2026, 11, 24, 10, 15, 2, tzinfo=UTC)
FAST = {**SERVERLESS_RETRY, "retry_backoff_factor": 0.01}
JANE = Subject("HR-EG-1", "jane.doe@contoso.com", "5b1c6c5e-0d55-4b8e-9f4e-1a2b3c4d5e01")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    directory = json.loads((SAMPLES / "directory.json").read_text())
    with LocalStack(
        tmp_path_factory.mktemp("event-grid-stack"), directory, event_grid=True
    ) as running:
        yield running


@pytest.fixture
def grid(stack: LocalStack) -> Iterator[EventGridStandIn]:
    """The stack's stand-in, with clean logs and consumer queues, and no fault left over."""
    assert stack.event_grid is not None
    for name in ("hr-system", "telephony"):
        stack.consumer_messages(name)
    stack.event_grid.clear_faults()
    stack.event_grid.topic.clear_log()
    yield stack.event_grid
    stack.event_grid.clear_faults()


@pytest.fixture
def sink(grid: EventGridStandIn) -> Iterator[EventGridSink]:
    made = EventGridSink(grid.endpoint, AzureKeyCredential(grid.key), retry=FAST)
    yield made
    made.close()


def licensed() -> Event:
    return licensed_event(
        JANE,
        NOW,
        licenses=[
            LicenseOutcome("MCOEV", "e43b5b99-8dfb-405f-9987-dc307f34bcbd", LicenseStatus.ASSIGNED)
        ],
        usage_location="FR",
    )


def statuses(grid: EventGridStandIn) -> list[int]:
    return [entry["status"] for entry in grid.publishes()]


def delivered(stack: LocalStack, grid: EventGridStandIn, consumer: str) -> list[str]:
    assert grid.wait_for_deliveries(20)
    return stack.consumer_messages(consumer)


def test_each_consumer_gets_byte_for_byte_what_the_events_queue_gets(
    stack: LocalStack, grid: EventGridStandIn, sink: EventGridSink
) -> None:
    """hr-system takes every event, telephony only licensed/failed/provisioning."""
    waiting = awaiting_sync_event(
        JANE, NOW, last_seen=cast(Any, "not_found"), next_check=NOW, deadline=NOW
    )
    asyncio.run(sink.publish(waiting))
    asyncio.run(sink.publish(licensed()))
    assert delivered(stack, grid, "hr-system") == [waiting.serialize(), licensed().serialize()]
    assert stack.consumer_messages("telephony") == [licensed().serialize()]


def test_hostile_text_reaches_the_consumer_unchanged(
    stack: LocalStack, grid: EventGridStandIn, sink: EventGridSink
) -> None:
    """A rejected message's echo (control characters, a lone surrogate, markup, non-ASCII)
    arrives as the same printable ASCII JSON."""
    hostile = "\x00\x1b[31m</QueueMessage>\ud800 é 日本 \u2028" * 20
    event = rejected_event(
        NOW,
        reason=Reason(RejectionCode.POISON, hostile),
        request_id="HR-EG-2",
        message_id="m-1",
        errors=[FieldError(hostile, "unknown field")],
        details={"originalMessage": hostile},
    )
    asyncio.run(sink.publish(event))
    (text,) = delivered(stack, grid, "hr-system")
    assert text == event.serialize()
    assert json.loads(text)["data"]["originalMessage"].startswith("\x00\x1b[31m</QueueMessage>")


def test_the_request_is_a_one_event_cloudevents_batch_with_the_key(
    grid: EventGridStandIn, sink: EventGridSink
) -> None:
    """Content type, credential and size are those of `[` + serialize() + `]`."""
    event = licensed()
    asyncio.run(sink.publish(event))
    (entry,) = grid.publishes()
    assert entry["contentType"] == CONTENT_TYPE
    assert entry["credential"] == "key"
    assert entry["eventIds"] == [event.id]
    assert entry["bytes"] == len(event.serialize()) + 2


def test_a_topic_that_does_not_answer_is_unavailable_with_no_status(
    grid: EventGridStandIn, sink: EventGridSink
) -> None:
    """Connection refused: transient, status 0, not an access problem."""
    grid.go_down()
    try:
        with pytest.raises(EventGridUnavailable) as down:
            asyncio.run(sink.publish(licensed()))
    finally:
        grid.come_up()
    assert down.value.status == 0
    assert not down.value.access_denied


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_until_the_retries_run_out_is_unavailable_with_that_status(
    grid: EventGridStandIn, sink: EventGridSink, status: int
) -> None:
    """Three attempts (the serverless tuning), then EventGridUnavailable."""
    grid.outage(status)
    with pytest.raises(EventGridUnavailable) as out:
        asyncio.run(sink.publish(licensed()))
    assert out.value.status == status
    assert statuses(grid) == [status] * 3


def test_a_few_5xx_are_absorbed_by_the_pipelines_retries(
    stack: LocalStack, grid: EventGridStandIn, sink: EventGridSink
) -> None:
    """Two 503s then the event is taken, within one publish."""
    grid.add_fault({"status": 503}, count=2)
    asyncio.run(sink.publish(licensed()))
    assert statuses(grid) == [503, 503, 200]
    assert delivered(stack, grid, "hr-system") == [licensed().serialize()]


def test_a_dropped_connection_is_retried_since_publishing_twice_is_harmless(
    grid: EventGridStandIn, sink: EventGridSink
) -> None:
    """azure-core does not retry a POST whose connection dropped; the adapter asks it to."""
    grid.add_fault({"kind": "drop"})
    asyncio.run(sink.publish(licensed()))
    assert statuses(grid) == [0, 200]


def test_a_long_retry_after_is_not_slept_on(grid: EventGridStandIn, sink: EventGridSink) -> None:
    """429 with Retry-After: 3600 gives up after the short retries instead of waiting."""
    grid.add_fault({"status": 429, "retryAfter": 3600}, count=3)
    outcome: list[BaseException] = []

    def publish() -> None:
        try:
            sink.send(licensed())
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=publish, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the publish slept on Retry-After"
    (error,) = outcome
    assert isinstance(error, EventGridUnavailable)
    assert error.status == 429
    assert statuses(grid) == [429, 429, 429]


def test_a_topic_that_stalls_is_unavailable_after_the_read_timeout(
    grid: EventGridStandIn,
) -> None:
    """No answer within read_timeout, three times: transient, status 0."""
    grid.add_fault({"kind": "timeout", "seconds": 3}, count=3)
    sink = EventGridSink(
        grid.endpoint, AzureKeyCredential(grid.key), retry={**FAST, "read_timeout": 0.3}
    )
    with pytest.raises(EventGridUnavailable) as stalled:
        asyncio.run(sink.publish(licensed()))
    assert stalled.value.status == 0
    assert statuses(grid) == [0, 0, 0]


def test_a_refused_key_is_access_denied_and_names_the_role(
    grid: EventGridStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    """401: transient but loud: an ERROR names EventGrid Data Sender, recorded as
    events.topic_unavailable with accessDenied, the status, the request and the event."""
    wrong = EventGridSink(grid.endpoint, AzureKeyCredential("d3Jvbmc="), retry=FAST)
    with (
        caplog.at_level(logging.ERROR, logger="user_onboarding"),
        pytest.raises(EventGridUnavailable) as refused,
    ):
        asyncio.run(wrong.publish(licensed()))
    assert refused.value.access_denied
    assert refused.value.status == 401
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert ROLE in record.getMessage()
    fields = record.__dict__
    assert fields["onboardingEvent"] == "events.topic_unavailable"
    assert (fields["accessDenied"], fields["status"]) == ("true", "401")
    assert (fields["requestId"], fields["eventId"]) == ("HR-EG-1", "HR-EG-1:licensed")


def test_a_topic_whose_rules_refuse_the_app_is_access_denied(
    grid: EventGridStandIn, sink: EventGridSink
) -> None:
    """403 (IP filtering): the same transient, loud answer."""
    grid.deny(403)
    with pytest.raises(EventGridUnavailable) as refused:
        asyncio.run(sink.publish(licensed()))
    assert refused.value.access_denied
    assert refused.value.status == 403


def test_the_stand_in_refuses_the_same_request_without_a_credential(
    grid: EventGridStandIn,
) -> None:
    """Nothing publishes anonymously: the adapter's bytes without its key are a 401."""
    response = httpx.post(
        f"{grid.endpoint}?api-version=2018-01-01",
        content=("[" + licensed().serialize() + "]").encode(),
        headers={"Content-Type": CONTENT_TYPE},
        timeout=10,
    )
    assert response.status_code == 401


def test_a_token_credential_is_never_sent_over_plain_http(grid: EventGridStandIn) -> None:
    """Refused when the sink is made, before azure-core would refuse every call."""

    class Token:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("t", 2**31)

    with pytest.raises(ValueError, match="https"):
        EventGridSink(grid.endpoint, cast(Any, Token()))


@pytest.mark.parametrize(
    ("change", "status"),
    [({"type": ""}, 400), ({"data": {"blob": "x" * (2 * 1024 * 1024)}}, 413)],
    ids=["no-type", "too-large"],
)
def test_an_event_the_topic_refuses_is_a_rejection_not_an_outage(
    grid: EventGridStandIn,
    sink: EventGridSink,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, Any],
    status: int,
) -> None:
    """400/413 are a bug: EventGridRejected with Event Grid's code, logged as an ERROR, and
    sent once (retrying the same bytes cannot help)."""
    base = licensed()
    fields = {"type": base.type, "id": base.id, "time": base.time, "data": base.data, **change}
    event = Event(fields["type"], fields["id"], fields["time"], fields["data"], base.subject)
    with (
        caplog.at_level(logging.ERROR, logger="user_onboarding"),
        pytest.raises(EventGridRejected) as refused,
    ):
        asyncio.run(sink.publish(event))
    assert refused.value.status == status
    assert refused.value.code in ("BadRequest", "RequestEntityTooLarge")
    assert statuses(grid) == [status]
    (record,) = [r for r in caplog.records if r.__dict__.get("onboardingEvent")]
    assert record.__dict__["onboardingEvent"] == "events.topic_rejected"
    assert (record.__dict__["status"], record.__dict__["eventId"]) == (str(status), event.id)


def test_a_wrong_endpoint_is_unavailable_and_loud(
    grid: EventGridStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    """404: the topic is not there (a wrong setting, or not yet created): an ERROR, recorded
    as events.topic_unavailable without accessDenied."""
    wrong = grid.endpoint.replace("/api/events", "/api/evnts")
    sink = EventGridSink(wrong, AzureKeyCredential(grid.key), retry=FAST)
    with (
        caplog.at_level(logging.WARNING, logger="user_onboarding"),
        pytest.raises(EventGridUnavailable) as missing,
    ):
        asyncio.run(sink.publish(licensed()))
    assert missing.value.status == 404
    (record,) = [r for r in caplog.records if r.__dict__.get("onboardingEvent")]
    assert record.levelno == logging.ERROR
    assert "EVENT_GRID_TOPIC_ENDPOINT" in record.getMessage()
    assert record.__dict__["onboardingEvent"] == "events.topic_unavailable"
    assert (record.__dict__["status"], record.__dict__["accessDenied"]) == ("404", "false")


def test_the_stack_sets_the_setting_and_connect_publishes_with_the_development_key(
    stack: LocalStack, grid: EventGridStandIn
) -> None:
    """The app's settings read the stand-in's endpoint; connect() picks the local key."""
    settings = Settings.from_env(stack.app_environment())
    assert settings.event_grid_topic_endpoint == grid.endpoint
    sink = EventGridSink.connect(settings.event_grid_topic_endpoint or "")
    asyncio.run(sink.publish(licensed()))
    assert [e["credential"] for e in grid.publishes()] == ["key"]


def test_connect_uses_the_managed_identity_for_https() -> None:
    """No network needed to build it; the token is asked for on the first publish."""
    sink = EventGridSink.connect(
        "https://topic.westeurope-1.eventgrid.azure.net/api/events", client_id="abc"
    )
    assert sink.endpoint.startswith("https://")
    sink.close()


def test_the_sdk_behaviour_the_adapter_works_around_is_still_there(
    stack: LocalStack, grid: EventGridStandIn
) -> None:
    """azure-eventgrid 4.22.1: `send` of the event's dict changes its bytes; the public
    `send_request` fails on a basic topic; the constructor drops retry settings. If an
    upgrade changes one of these, the adapter's workaround can be revisited."""
    client = EventGridPublisherClient(grid.endpoint, AzureKeyCredential(grid.key), retry_total=1)
    event = licensed()
    client.send(json.loads(event.serialize()))
    (text,) = delivered(stack, grid, "hr-system")
    assert text != event.serialize()
    assert json.loads(text)["time"] != json.loads(event.serialize())["time"]
    with pytest.raises(AttributeError):
        client.send_request(cast(Any, None))
    policies = _pipeline_client(client)._client._pipeline._impl_policies
    (retry,) = [
        getattr(p, "_policy", p)
        for p in policies
        if isinstance(getattr(p, "_policy", p), RetryPolicy)
    ]
    assert retry.total_retries == 10
    assert event.type == EventType.LICENSED
