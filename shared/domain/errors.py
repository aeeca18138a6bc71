"""The app's one error tree. Lower-level errors are translated into it in one place each
(`shared.adapters.graph` for msgraph-sdk and httpx, `shared.settings` for the environment,
`shared.adapters.event_grid` for azure-eventgrid).

    OnboardingError
    ├── InvalidRequest   the message breaks the contract: `rejected`, never retried
    ├── SettingsError    a missing or malformed app setting: the app refuses to start
    ├── StorageUnavailable  the storage account did not answer (network, 5xx, throttling):
    │                    the sweep stops (what it holds comes back after its lease) and
    │                    intake raises, for the Functions host to retry
    ├── LeaseLost        a queue message the app held was received by another receiver
    │                    meanwhile (or is gone): that receiver has it now; nothing decided
    ├── GraphError       Microsoft Graph did not do what was asked. `kind` says what Graph
    │                    meant (throttled, unavailable, access denied, not found, or one of
    │                    assignLicense's refusals); `call` says which call it refused. Whether
    │                    that is worth waiting for or final is a decision, and decisions are
    │                    `shared.decisions.after_graph_error`'s, not the adapter's.
    ├── EventGridUnavailable  the Event Grid topic (EVENT_GRID_TOPIC_ENDPOINT) did not take
    │                    an event it may take later: no answer, a timeout, a 5xx, throttling,
    │                    the endpoint not found, or the app's identity refused (401/403,
    │                    `access_denied`: the role EventGrid Data Sender is missing). Retried
    │                    later like a storage outage, but never a reason to fail, retry or
    │                    poison a request: the queue copy of the event went out, and what the
    │                    topic missed is published again later. Deliberately not a
    │                    StorageUnavailable, so that no storage-outage handler takes it.
    └── EventGridRejected  Event Grid refused the event itself (400: not a valid CloudEvent,
                         413: too large): a bug of the app, not an outage; sending the same
                         bytes again cannot help. Translated in `shared.adapters.event_grid`.

Other storage errors (a 4xx refusal of one message) stay the storage SDK's: at intake
they reach the Functions host, whose retries and poison queue deal with them; in the sweep
they set that one message aside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class OnboardingError(Exception):
    """Base of every error the app raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One field-level problem of an invalid message: `field` is '' for the whole body."""

    field: str
    problem: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


class InvalidRequest(OnboardingError):
    """The message breaks the contract; `errors` says which fields and why."""

    def __init__(self, errors: Sequence[FieldError], *, request_id: str | None = None) -> None:
        self.errors = tuple(errors)
        self.request_id = request_id
        super().__init__("; ".join(f"{e.field or 'message'}: {e.problem}" for e in self.errors))


class SettingsError(OnboardingError):
    """A missing or malformed app setting, named in the message."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"app setting {setting}: {problem}")


class StorageUnavailable(OnboardingError):
    """The storage account (queues or tables) could not be reached; translated in
    `shared.adapters.storage` from azure-core's transport and 5xx errors."""


class LeaseLost(OnboardingError):
    """A queue message the app held was received by someone else meanwhile (its lease
    ended: the pop receipt is stale) or is gone. Not a fault of the message: another
    receiver has it now, so this receiver's work on it is dropped, nothing decided."""


class GraphCall(StrEnum):
    """Each kind of Graph call the app makes."""

    LOOKUP = "lookup"  # GET /users/{upn}, GET /users?$filter=..., and $batch of those
    SUBSCRIBED_SKUS = "subscribedSkus"
    SET_USAGE_LOCATION = "setUsageLocation"  # PATCH /users/{id}
    ASSIGN_LICENSE = "assignLicense"
    SYNC_SCHEMA = "synchronizationSchema"  # GET .../synchronization/jobs/{id}/schema
    PROVISION_ON_DEMAND = "provisionOnDemand"
    ADD_GROUP_MEMBER = "addGroupMember"  # POST /groups/{id}/members/$ref
    REPROCESS_LICENSES = "reprocessLicenseAssignment"
    # (v1.2) the Teams Phone step: GET /admin/teams/userConfigurations/{id} (and $batch of
    # those), GET .../telephoneNumberManagement/numberAssignments?$filter=..., POST
    # .../numberAssignments/assignNumber, GET .../telephoneNumberManagement/operations/{id}
    TEAMS_CONFIGURATION = "teamsUserConfiguration"
    NUMBER_ASSIGNMENTS = "numberAssignments"
    ASSIGN_NUMBER = "assignNumber"
    NUMBER_OPERATION = "assignNumberOperation"

    @property
    def permission(self) -> str:
        """The least-privileged application permission that covers this call."""
        return PERMISSIONS[self]

    @property
    def is_write(self) -> bool:
        return self in (
            GraphCall.SET_USAGE_LOCATION,
            GraphCall.ASSIGN_LICENSE,
            GraphCall.ADD_GROUP_MEMBER,
            GraphCall.REPROCESS_LICENSES,
            GraphCall.ASSIGN_NUMBER,
        )

    @property
    def directory_budget(self) -> bool:
        """Metered by the identity-and-access budget that throttles the app as a whole
        (the synchronization API has limits of its own, per job; Teams has its own)."""
        return not self.teams_budget and self not in (
            GraphCall.SYNC_SCHEMA,
            GraphCall.PROVISION_ON_DEMAND,
        )

    @property
    def teams_budget(self) -> bool:
        """Metered by Microsoft Teams' own limits, not identity's (docs/teams-phone.md,
        "Limits"): a 429 there pauses the Teams calls of the process, not the others."""
        return self in (
            GraphCall.TEAMS_CONFIGURATION,
            GraphCall.NUMBER_ASSIGNMENTS,
            GraphCall.ASSIGN_NUMBER,
            GraphCall.NUMBER_OPERATION,
        )


