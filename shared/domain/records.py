"""What the app's stores hand back: a received queue message, and the request ledger's
records (decided outcomes, progress, messages set aside). Plain data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.domain.codes import RequestStatus
from shared.domain.events import Event


@dataclass(frozen=True)
class QueuedMessage:
    """A message received from a queue: enough to update or delete it later."""

    id: str
    pop_receipt: str
    content: str
    dequeue_count: int = 1


@dataclass(frozen=True)
class Decided:
    """A terminal outcome, recorded before it is published: a replay publishes this event
    again instead of deciding anew (guarantee 7). `by` is the queue message that decided."""

    event: Event
    by: str


@dataclass(frozen=True)
class Progress:
    """What the ledger shows of a request that is not finished (the operators' view)."""

    status: RequestStatus  # received | scheduled | waiting | blocked
    parked: bool  # a pending message holds the request's state
    deadline: datetime | None = None
    next_check_at: datetime | None = None
    not_before: datetime | None = None
    last_seen: str | None = None
    last_error: Mapping[str, Any] | None = None
    user_id: str | None = None
    sent: Mapping[str, datetime] = field(default_factory=dict)  # event type word -> time
    reason: Mapping[str, str] | None = None  # why it is blocked, as `data.reason` said


@dataclass(frozen=True)
class RequestRecord:
    """One request as the ledger knows it."""

    request_id: str
    owner: str  # the queue message that opened it (its first valid delivery); "" if none yet
    received_at: datetime
    progress: Progress
    decided: Decided | None = None
    # `shared.domain.fingerprint` of the valid request that opened it (None: an invalid
    # message's claim, or a row older than contract v1.2), and the application id of the
    # HTTP caller that posted it (None: it came through the queue).
    fingerprint: str | None = None
    submitted_by: str | None = None

    @property
    def status(self) -> RequestStatus:
        return RequestStatus(self.decided.event.type.word) if self.decided else self.progress.status


class MessageSource(StrEnum):
    """The queue a message set aside came from."""

    POISON = "poison"  # user-onboard-poison: the Functions host gave up on it
    PENDING = "pending"  # user-onboard-pending: the app could not read or handle it


class SetAsideStatus(StrEnum):
    """Where a message set aside stands (see `SetAside`)."""

    HELD = "held"
    REPORTING = "reporting"
    REPORTED = "reported"
    REPLAYING = "replaying"  # an operator took it from the hold; not re-posted yet
    REPLAYED = "replayed"
    KEPT = "kept"


@dataclass(frozen=True)
class SetAside:
    """A queue message the app could not handle, kept for operators (never lost).

    `status`: `held` (a poisoned message waiting out POISON_HOLD: an operator may replay
    it), `reporting` then `reported` (its request was answered `rejected`/`poison`),
    `replaying` then `replayed` (an operator posted it again), or `kept` (its request
    needs no answer from it: decided already, or alive on the pending queue)."""

    source: MessageSource
    message_id: str
    content: str
    reason: str
    request_id: str | None = None
    status: SetAsideStatus = SetAsideStatus.KEPT
    hold_until: datetime | None = None
    set_aside_at: datetime | None = None
    etag: str | None = None  # the stored row's version, for a conditional change


@dataclass(frozen=True)
class ParkedOverview:
    """How many requests are parked and the earliest deadline among them."""

    count: int
    oldest_deadline: datetime | None


@dataclass(frozen=True)
class IntakeBacklog:
    """The head of `user-onboard` as a peek sees it: when the oldest visible message was
    put there (None: nothing waiting) and the queue's approximate message count."""

    oldest_inserted_at: datetime | None
    approximate_count: int


@dataclass(frozen=True)
class Expired:
    """What one pass of the ledger's retention deleted: `requests` (everything the ledger
    held about each), `rows` (table rows deleted, theirs and set-aside messages of no
    request), `kept` (index entries looked at and left: still in use, or not published)."""

    requests: int = 0
    rows: int = 0
    kept: int = 0

    def __add__(self, other: Expired) -> Expired:
        return Expired(
            self.requests + other.requests, self.rows + other.rows, self.kept + other.kept
        )
