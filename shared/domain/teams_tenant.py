"""Microsoft Teams as the app sees it in the Teams Phone step: a user's configuration, a
number's assignment, an assignNumber operation. Plain data, built by the Graph adapter
(`shared.adapters.graph.teams`) and by the tests' fakes, read by the decisions
(`shared.decisions.teams`). Shapes and sources: docs/teams-phone.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.errors import GraphError
from shared.domain.teams import (
    PHONE_SYSTEM_FEATURE,
    AccountType,
    ActivationState,
    AssignmentStatus,
    OperationStatus,
)


@dataclass(frozen=True)
class TeamsUser:
    """The user's `teamsUserConfiguration`: `accountType`, `featureTypes`, and the numbers
    Teams shows on the user (`telephoneNumbers[].telephoneNumber`)."""

    account_type: str
    feature_types: frozenset[str] = frozenset()
    telephone_numbers: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        """Ready for a phone number: a Teams user with Phone System among its features
        (contract v1.2, "Teams Phone", 2)."""
        return self.account_type == AccountType.USER and PHONE_SYSTEM_FEATURE in self.feature_types

    @property
    def on_premises(self) -> bool:
        """Still homed in Skype for Business Server: it must be moved to Teams first."""
        return self.account_type == AccountType.SFB_ON_PREM_USER


@dataclass(frozen=True)
class TeamsUnknown:
    """Teams does not know the user (a 404): not provisioned yet."""


@dataclass(frozen=True)
class TeamsUnread:
    """Graph did not answer the read: what that means is the decisions' call."""

    error: GraphError


TeamsReading = TeamsUser | TeamsUnknown | TeamsUnread


@dataclass(frozen=True)
class NumberAssignment:
    """A number of the tenant's inventory, as `numberAssignments` shows it."""

    telephone_number: str
    number_type: str
    assignment_target_id: str | None
    assignment_status: str
    activation_state: str

    def held_by(self, user_id: str) -> bool:
        """Assigned to this user."""
        return bool(
            self.assignment_target_id
            and self.assignment_target_id.lower() == user_id.lower()
            and self.assignment_status == AssignmentStatus.USER_ASSIGNED
        )

    @property
    def pending(self) -> bool:
        """An order or an update for this number is under way."""
        return self.activation_state in (
            ActivationState.ASSIGNMENT_PENDING,
            ActivationState.UPDATE_PENDING,
        )

    def taken_from(self, user_id: str) -> bool:
        """Held by another user, a voice application or anything but this user."""
        return bool(
            self.assignment_target_id
            and self.assignment_target_id.lower() != user_id.lower()
            and self.assignment_status != AssignmentStatus.UNASSIGNED
        )


@dataclass(frozen=True)
class NumberOperation:
    """An assignNumber order's `telephoneNumberLongRunningOperation`: its status and, for
    its one number, Teams' `statusDetail` (the reason of a failure)."""

    status: OperationStatus
    detail: str | None = None