# Microsoft's permission reference of each API ("Permissions" section, least privileged
# first); docs/graph-facts.md, "Permissions".
PERMISSIONS: Final = {
    GraphCall.LOOKUP: "User.Read.All",
    GraphCall.SUBSCRIBED_SKUS: "LicenseAssignment.Read.All",
    GraphCall.SET_USAGE_LOCATION: "User.ReadWrite.All",
    GraphCall.ASSIGN_LICENSE: "LicenseAssignment.ReadWrite.All",
    # provisionOnDemand's least privileged is Application.ReadWrite.OwnedBy, which covers
    # only applications the app owns: not the Cloud Sync service principal.
    GraphCall.SYNC_SCHEMA: "Synchronization.ReadWrite.All",
    GraphCall.PROVISION_ON_DEMAND: "Synchronization.ReadWrite.All",
    GraphCall.ADD_GROUP_MEMBER: "GroupMember.ReadWrite.All",
    # reprocessLicenseAssignment's least privileged (learn.microsoft.com, user:
    # reprocessLicenseAssignment) is User.ReadWrite.All.
    GraphCall.REPROCESS_LICENSES: "User.ReadWrite.All",
    # Teams Phone (docs/teams-phone.md): reading a user's configuration needs
    # TeamsUserConfiguration.Read.All (no lower one); reading numbers and an order's
    # operation, TeamsTelephoneNumber.Read.All (which the .ReadWrite.All the app is granted
    # covers); assignNumber, TeamsTelephoneNumber.ReadWrite.All (no lower one).
    GraphCall.TEAMS_CONFIGURATION: "TeamsUserConfiguration.Read.All",
    GraphCall.NUMBER_ASSIGNMENTS: "TeamsTelephoneNumber.Read.All",
    GraphCall.ASSIGN_NUMBER: "TeamsTelephoneNumber.ReadWrite.All",
    GraphCall.NUMBER_OPERATION: "TeamsTelephoneNumber.Read.All",
}


class GraphErrorKind(StrEnum):
    """What Graph's answer means, read from its status, code and (for assignLicense,
    whose refusals are all 400 Request_BadRequest) its message."""

    THROTTLED = "throttled"  # 429
    UNAVAILABLE = "unavailable"  # 5xx, 408, timeouts, network errors, malformed answers
    ACCESS_DENIED = "access_denied"  # 401 and 403
    NOT_FOUND = "not_found"  # 404 on an object the app addresses by id
    USAGE_LOCATION_INVALID = "usage_location_invalid"
    NO_SEATS = "no_seats"
    MUTUALLY_EXCLUSIVE = "mutually_exclusive"
    MISSING_PREREQUISITE = "missing_prerequisite"
    UNKNOWN_SKU = "unknown_sku"
    REJECTED = "rejected"  # any other 4xx


class GraphError(OnboardingError):
    """Graph did not do what was asked. `status` 0 means no HTTP answer (or not sent)."""

    def __init__(
        self,
        message: str,
        *,
        kind: GraphErrorKind,
        call: GraphCall,
        status: int = 0,
        code: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.kind = kind
        self.call = call
        self.status = status
        self.code = code
        self.graph_message = message
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(f"Graph {status or 'no answer'} {code} on {call}: {message}".strip())


class EventGridUnavailable(OnboardingError):
    """The Event Grid topic did not take an event, for a reason that may pass: `status` 0
    means no HTTP answer (connection refused, timeout); `access_denied` is a 401/403, which
    someone must fix (the role EventGrid Data Sender on the topic) but which is retried all
    the same, like Graph's access denied."""

    def __init__(
        self, message: str, *, status: int = 0, code: str = "", access_denied: bool = False
    ) -> None:
        self.status = status
        self.code = code
        self.access_denied = access_denied
        super().__init__(message)


class EventGridRejected(OnboardingError):
    """Event Grid refused the event itself (400 or 413, or another 4xx that says the request
    is wrong): a bug, reported with Event Grid's own `code` and message."""

    def __init__(self, message: str, *, status: int, code: str = "") -> None:
        self.status = status
        self.code = code
        super().__init__(message)
