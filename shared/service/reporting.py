"""The structured records the use cases log (`shared.telemetry`): one `request.outcome` per
message handled, and the ERROR that names a missing Graph permission."""

from __future__ import annotations

import logging
from enum import StrEnum

from shared.decisions import access_denied_message
from shared.domain.codes import EventType
from shared.domain.errors import GraphError
from shared.domain.events import Event
from shared.domain.personal import redact
from shared.telemetry import TelemetryEvent, emit


class Handled(StrEnum):
    """What became of one message besides its request's status (`request.outcome`'s
    `outcome`, and the sweep's counts)."""

    REDELIVERED = "redelivered"  # its request was decided: the outcome published again
    DUPLICATE = "duplicate"  # its request is in the hands of another delivery
    REJECTED = "rejected"
    REPLAYED = "replayed"  # a pending copy of a decided request: published, acknowledged
    LEASE_LOST = "lease_lost"  # another sweep received it meanwhile
    SET_ASIDE = "set_aside"
    POISON_HELD = "poison_held"
    POISON_OF_A_PARKED_REQUEST = "poison_of_a_parked_request"
    POISON_OF_A_DECIDED_REQUEST = "poison_of_a_decided_request"
    POISON_REPORTED = "poison_reported"
    REPLAYED_MEANWHILE = "replayed_meanwhile"  # an operator took it from the hold first


def outcome_name(event: Event) -> str:
    """`licensed`, `rejected`, or `failed:<code>`."""
    word = event.type.word
    code = event.reason_code
    return f"{word}:{code}" if event.type == EventType.FAILED and code else word


def report(outcome: str, *, request_id: str | None, message_id: str, trigger: str) -> None:
    """One `request.outcome` record per message handled (and per sweep item)."""
    word, _, code = outcome.partition(":")
    emit(
        TelemetryEvent.REQUEST_OUTCOME,
        "request %s (message %s): %s",
        request_id or "-",
        message_id,
        outcome,
        requestId=request_id,
        queueMessageId=message_id,
        outcome=word,
        reasonCode=code or None,
        trigger=trigger,
    )


def log_access_denied(request_id: str, error: GraphError) -> None:
    """An ERROR naming the refused call and the permission it needs: someone must act."""
    emit(
        TelemetryEvent.GRAPH_ACCESS_DENIED,
        "Graph access denied for request %s: %s (Graph said: %s %s %s)",
        request_id,
        access_denied_message(error),
        error.status,
        error.code,
        redact(error.graph_message),
        level=logging.ERROR,
        requestId=request_id,
        call=error.call,
        permission=error.call.permission,
        status=error.status,
        kind=error.kind,
    )
