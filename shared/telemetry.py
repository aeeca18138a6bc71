"""Telemetry: structured log records about every request, and metrics.

Every record about a request carries its `requestId`, the queue message id, the outcome
and its reason code as log-record fields (`extra`), plus `onboardingEvent` naming what
happened (`TelemetryEvent`). In Azure, the OpenTelemetry distribution for Azure Monitor
exports the `user_onboarding` logger's records to Application Insights, where each field
is a `customDimensions` entry of `traces` (what the alerts and the workbook in
`infra/modules/alerts.bicep` query), and the counters and histograms below become
`customMetrics`. Locally there is no connection string: records go wherever logging sends
them (the development host's console) and nothing else happens.

The distribution is set up on a background thread so that a cold start does not wait for
its import and setup (ready 0.42 s after process start, when the app's own import takes
0.25 s; its first request ends 0.05 s later than without a connection string: medians of
`make bench`, docs/benchmarks.md); records logged meanwhile are kept in memory and handed
over once it is ready.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import traceback
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from shared.domain.personal import redact

LOGGER: Final = "user_onboarding"
log = logging.getLogger(LOGGER)
_BUFFERED_RECORDS: Final = 10_000
# Libraries that log every request at INFO, which the Functions worker forwards (every
# logger's records) to the host and Application Insights: httpx names each Graph URL
# (/users/jane.doe@contoso.com, $filter=employeeId eq '000123'), personal data; azure-core's
# HTTP logging policy every storage call (requestIds only, but one trace per call).
QUIET_LOGGERS: Final = ("httpx", "httpcore", "azure.core.pipeline.policies.http_logging_policy")
_STACK_CHARACTERS: Final = 6000  # within a customDimensions value (8,192)
_GRAPH_WORD = re.compile(r"[A-Za-z$][A-Za-z0-9.$]*")


class TelemetryEvent(StrEnum):
    """`customDimensions.onboardingEvent` of the app's structured records."""

    REQUEST_OUTCOME = "request.outcome"
    SWEEP_SUMMARY = "sweep.summary"
    GRAPH_ACCESS_DENIED = "graph.access_denied"
    GRAPH_TROUBLE = "graph.trouble"
    POISON_HELD = "poison.held"
    POISON_REPORTED = "poison.reported"
    MESSAGE_SET_ASIDE = "message.set_aside"
    INTAKE_BACKLOG = "intake.backlog"  # v1.2: once per sweep
    # (v1.2) the Event Grid topic did not take an event: unanswered, 404, 429, 5xx, or the
    # app's identity refused (401/403, `accessDenied`); it waits in the outbox for the sweep
    EVENTS_TOPIC_UNAVAILABLE = "events.topic_unavailable"
    # (v1.2) the topic refused an event as such (400, 413, another 4xx): a bug
    EVENTS_TOPIC_REJECTED = "events.topic_rejected"
    HTTP_CALL = "http.call"  # one per call of the HTTP front door: its answer, and who


def emit(
    event: TelemetryEvent,
    message: str,
    *args: object,
    level: int = logging.INFO,
    **dimensions: object,
) -> None:
    """Log `message` with `onboardingEvent=event` and the dimensions (None ones left out;
    values as text: customDimensions are strings), and count it in the metrics."""
    fields = {"onboardingEvent": str(event)}
    fields.update({name: _text(value) for name, value in dimensions.items() if value is not None})
    log.log(level, message, *args, extra=fields)
    _METRICS.record(event, fields)


def failure(error: BaseException, known: Iterable[str] = ()) -> str:
    """An exception as a log may show it: its type and its message, redacted (`known`: the
    personal values of the message at hand)."""
    return f"{type(error).__name__}: {redact(str(error), known)[:500]}"


def stack(error: BaseException, known: Iterable[str] = ()) -> str:
    """Where an exception was raised (its frames: code, not data) and `failure(error)`: what
    a log record carries instead of `exc_info`, whose text would export the exception's
    message (and any chained one's) unredacted."""
    frames = "".join(traceback.format_tb(error.__traceback__))[-_STACK_CHARACTERS:]
    return f"{redact(frames, known)}{failure(error, known)}"


def graph_url_for_telemetry(url: str) -> str:
    """A Graph URL as a dependency may show it: no query (`$filter=employeeId eq ...`), and
    every path segment that is not a Graph word (a UPN, an id) as `{id}`."""
    parts = urlsplit(url)
    segments = []
    for segment in parts.path.split("/"):
        word, paren, _ = segment.partition("(")
        if paren:  # users('$jane@contoso.com')
            segments.append(f"{word}({{id}})")
        else:
            segments.append(segment if not segment or _GRAPH_WORD.fullmatch(word) else "{id}")
    return urlunsplit((parts.scheme, parts.netloc, "/".join(segments), "", ""))


def scrub_span(span: Any, request: Any) -> None:
    """httpx instrumentation's request hook: the span's URL without personal data."""
    url = getattr(request, "url", None)
    if url is None:
        return
    clean = graph_url_for_telemetry(str(url))
    attributes = getattr(span, "attributes", None) or {}
    for key in ("url.full", "http.url"):
        if key in attributes:
            span.set_attribute(key, clean)


