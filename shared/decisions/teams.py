"""The Teams Phone step (contract v1.2, "Teams Phone"), as pure decisions: every Teams
state and every operation status. Facts and sources: docs/teams-phone.md.

    phone_system_missing  before any write: Phone System among the requested SKUs' plans
                          (less disabledPlans) or the user's own; else missing_prerequisite
    begin                 every license is on: the step starts, TEAMS_READY_TIMEOUT counts
    next_read             what to read at a check: the configuration, the number, the order
    after_readiness       the user's configuration: ready, not yet, or Skype for Business
    after_number          the number's assignment: ours, someone else's, pending, or free
    after_order           Graph accepted the order (maybe without saying its operation)
    after_order_error     Graph refused it at once, or did not answer
    after_operation       the order's operation: running, succeeded, or failed (why)

An order is sent only at a check whose pending state already records the intent to
order, written at the check before: a copy of the state found again after a crash never
orders blindly, because the number's own state tells whether an order is under way or
done (`after_number`; docs/teams-phone.md: an undecided order shows the number
`assignmentPending`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from typing import Final

from shared.decisions.outcomes import (
    CheckNumber,
    Fail,
    NumberAssigned,
    OrderNumber,
    TeamsStep,
    Wait,
)
from shared.decisions.rules import Rules
from shared.decisions.teams_waiting import (
    after_teams_error,
    checked,
    fail,
    later,
    on_premises,
    progress,
    seen,
    soon,
    wait,
)
from shared.domain.codes import FailureCode, LicenseStatus, TeamsSeen
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.domain.events import LicenseOutcome, Reason
from shared.domain.state import LastError, NumberOrder, PendingState, TeamsProgress
from shared.domain.teams import PHONE_SYSTEM_PLAN, OperationStatus
from shared.domain.teams_tenant import (
    NumberAssignment,
    NumberOperation,
    TeamsReading,
    TeamsUnknown,
    TeamsUnread,
    TeamsUser,
)
from shared.domain.tenant import DirectoryUser, SkuCatalog

# Teams' reasons for failing an order that waiting will not change (docs/teams-phone.md,
# "Assigning a number"): matched on their stable parts, lower case.
_PERMANENT: Final = (
    "has already been assigned to another",
    "cannot be assigned to a user",
)
# The reasons worth waiting for, and what they say of the user.
_TRANSIENT: Final = (
    ("skype for business", TeamsSeen.SFB_ONPREM_USER),
    ("lacks appropriate licenses", TeamsSeen.NO_PHONE_SYSTEM),
    ("not found", TeamsSeen.NOT_FOUND),  # the user (a number not found is permanent)
)


class TeamsRead(StrEnum):
    """What a check of the step reads first."""

    CONFIGURATION = "configuration"
    NUMBER = "number"
    OPERATION = "operation"


def phone_system_missing(
    state: PendingState, user: DirectoryUser, catalog: SkuCatalog
) -> Fail | None:
    """Contract v1.2, "Teams Phone", 1: a request with `teams` needs the Phone System plan
    (MCOEV) among the service plans of its SKUs (not disabled by `disabledPlans`) or of the
    user's own licenses; otherwise it fails `missing_prerequisite` before any write."""
    if state.request.teams is None:
        return None
    for wanted in state.licenses:
        sku = catalog.find(wanted.sku_part_number)
        off = {name.upper() for name in wanted.disabled_plans}
        if sku is not None and any(
            p.name.upper() == PHONE_SYSTEM_PLAN and p.name.upper() not in off
            for p in sku.service_plans
        ):
            return None
    for sku in catalog.skus:
        disabled = user.disabled_plans.get(sku.id.lower(), frozenset())
        if sku.id.lower() in user.assigned_sku_ids and any(
            p.name.upper() == PHONE_SYSTEM_PLAN and p.id.lower() not in disabled
            for p in sku.service_plans
        ):
            return None
    return Fail(
        Reason(
            FailureCode.MISSING_PREREQUISITE,
            f"teams asks for a phone number, but neither the requested licenses nor the "
            f"user's own include the Phone System service plan ({PHONE_SYSTEM_PLAN})",
        )
    )


def begin(
    state: PendingState,
    user: DirectoryUser,
    licenses: tuple[LicenseOutcome, ...],
    usage_location: str | None,
    now: datetime,
    rules: Rules,
) -> PendingState:
    """Every license is on the user: the Teams Phone step starts now, and its deadline is
    TEAMS_READY_TIMEOUT from now."""
    teams = TeamsProgress(
        started_at=now,
        deadline=now + rules.teams_ready_timeout,
        user_id=user.id,
        user_principal_name=user.user_principal_name,
        usage_location=usage_location or "",
        licenses=licenses,
    )
    return replace(state, teams=teams, last_error=None)


def next_read(state: PendingState) -> TeamsRead:
    """No order intended: is Teams ready? An order intended: where is the number? An
    order accepted: where is its operation?"""
    order = progress(state).order
    if order is None:
        return TeamsRead.CONFIGURATION
    return TeamsRead.OPERATION if order.operation_id else TeamsRead.NUMBER


def after_readiness(
    state: PendingState, reading: TeamsReading, now: datetime, rules: Rules
) -> TeamsStep:
    """The user's Teams configuration: a Teams user with Phone System is ready (then the
    number is read, unless Teams already shows it on the user)."""
    state = checked(state)
    match reading:
        case TeamsUnread(error=error):
            return after_teams_error(state, error, now, rules)
        case TeamsUnknown():
            state = seen(state, TeamsSeen.NOT_FOUND)
            return wait(state, later(state, now, rules), now)
        case TeamsUser() as user if user.on_premises:
            return on_premises(state, now, rules)
        case TeamsUser() as user if not user.ready:
            state = seen(state, TeamsSeen.NO_PHONE_SYSTEM)
            return wait(state, later(state, now, rules), now)
        case TeamsUser() as user:
            state = seen(state, None)
            if _number(state) in user.telephone_numbers:
                return _done(state)
            return CheckNumber(state)
    raise AssertionError(f"unexpected reading {reading!r}")  # pragma: no cover


