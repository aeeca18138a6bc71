"""assignNumber orders: accepted at once, decided later, with Teams' own refusals.

An order is `notStarted` for `operationStartSeconds`, `running` for
`operationRunSeconds`, then decided, in due order, against the tenant as it is
at that moment (`OrderBook.advance`); `TeamsTenant` owns the book. Sources:

- "Creates an asynchronous order to assign a telephone number to a user
  account", 202 with Location; the operation's `status` and its `numbers`
  (`resourceLocation`, `status`, `statusDetail`); the ids are base64url of
  `Assignment|<guid>` in the docs' example (api pages
  teamsadministration-numberassignment-assignnumber and
  teamsadministration-telephonenumberlongrunningoperation-get).
- The `statusDetail` of a refusal: the messages Teams' number service gives
  `Set-CsPhoneNumberAssignment`, as seen in the field
  (MicrosoftDocs/office-docs-powershell#8905: "Telephone Number '()' is not
  found from tenant '()'" and "User '()' lacks appropriate licenses to assign a
  'CallingPlan' number"; #9165, #9432, #9118: "Telephone Number '...' has
  already been assigned to another user"; #8992: "Service is unavailable. Please
  try again"). Where none is published (a user Teams does not know, a user homed
  in Skype for Business Server, a number without the userAssignment capability)
  the wording is the emulator's. Whether Graph's statusDetail carries exactly
  the PowerShell text is not verified.
- A number of another type is "not found": the service looks numbers up by
  number and type (#8905's first case). A Direct Routing number unknown to Teams
  is created by its first assignment (#8901: Direct Routing numbers are not
  visible "before they have been assigned"). A Calling Plan number needs the
  Calling Plan feature too (Teams docs, assign-change-or-remove-a-phone-number-for-a-user).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.domain.teams import (
    AccountType,
    AssignmentCategory,
    FeatureType,
    NumberType,
    OperationStatus,
)

from . import teams_numbers
from .clock import iso_z

if TYPE_CHECKING:
    from .teams import FactsLookup, TeamsSettings, TeamsTenant

#: How PowerShell and the number service spell number types in their messages.
TYPE_WORDS = {
    NumberType.DIRECT_ROUTING: "DirectRouting",
    NumberType.CALLING_PLAN: "CallingPlan",
    NumberType.OPERATOR_CONNECT: "OperatorConnect",
}
NUMBER_NOT_FOUND = "Telephone Number '{number}' is not found from tenant '{tenant}'"
ASSIGNED_TO_ANOTHER = "Telephone Number '{number}' has already been assigned to another user"
LACKS_LICENSES = "User '{user}' lacks appropriate licenses to assign a '{kind}' number"
SERVICE_UNAVAILABLE = "Service is unavailable. Please try again"
USER_NOT_FOUND = "User '{user}' is not found from tenant '{tenant}'"  # the emulator's wording
SFB_ON_PREM = (  # the emulator's wording
    "User '{user}' is homed in Skype for Business Server on-premises; move the user to Teams "
    "before assigning a telephone number"
)
NOT_A_USER_NUMBER = (  # the emulator's wording
    "Telephone Number '{number}' cannot be assigned to a user: its capabilities do not "
    "include 'userAssignment'"
)


@dataclass
class Operation:
    """One assignNumber order and, once decided, its outcome."""

    id: str
    created_at: float
    start_at: float
    due_at: float
    number: str
    target: str
    number_type: NumberType
    category: AssignmentCategory
    location_id: str | None
    forced: str | None = None  # statusDetail of an injected failure
    status: OperationStatus = OperationStatus.NOT_STARTED
    detail: str | None = None
    resolved: bool = False

    def status_at(self, now: float) -> OperationStatus:
        """The status a GET shows at `now`."""
        if self.resolved:
            return self.status
        return OperationStatus.RUNNING if now >= self.start_at else OperationStatus.NOT_STARTED


@dataclass
class OrderBook:
    """Every order of the tenant, and the injected failures waiting for the next ones."""

    operations: dict[str, Operation] = field(default_factory=dict)
    fail_next: list[str] = field(default_factory=list)

    def place(
        self,
        now: float,
        settings: TeamsSettings,
        number: str,
        target: str,
        number_type: NumberType,
        category: AssignmentCategory,
        location_id: str | None,
    ) -> Operation:
        """Accept an order; it is decided operationStart + operationRun seconds later."""
        raw_id = f"Assignment|{uuid.uuid4()}".encode()
        start = now + settings.operation_start
        operation = Operation(
            id=base64.urlsafe_b64encode(raw_id).decode("ascii").rstrip("="),
            created_at=now,
            start_at=start,
            due_at=start + settings.operation_run,
            number=number,
            target=target,
            number_type=number_type,
            category=category,
            location_id=location_id,
            forced=self.fail_next.pop(0) if self.fail_next else None,
        )
        self.operations[operation.id] = operation
        return operation

    def advance(self, tenant: TeamsTenant, now: float, lookup: FactsLookup) -> None:
        """Decide every order due by `now`, oldest due first."""
        due = sorted(
            (op for op in self.operations.values() if not op.resolved and op.due_at <= now),
            key=lambda op: (op.due_at, op.created_at),
        )
        for op in due:
            detail = refusal(tenant, op, lookup)
            if detail is None:
                tenant.assign(op.number, op.target, op.category, op.location_id, op.due_at)
            op.status = OperationStatus.FAILED if detail else OperationStatus.SUCCEEDED
            op.detail, op.resolved = detail, True

    def pending(self, number: str, holder: str | None) -> bool:
        """Whether an undecided order may give `number` (held by `holder`) to its target."""
        return any(
            not op.resolved and op.number == number and holder in (None, op.target)
            for op in self.operations.values()
        )

    def view(self, op: Operation, now: float, base_url: str, tenant_id: str) -> dict[str, Any]:
        """A telephoneNumberLongRunningOperation; `createdDateTime` is a string in the CSDL."""
        status = op.status_at(now)
        location = None
        if status == OperationStatus.SUCCEEDED:
            location = (
                f"{base_url}/admin/teams/telephoneNumberManagement/numberAssignments/"
                + teams_numbers.number_id(tenant_id, op.number)
            )
        return {
            "id": op.id,
            "createdDateTime": iso_z(op.created_at),
            "status": str(status),
            "numbers": [
                {"resourceLocation": location, "status": str(status), "statusDetail": op.detail}
            ],
        }

    def log(self, now: float) -> list[dict[str, Any]]:
        """Every order, oldest first, with what was asked and what came of it (control API)."""
        return [
            {
                "id": op.id,
                "telephoneNumber": op.number,
                "assignmentTargetId": op.target,
                "numberType": str(op.number_type),
                "assignmentCategory": str(op.category),
                "locationId": op.location_id,
                "createdAt": iso_z(op.created_at),
                "startAt": iso_z(op.start_at),
                "dueAt": iso_z(op.due_at),
                "status": str(op.status_at(now)),
                "statusDetail": op.detail,
                "injectedFailure": op.forced is not None,
            }
            for op in sorted(self.operations.values(), key=lambda o: o.created_at)
        ]


def refusal(tenant: TeamsTenant, op: Operation, lookup: FactsLookup) -> str | None:
    """Why Teams refuses the order at its due time, or None: the user first, then the number."""
    at = op.due_at
    words = {"user": op.target, "number": op.number, "tenant": tenant.tenant_id}
    if op.forced is not None:
        return op.forced
    facts = lookup(op.target)
    if facts is None or tenant.known_at(facts, at) is None:
        return USER_NOT_FOUND.format(**words)
    if tenant.account_type(facts, at) == AccountType.SFB_ON_PREM_USER:
        return SFB_ON_PREM.format(**words)
    needed = {FeatureType.PHONE_SYSTEM}
    if op.number_type == NumberType.CALLING_PLAN:
        needed.add(FeatureType.CALLING_PLAN)
    if not needed <= set(tenant.features(facts, at)):
        return LACKS_LICENSES.format(kind=TYPE_WORDS[op.number_type], **words)
    record = tenant.numbers.get(op.number)
    if record is None:
        direct = op.number_type == NumberType.DIRECT_ROUTING
        return None if direct else NUMBER_NOT_FOUND.format(**words)
    if record["numberType"] != op.number_type:
        return NUMBER_NOT_FOUND.format(**words)
    if record["assignmentTargetId"] not in (None, op.target):
        return ASSIGNED_TO_ANOTHER.format(**words)
    if "userAssignment" not in record["capabilities"]:
        return NOT_A_USER_NUMBER.format(**words)
    return None
