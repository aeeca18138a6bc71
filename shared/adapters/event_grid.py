"""The Event Grid publisher (contract v1.2, "Events to every consumer"): with
`EVENT_GRID_TOPIC_ENDPOINT` set, every event also goes to that custom topic (CloudEvents
1.0 input schema), byte for byte the JSON the events queue gets (`Event.serialize()`).

**Why a raw request.** azure-eventgrid's `EventGridPublisherClient.send` re-serializes what
it is given: a dict becomes an azure-core `CloudEvent` and back, with its keys reordered,
spaces added, and `time` rewritten (`...10:15:02Z` becomes `...10:15:02.000Z`), so the
topic would carry other bytes than the queue. The adapter sends its own request instead,
`[<Event.serialize()>]` as `application/cloudevents-batch+json; charset=utf-8`, through the
client's own pipeline: its credential policy (the managed identity's token, scope
`https://eventgrid.azure.net/.default`), retry, redirect-header and logging policies.

**Why the inner client.** In azure-eventgrid 4.22.1 (pinned), for a basic topic the public
client wraps a legacy one: its `send_request` fails (`AttributeError: ... '_config'`, it
is written for namespaces) and its constructor drops keyword arguments (retry and
transport settings). So the pipeline is reached through the generated client inside
(`_pipeline_client`, checked against the pin by the tests), and the retries are tuned per
call, which azure-core reads from each request's options.

**Retries, for a serverless host.** Few and short (`SERVERLESS_RETRY`): three attempts
within 20 s at most; POST included (azure-core retries POST only on 500/503/504 answers by
default, never on a dropped connection), since publishing twice is harmless: delivery is
at least once and consumers deduplicate on `id`. A `Retry-After` longer than 2 s is not
slept on (the SDK would sleep it whole, however long): that attempt gives up at once, and
the app's own machinery publishes again later.

**Errors**, translated here and nowhere else (`_failure`), each logged once as a
telemetry record (`shared/telemetry.py`) with `status` (0: no answer), `errorCode`,
`requestId` (the event's subject) and `eventId`:
- no answer, timeouts, 408, 429, 5xx, and 404 (the topic not found: a wrong endpoint or a
  topic not yet created, logged as an ERROR) -> `EventGridUnavailable`: transient;
  `events.topic_unavailable`, `accessDenied=false`;
- 401/403, or no token to be had -> `EventGridUnavailable(access_denied=True)`, logged as
  an ERROR naming the role EventGrid Data Sender the app's identity needs on the topic;
  transient but loud, like Graph's access denied; `events.topic_unavailable`,
  `accessDenied=true`;
- 400, 413 and any other 4xx -> `EventGridRejected`, logged as an ERROR with Event Grid's
  code and message: the app sent something Event Grid refuses, a bug, since every event is
  a CloudEvent of at most 48 KiB; sending the same bytes again cannot help;
  `events.topic_rejected`.
What becomes of the event then is the outbox's business (`shared/service/outbox.py`).

Locally, an `http://` endpoint (loopback only, checked by the settings and again here)
gets the fixed development key `LOCAL_EVENT_GRID_KEY` in `aeg-sas-key`: azure-core refuses
to send a bearer token over plain http ("Bearer token authentication is not permitted for
non-TLS protected (non-https) URLs").
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.core.rest import HttpRequest, HttpResponse
from azure.eventgrid import EventGridPublisherClient

from shared.domain.errors import EventGridRejected, EventGridUnavailable, OnboardingError
from shared.domain.events import Event
from shared.domain.personal import redact
from shared.settings import LOCAL_EVENT_GRID_KEY, is_loopback
from shared.telemetry import TelemetryEvent, emit

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline import PipelineResponse

API_VERSION: Final = "2018-01-01"  # azure-eventgrid 4.22.1's for a basic topic
CONTENT_TYPE: Final = "application/cloudevents-batch+json; charset=utf-8"
ROLE: Final = "EventGrid Data Sender"
MAX_RETRY_AFTER: Final = 2.0
SERVERLESS_RETRY: Final[Mapping[str, Any]] = {
    "retry_total": 2,
    "retry_connect": 2,
    "retry_read": 2,
    "retry_status": 2,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 2,
    "retry_on_methods": frozenset({"POST"}),
    "timeout": 20,  # seconds, across every attempt
    "connection_timeout": 5,
    "read_timeout": 10,
}


class EventGridSink:
    """An `EventSink` publishing each event, alone, to an Event Grid topic."""

    def __init__(
        self,
        endpoint: str,
        credential: AzureKeyCredential | TokenCredential,
        *,
        retry: Mapping[str, Any] = SERVERLESS_RETRY,
        identity: str | None = None,
    ) -> None:
        """`endpoint`: the topic endpoint (`.../api/events`); `identity`: the managed
        identity's client id, named in the logs when Event Grid refuses it."""
        parts = urlsplit(endpoint)
        if parts.scheme != "https" and not isinstance(credential, AzureKeyCredential):
            # azure-core would refuse it on every call; say so once, now.
            raise ValueError("a token credential needs an https:// Event Grid endpoint")
        if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            raise ValueError("an http:// Event Grid endpoint must be a loopback address")
        self.endpoint = endpoint
        self._host = parts.hostname or endpoint
        self._identity = identity
        self._retry = dict(retry)
        self._client = EventGridPublisherClient(endpoint, credential)
        self._pipeline = _pipeline_client(self._client)

    @classmethod
    def connect(cls, endpoint: str, *, client_id: str | None = None) -> EventGridSink:
        """The sink for the app's setting: the managed identity for https (as the Graph
        client gets it), the fixed development key for a loopback http stand-in."""
        if urlsplit(endpoint).scheme == "http":
            return cls(endpoint, AzureKeyCredential(LOCAL_EVENT_GRID_KEY))
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=client_id)
        return cls(endpoint, credential, identity=client_id)

    async def publish(self, event: Event) -> None:
        """Publish `event`; EventGridUnavailable or EventGridRejected when the topic did not
        take it."""
        await asyncio.to_thread(self.send, event)

    def send(self, event: Event) -> None:
        """`publish`, blocking (the SDK's pipeline is synchronous)."""
        body = ("[" + event.serialize() + "]").encode("ascii")  # serialize() is ASCII
        request = HttpRequest(
            "POST",
            self.endpoint,
            params={"api-version": API_VERSION},
            headers={"Content-Type": CONTENT_TYPE},
            content=body,
        )
        try:
            response: HttpResponse = self._pipeline.send_request(
                request, raw_response_hook=_short_retry_after, **self._retry
            )
        except ClientAuthenticationError as exc:
            raise self._failure(event, 0, "NoToken", _first_line(exc)) from exc
        except AzureError as exc:
            raise self._failure(event, 0, type(exc).__name__, _first_line(exc)) from exc
        if 200 <= response.status_code < 300:
            return
        code, message = _error_of(response)
        raise self._failure(event, response.status_code, code, message)

    def _failure(self, event: Event, status: int, code: str, message: str) -> OnboardingError:
        """Event Grid's answer (or its absence) in the app's error tree, logged once."""
        where = f"Event Grid topic {self._host}"
        # Event Grid's words may quote what it was sent: never an identifier in the logs.
        said = redact(f"{status or 'no answer'} {code}: {message}".strip())
        fields = {"status": status, "errorCode": code, "requestId": event.subject}
        if status in (401, 403) or (status == 0 and code == "NoToken"):
            return self._denied(event, where, said, status, code)
        if status == 0 or status in (404, 408, 429) or status >= 500:
            hint = " (check EVENT_GRID_TOPIC_ENDPOINT)" if status == 404 else ""
            emit(
                TelemetryEvent.EVENTS_TOPIC_UNAVAILABLE,
                "%s did not take event %s: %s%s; it waits for the sweep",
                where,
                event.id,
                said,
                hint,
                level=logging.ERROR if status == 404 else logging.WARNING,
                eventId=event.id,
                accessDenied=False,
                **fields,
            )
            return EventGridUnavailable(f"{where}: {said}{hint}", status=status, code=code)
        emit(
            TelemetryEvent.EVENTS_TOPIC_REJECTED,
            "%s refused event %s as invalid (%s): a bug, the same bytes would be refused again",
            where,
            event.id,
            said,
            level=logging.ERROR,
            eventId=event.id,
            **fields,
        )
        return EventGridRejected(
            f"{where} refused event {event.id}: {said}", status=status, code=code
        )

    def _denied(
        self, event: Event, where: str, said: str, status: int, code: str
    ) -> EventGridUnavailable:
        """401/403, or no token: transient but loud, naming the role the identity needs."""
        who = f"the managed identity {self._identity}" if self._identity else "the app's identity"
        emit(
            TelemetryEvent.EVENTS_TOPIC_UNAVAILABLE,
            "%s refused %s (%s): grant it the role %s on the topic; event %s waits",
            where,
            who,
            said,
            ROLE,
            event.id,
            level=logging.ERROR,
            status=status,
            errorCode=code,
            requestId=event.subject,
            eventId=event.id,
            accessDenied=True,
            role=ROLE,
        )
        return EventGridUnavailable(
            f"{where} refused the app ({said}); it needs the role {ROLE}",
            status=status,
            code=code,
            access_denied=True,
        )

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def _pipeline_client(client: EventGridPublisherClient) -> Any:
    """The generated client under the public one, whose `send_request` runs the client's
    pipeline (module docstring: why)."""
    inner = getattr(getattr(client, "_client", None), "_client", None)
    if inner is None or not callable(getattr(inner, "send_request", None)):
        raise RuntimeError(
            "azure-eventgrid's EventGridPublisherClient no longer holds a generated client "
            "with send_request (written for azure-eventgrid 4.22.1, see requirements.txt)"
        )
    return inner


def _short_retry_after(response: PipelineResponse[Any, Any]) -> None:
    """Drop a Retry-After longer than MAX_RETRY_AFTER before the retry policy sleeps on it:
    the attempt then backs off briefly instead (a serverless host does not wait minutes)."""
    headers = response.http_response.headers
    value = headers.get("Retry-After")
    if value is None:
        return
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.inf  # an HTTP date: some time away
    if seconds > MAX_RETRY_AFTER:
        del headers["Retry-After"]


def _error_of(response: HttpResponse) -> tuple[str, str]:
    """Event Grid's `{"error": {"code", "message"}}`, or the status line's words."""
    try:
        error = json.loads(response.text())["error"]
        return str(error.get("code") or ""), str(error.get("message") or "")[:500]
    except (ValueError, KeyError, TypeError, AttributeError):
        return str(response.reason or ""), response.text()[:200]


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:300]