def after_number(
    state: PendingState, number: NumberAssignment | None, now: datetime, rules: Rules
) -> TeamsStep:
    """Before ordering, the number itself: on this user → done; held by anyone else →
    `phone_number_rejected` (no order); an order under way → wait for it; free (or not in
    the inventory yet: Direct Routing numbers appear once assigned) → record the intent,
    and order at the next check (or now, when the intent is recorded already)."""
    teams = progress(state)
    if number is not None and number.held_by(teams.user_id):
        return _done(state)
    if number is not None and number.taken_from(teams.user_id):
        return fail(
            state,
            Reason(
                FailureCode.PHONE_NUMBER_REJECTED,
                f"{number.telephone_number} is already assigned to another target "
                f"({number.assignment_status}); this request does not take it",
            ),
            graphError={
                "status": 200,
                "code": number.assignment_status,
                "message": f"Telephone number {number.telephone_number} is "
                f"{number.assignment_status} to another target",
                "call": str(GraphCall.NUMBER_ASSIGNMENTS),
            },
        )
    if number is not None and number.pending:
        return wait(state, soon(state, now, rules), now)
    if teams.order is None:
        intent = replace(teams, order=NumberOrder(intended_at=now))
        return wait(replace(state, teams=intent), soon(state, now, rules), now)
    return OrderNumber(state)


def after_order(
    state: PendingState, operation_id: str | None, now: datetime, rules: Rules
) -> Wait | Fail:
    """Graph accepted the order (202): follow its operation soon. Without an operation
    id (no `Location`), the number's state is followed instead."""
    teams = progress(state)
    assert teams.order is not None
    order = replace(teams.order, operation_id=operation_id)
    state = replace(state, teams=replace(teams, order=order), last_error=None)
    return wait(state, soon(state, now, rules), now)


def after_order_error(
    state: PendingState, error: GraphError, now: datetime, rules: Rules
) -> Wait | Fail:
    """assignNumber refused at once (a 400: the number or the body Graph cannot take) is
    final: `phone_number_rejected` with Graph's error. Anything else may pass (a 429 was
    not taken; a timeout or a 5xx may have been: the intent stays, and the next check
    reads the number before ordering again)."""
    if error.kind == GraphErrorKind.REJECTED:
        return fail(
            replace(state, last_error=LastError.of(error)),
            Reason(FailureCode.PHONE_NUMBER_REJECTED, error.graph_message),
            graphError=LastError.of(error).to_json(),
        )
    return after_teams_error(state, error, now, rules)


def after_operation(
    state: PendingState, operation: NumberOperation, now: datetime, rules: Rules
) -> TeamsStep:
    """The order's operation: `notStarted`/`running` → look again soon; `succeeded` →
    done (`assigned`); `failed` → Teams' `statusDetail` decides (`phone_number_rejected`
    when waiting will not change it, else back to waiting for Teams and a new order);
    `skipped` or a status unknown to the app → as a failure worth waiting out."""
    match operation.status:
        case OperationStatus.SUCCEEDED:
            return _done(seen(state, None))
        case OperationStatus.NOT_STARTED | OperationStatus.RUNNING:
            return wait(state, soon(state, now, rules), now)
        case OperationStatus.FAILED if _permanent(operation.detail):
            detail = operation.detail or "the number assignment failed"
            return fail(
                state,
                Reason(FailureCode.PHONE_NUMBER_REJECTED, detail),
                graphError={
                    "status": 200,
                    "code": str(operation.status),
                    "message": detail,
                    "call": str(GraphCall.NUMBER_OPERATION),
                },
            )
    return _order_again(state, operation, now, rules)


def operation_lost(state: PendingState) -> PendingState:
    """Graph no longer knows the order's operation (404): follow the number instead."""
    teams = progress(state)
    assert teams.order is not None
    return replace(state, teams=replace(teams, order=replace(teams.order, operation_id=None)))


def _order_again(
    state: PendingState, operation: NumberOperation, now: datetime, rules: Rules
) -> Wait | Fail:
    """A failure waiting may cure: forget the order, wait for Teams with the usual
    backoff, then check readiness and the number and order again."""
    detail = (operation.detail or "").lower()
    what = next((s for part, s in _TRANSIENT if part in detail), TeamsSeen.UNREACHABLE)
    teams = replace(progress(state), order=None)
    state = seen(replace(state, teams=teams), what)
    if what == TeamsSeen.SFB_ONPREM_USER:
        return on_premises(state, now, rules)
    return wait(state, later(state, now, rules), now)


def _permanent(detail: str | None) -> bool:
    text = (detail or "").lower()
    number_unknown = "telephone number" in text and "not found" in text
    return number_unknown or any(part in text for part in _PERMANENT)


def _number(state: PendingState) -> str:
    assert state.request.teams is not None
    return state.request.teams.phone_number


def _done(state: PendingState) -> NumberAssigned:
    """The number is on the user: `assigned` when an order of this request put it there."""
    ordered = progress(state).order is not None
    status = LicenseStatus.ASSIGNED if ordered else LicenseStatus.ALREADY_ASSIGNED
    return NumberAssigned(state, status)
