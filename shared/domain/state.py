"""A request's state between checks: what the pending queue message holds (its format
is `shared.domain.pending`'s business) and what every decision of the workflow reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.codes import ForcedSyncStatus, LastSeen, TeamsSeen
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.domain.events import LicenseOutcome
from shared.domain.requests import LicenseRequest, OnboardingRequest


@dataclass(frozen=True)
class LastError:
    """The last Graph failure a request met: what `lastError` reports, and what the
    deadline rule reads (`kind`)."""

    kind: GraphErrorKind
    call: GraphCall
    status: int
    code: str
    message: str
    request_id: str | None = None

    @classmethod
    def of(cls, error: GraphError) -> LastError:
        return cls(
            error.kind, error.call, error.status, error.code, error.graph_message, error.request_id
        )

    def to_json(self) -> dict[str, Any]:
        """The event form (`data.lastError`), also what the pending state stores."""
        out: dict[str, Any] = {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "call": str(self.call),
        }
        if self.request_id:
            out["requestId"] = self.request_id
        return out


@dataclass(frozen=True)
class NumberOrder:
    """The Teams Phone step's assignNumber order. The intent is written to the pending
    queue before the order is sent; the operation id after Graph accepted it. A copy of
    the state with an intent and no operation id (a crash in between, or an answer that
    never came) never orders blindly: the number's own state says whether an order of
    ours is under way or done (`shared.decisions.teams`)."""

    intended_at: datetime
    operation_id: str | None = None


@dataclass(frozen=True)
class TeamsProgress:
    """The Teams Phone step (contract v1.2), from the moment every license is on the user:
    who the user is, what licensing gave (for the events that follow), the step's own
    deadline (`TEAMS_READY_TIMEOUT` from `started_at`), and where the number stands."""

    started_at: datetime
    deadline: datetime
    user_id: str
    user_principal_name: str
    usage_location: str
    licenses: tuple[LicenseOutcome, ...]
    checks: int = 0
    last_seen: TeamsSeen | None = None
    order: NumberOrder | None = None


@dataclass(frozen=True)
class PendingState:
    """A parked request: what the pending queue message holds (an internal format)."""

    request: OnboardingRequest  # licenses and sync_deadline resolved at admission
    received_at: datetime
    checks: int = 0
    # Times the pending message was rewritten: a message received more often than that
    # (its dequeue count) was received before without an outcome (a crash, an error).
    receipts: int = 0
    last_seen: LastSeen | None = None
    seen_synced: bool = False  # a lookup has seen the user synced at least once
    # The first check is made: a lookup was sent and Graph answered it (or did not answer
    # at all), and for a synced user the licensing that followed was not throttled either.
    # Until then the deadline does not apply (contract v1.2, "The first check").
    first_check_done: bool = False
    usage_location_written: bool = False  # the app has written the user's usageLocation
    awaiting_sync_sent: bool = False
    blocked_sent: bool = False
    last_error: LastError | None = None
    # Cloud Sync on demand: the last attempt's status (None: never tried) and message.
    forced_sync: ForcedSyncStatus | None = None
    forced_sync_message: str | None = None
    # The start window (startDate - LICENSE_LEAD_TIME) when it was ahead at admission.
    not_before: datetime | None = None
    scheduled_sent: bool = False
    # Group mode: the SKUs (ids) whose licensing group the app added the user to.
    groups_joined: frozenset[str] = frozenset()
    # (v1.2) the Teams Phone step, once every license is on; `provisioning` sent once.
    teams: TeamsProgress | None = None
    provisioning_sent: bool = False

    @property
    def deadline(self) -> datetime:
        assert self.request.sync_deadline is not None
        return self.request.sync_deadline

    @property
    def licenses(self) -> tuple[LicenseRequest, ...]:
        assert self.request.licenses is not None
        return self.request.licenses