async def scrub_span_async(span: Any, request: Any) -> None:
    scrub_span(span, request)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Metrics:
    """OpenTelemetry instruments, once the distribution is ready (no-ops until then)."""

    def __init__(self) -> None:
        self._instruments: dict[str, Any] | None = None

    def install(self) -> None:
        from opentelemetry import metrics

        meter = metrics.get_meter(LOGGER)
        self._instruments = {
            "outcomes": meter.create_counter(
                "onboarding.outcomes", description="Request outcomes by type and reason code"
            ),
            "graph": meter.create_counter(
                "onboarding.graph.errors", description="Graph refusals by kind, status, call"
            ),
            "sweep": meter.create_histogram(
                "onboarding.sweep.duration", unit="s", description="Sweep duration"
            ),
            "pending": meter.create_histogram(
                "onboarding.pending.count", description="Requests parked, seen by each sweep"
            ),
            "oldest": meter.create_histogram(
                "onboarding.pending.oldest_deadline_in",
                unit="s",
                description="Seconds until the earliest deadline of a parked request",
            ),
        }

    def record(self, event: TelemetryEvent, fields: Mapping[str, str]) -> None:
        instruments = self._instruments
        if instruments is None:
            return
        if event == TelemetryEvent.REQUEST_OUTCOME:
            labels = {k: fields[k] for k in ("outcome", "reasonCode", "trigger") if k in fields}
            instruments["outcomes"].add(1, labels)
        elif event in (TelemetryEvent.GRAPH_TROUBLE, TelemetryEvent.GRAPH_ACCESS_DENIED):
            labels = {k: fields[k] for k in ("kind", "status", "call") if k in fields}
            instruments["graph"].add(1, labels)
        elif event == TelemetryEvent.SWEEP_SUMMARY:
            instruments["sweep"].record(float(fields["sweepSeconds"]))
            if "pendingCount" in fields:
                instruments["pending"].record(int(fields["pendingCount"]))
            if "oldestDeadlineInSeconds" in fields:
                instruments["oldest"].record(float(fields["oldestDeadlineInSeconds"]))


_METRICS = _Metrics()


class _Buffer(logging.Handler):
    """Keeps records until the exporter is ready (at most `_BUFFERED_RECORDS`)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < _BUFFERED_RECORDS:
            self.records.append(record)


_configured = False
_ready = threading.Event()


def wait_until_ready(timeout: float) -> bool:
    """Whether the exporter's set-up has finished (or given up) within `timeout` seconds;
    for benchmarks and tests (the app never waits for it)."""
    return _ready.wait(timeout)


def configure(environment: Mapping[str, str] | None = None) -> bool:
    """Export to Application Insights when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set
    (Entra authentication with the app's identity when `APPLICATIONINSIGHTS_AUTHENTICATION_
    STRING` says `Authorization=AAD`, as Bicep sets it). Returns whether it will. Either
    way, the libraries of QUIET_LOGGERS log warnings and errors only."""
    global _configured
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    env = os.environ if environment is None else environment
    connection = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip()
    if not connection or _configured:
        return bool(connection)
    _configured = True
    buffer = _Buffer()
    log.addHandler(buffer)
    log.setLevel(logging.INFO)
    authentication = env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "")
    client_id = env.get("AZURE_CLIENT_ID") or None
    thread = threading.Thread(
        target=_set_up,
        args=(connection, "Authorization=AAD" in authentication, client_id, buffer),
        name="telemetry-setup",
        daemon=True,
    )
    thread.start()
    return True


def _instrument_graph_calls() -> None:
    """Graph calls (httpx) become dependencies, their URLs without UPNs, ids or filters."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(
        request_hook=scrub_span, async_request_hook=scrub_span_async
    )


def _set_up(connection: str, entra: bool, client_id: str | None, buffer: _Buffer) -> None:
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor

        credential = None
        if entra:
            from azure.identity import ManagedIdentityCredential

            credential = ManagedIdentityCredential(client_id=client_id)
        configure_azure_monitor(
            connection_string=connection,
            credential=credential,
            logger_name=LOGGER,
            enable_live_metrics=False,
            instrumentation_options={
                # Nothing here is a web app; httpx is instrumented below, with a hook.
                name: {"enabled": False}
                for name in (
                    "django",
                    "fastapi",
                    "flask",
                    "psycopg2",
                    "requests",
                    "urllib",
                    "httpx",
                )
            },
        )
        _instrument_graph_calls()
        _METRICS.install()
    except Exception:  # telemetry must never stop the app
        logging.getLogger(__name__).exception("Application Insights export could not start")
        log.removeHandler(buffer)
        _ready.set()
        return
    # The distribution's handler is on the logger now: hand it what was logged meanwhile,
    # and stop forwarding to the host's console logger, which would store each record a
    # second time (without its fields) in Application Insights.
    log.removeHandler(buffer)
    log.propagate = False
    for record in buffer.records:
        log.handle(record)
    _ready.set()
