"""Microsoft Teams Phone values, shared by the app and the local Graph emulator.

Standard library only: the app's Teams Phone step and `local_stack/graph_emulator`
both import this module, so the value the app waits for and the value the
emulator shows come from one place. Facts and sources: `docs/teams-phone.md`.

- The Phone System service plan is `MCOEV` ("Microsoft Teams Phone Standard",
  formerly Cloud PBX), servicePlanId 4828c8ec-dc2e-4779-b502-87ac9ce28ab7.
- `featureTypes` of a Graph `teamsUserConfiguration` is the same list as the
  `FeatureTypes` of `Get-CsOnlineUser`, whose page names the common values
  `Teams`, `AudioConferencing`, `PhoneSystem` and `CallingPlan`
  (MicrosoftDocs/office-docs-powershell, teams/teams-ps/MicrosoftTeams/Get-CsOnlineUser.md,
  "FeatureTypes"; its Example 7 filters on `FeatureTypes -Contains 'PhoneSystem'`;
  the Graph page's example shows `["Teams", "CallingPlan"]`).
- The enumerations are the members of Graph's v1.0 CSDL
  (microsoftgraph/msgraph-metadata schemas/v1.0-Prod.csdl, namespace
  microsoft.graph.teamsAdministration, and graph.longRunningOperationStatus).
"""

from __future__ import annotations

from enum import StrEnum

#: servicePlanName of Phone System, the plan a Teams Phone number needs.
PHONE_SYSTEM_PLAN = "MCOEV"

#: The `Prefer` header value that makes Graph send enum members added after
#: `unknownFutureValue` (e.g. `accountType` `ineligibleUser`) instead of `unknownFutureValue`.
INCLUDE_UNKNOWN_ENUM_MEMBERS = "include-unknown-enum-members"


class FeatureType(StrEnum):
    """Values of `teamsUserConfiguration.featureTypes` (a string collection, not a CSDL enum)."""

    TEAMS = "Teams"
    AUDIO_CONFERENCING = "AudioConferencing"
    PHONE_SYSTEM = "PhoneSystem"
    CALLING_PLAN = "CallingPlan"


#: The feature a user needs before a phone number can be assigned.
PHONE_SYSTEM_FEATURE = FeatureType.PHONE_SYSTEM


class AccountType(StrEnum):
    """`teamsAdministration.accountType`; `ineligibleUser` is sent only with
    `Prefer: include-unknown-enum-members` (otherwise it reads `unknownFutureValue`)."""

    USER = "user"
    RESOURCE_ACCOUNT = "resourceAccount"
    GUEST = "guest"
    SFB_ON_PREM_USER = "sfbOnPremUser"  # homed in Skype for Business Server: move to Teams first
    UNKNOWN = "unknown"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"
    INELIGIBLE_USER = "ineligibleUser"


class NumberType(StrEnum):
    """`teamsAdministration.numberType`; only `ASSIGNABLE_NUMBER_TYPES` can be assigned."""

    INTERNAL_ERROR = "internalError"
    DIRECT_ROUTING = "directRouting"
    CALLING_PLAN = "callingPlan"
    OPERATOR_CONNECT = "operatorConnect"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


#: The `numberType` values `assignNumber` takes ("direct routing, calling plan, or operator
#: connect", numberassignment-assignnumber page) and the contract's `teams.numberType` allows.
ASSIGNABLE_NUMBER_TYPES: frozenset[NumberType] = frozenset(
    {NumberType.DIRECT_ROUTING, NumberType.CALLING_PLAN, NumberType.OPERATOR_CONNECT}
)


class AssignmentCategory(StrEnum):
    """`teamsAdministration.assignmentCategory`; `assignNumber` defaults to `primary`."""

    PRIMARY = "primary"
    PRIVATE = "private"
    ALTERNATE = "alternate"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class AssignmentStatus(StrEnum):
    """`teamsAdministration.assignmentStatus` of a number in the tenant's inventory."""

    UNASSIGNED = "unassigned"
    INTERNAL_ERROR = "internalError"
    USER_ASSIGNED = "userAssigned"
    CONFERENCE_ASSIGNED = "conferenceAssigned"
    VOICE_APPLICATION_ASSIGNED = "voiceApplicationAssigned"
    THIRD_PARTY_APP_ASSIGNED = "thirdPartyAppAssigned"
    POLICY_ASSIGNED = "policyAssigned"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class ActivationState(StrEnum):
    """`teamsAdministration.activationState` of a number."""

    ACTIVATED = "activated"
    ASSIGNMENT_PENDING = "assignmentPending"
    ASSIGNMENT_FAILED = "assignmentFailed"
    UPDATE_PENDING = "updatePending"
    UPDATE_FAILED = "updateFailed"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class OperationStatus(StrEnum):
    """`status` of a `telephoneNumberLongRunningOperation` and of each of its `numbers`.

    The CSDL's `longRunningOperationStatus` has notStarted, running, succeeded, failed and
    unknownFutureValue; the resource page also lists `skipped`, so a client must accept it.
    """

    NOT_STARTED = "notStarted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"

    @property
    def terminal(self) -> bool:
        """Whether the operation has ended (nothing more will change)."""
        return self in (OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.SKIPPED)
