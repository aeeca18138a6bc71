"""Every code the app puts on the wire, as string enums (their values are the contract's
words, so the JSON is what it always was). Model: httpx's `_status_codes.py`.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """CloudEvents `type` values of the contract."""

    SCHEDULED = "onboarding.user.scheduled"
    AWAITING_SYNC = "onboarding.user.awaiting_sync"
    BLOCKED = "onboarding.user.blocked"
    PROVISIONING = "onboarding.user.provisioning"  # (v1.2) licenses on, Teams not ready yet
    LICENSED = "onboarding.user.licensed"
    FAILED = "onboarding.user.failed"
    REJECTED = "onboarding.request.rejected"

    @property
    def word(self) -> str:
        """The last word of the type: what event ids end with (`HR-1:licensed`)."""
        return self.value.rsplit(".", 1)[-1]

    @property
    def terminal(self) -> bool:
        return self in (EventType.LICENSED, EventType.FAILED, EventType.REJECTED)


class FailureCode(StrEnum):
    """`data.reason.code` values of `onboarding.user.failed` (and of `blocked`)."""

    SYNC_TIMEOUT = "sync_timeout"
    USER_AMBIGUOUS = "user_ambiguous"
    UNKNOWN_SKU = "unknown_sku"
    UNKNOWN_SERVICE_PLAN = "unknown_service_plan"
    NO_SEATS = "no_seats"
    USAGE_LOCATION_MISSING = "usage_location_missing"
    MUTUALLY_EXCLUSIVE_PLANS = "mutually_exclusive_plans"
    MISSING_PREREQUISITE = "missing_prerequisite"
    GRAPH_REJECTED = "graph_rejected"
    GRAPH_UNAVAILABLE = "graph_unavailable"
    GRAPH_ACCESS_DENIED = "graph_access_denied"
    # (v1.2) the Teams Phone step: Teams never ready before its deadline (`lastSeen`), and
    # a number assignment that waiting will not change (`graphError`).
    TEAMS_NOT_READY = "teams_not_ready"
    PHONE_NUMBER_REJECTED = "phone_number_rejected"


class RejectionCode(StrEnum):
    """`data.reason.code` values of `onboarding.request.rejected`."""

    INVALID_MESSAGE = "invalid_message"
    POISON = "poison"


class BlockedCode(StrEnum):
    """`data.reason.code` values of `onboarding.user.blocked` that are not failure codes
    (contract v1.2; `no_seats` and `graph_access_denied` block too, as FailureCodes)."""

    POISONED = "poisoned"  # the message is held for an operator to replay (POISON_HOLD)
    SFB_ONPREM_USER = "sfb_onprem_user"  # Teams Phone: still homed in Skype for Business Server


ReasonCode = FailureCode | RejectionCode | BlockedCode


class LicenseStatus(StrEnum):
    """`status` of each license in `licensed`."""

    ASSIGNED = "assigned"
    ALREADY_ASSIGNED = "already_assigned"


class LastSeen(StrEnum):
    """What the last lookup observed, for `awaiting_sync` and `sync_timeout` events."""

    NOT_FOUND = "not_found"
    NOT_SYNCED = "not_synced"
    SYNCED = "synced"
    UNREACHABLE = "unreachable"  # Graph never answered a lookup of this request


class TeamsSeen(StrEnum):
    """(v1.2) What Teams last said of the user in the Teams Phone step: the `lastSeen` of
    `teams_not_ready`."""

    NOT_FOUND = "not_found"  # Teams does not know the user (yet)
    SFB_ONPREM_USER = "sfb_onprem_user"  # homed in Skype for Business Server
    NO_PHONE_SYSTEM = "no_phone_system"  # known, but without Phone System (or not a user)
    UNREACHABLE = "unreachable"  # Teams did not answer, or its number service did not finish


class RequestStatus(StrEnum):
    """Where a request stands, as the ledger keeps it: the operators' view (`python -m
    ops`), and the `state` of the HTTP status query (contract v1.2). The terminal ones are
    the last words of the terminal event types. `received` is internal: the status query
    says `queued` for it (nothing has been checked yet)."""

    QUEUED = "queued"  # accepted by the HTTP front door; no queue message has taken it yet
    RECEIVED = "received"  # opened by its message, not parked yet
    SCHEDULED = "scheduled"
    WAITING = "waiting"
    BLOCKED = "blocked"
    PROVISIONING = "provisioning"  # (v1.2) licensed; the Teams Phone step waits for Teams
    LICENSED = "licensed"
    FAILED = "failed"
    REJECTED = "rejected"


class Announcement(StrEnum):
    """The non-terminal events, each sent at most once per request."""

    SCHEDULED = "scheduled"
    AWAITING_SYNC = "awaiting_sync"
    BLOCKED = "blocked"
    PROVISIONING = "provisioning"  # (v1.2)


class ForcedSyncStatus(StrEnum):
    """`data.forcedSync.status` of `awaiting_sync` (contract v1.1)."""

    REQUESTED = "requested"  # Graph accepted the call; its per-object result is no failure
    FAILED = "failed"  # refused, or Graph's per-object result was Failure or Skipped
    THROTTLED = "throttled"  # not sent (the per-job limit): tried again at the next recheck
