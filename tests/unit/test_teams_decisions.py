"""The Teams Phone step's pure decisions (contract v1.2, "Teams Phone"): every Teams state
and every operation status, the waits, blocks and deadline, and the prerequisite."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared.decisions import (
    Backoff,
    CheckNumber,
    Conclude,
    Fail,
    NumberAssigned,
    OrderNumber,
    Park,
    Rules,
    TeamsRead,
    Wait,
    admit,
    after_number,
    after_operation,
    after_order,
    after_order_error,
    after_readiness,
    after_teams_error,
    begin,
    next_read,
    operation_lost,
    phone_system_missing,
    settle,
)
from shared.domain.codes import Announcement, LicenseStatus, RequestStatus, TeamsSeen
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.domain.events import LicenseOutcome
from shared.domain.phone import TeamsRequest
from shared.domain.requests import LicenseRequest, OnboardingRequest, UserIdentifiers
from shared.domain.state import NumberOrder, PendingState
from shared.domain.teams import NumberType, OperationStatus
from shared.domain.teams_tenant import (
    NumberAssignment,
    NumberOperation,
    TeamsUnknown,
    TeamsUnread,
    TeamsUser,
)
from shared.domain.tenant import DirectoryUser, ServicePlan, Sku, SkuCatalog
from tests.fakes import E3, MCOEV, T0

MCOEV_PLAN = "4828c8ec-dc2e-4779-b502-87ac9ce28ab7"
TEAMS1_PLAN = "57ff2da0-773e-42df-b2af-ffb7a2317929"
E5 = "c7df2760-2c81-4ef7-b578-5b5392b571df"
NUMBER = "+33155550100"
USER_ID = "5b1c6c5e-0d55-4b8e-9f4e-1a2b3c4d5e0c"
OTHER = "5b1c6c5e-0d55-4b8e-9f4e-1a2b3c4d5e05"
RULES = Rules(
    Backoff(timedelta(minutes=5), timedelta(minutes=30)),
    teams_phone=True,
    teams_ready_timeout=timedelta(hours=2),
    teams_recheck=timedelta(seconds=30),
)
LICENSES = (
    LicenseOutcome("MCOEV", MCOEV, LicenseStatus.ASSIGNED),
    LicenseOutcome("ENTERPRISEPACK", E3, LicenseStatus.ALREADY_ASSIGNED),
)
CATALOG = SkuCatalog(
    (
        Sku(MCOEV, "MCOEV", "User", "Enabled", 10, 0, (ServicePlan(MCOEV_PLAN, "MCOEV"),)),
        Sku(E3, "ENTERPRISEPACK", "User", "Enabled", 10, 0, (ServicePlan(TEAMS1_PLAN, "TEAMS1"),)),
        Sku(E5, "SPE_E5", "User", "Enabled", 10, 0, (ServicePlan(MCOEV_PLAN, "MCOEV"),)),
    )
)
READY = TeamsUser("user", frozenset({"Teams", "PhoneSystem"}))


def user(**changes: Any) -> DirectoryUser:
    return replace(DirectoryUser(USER_ID, "dana.phone@contoso.com", True, "FR"), **changes)


def admitted(*licenses: LicenseRequest, teams: TeamsRequest | None = None) -> PendingState:
    request = OnboardingRequest(
        "HR-T1",
        UserIdentifiers("dana.phone@contoso.com"),
        licenses=licenses or (LicenseRequest("MCOEV"), LicenseRequest("ENTERPRISEPACK")),
        teams=teams or TeamsRequest(NUMBER, NumberType.OPERATOR_CONNECT),
    )
    return admit(request, T0, RULES)


def started(**teams: Any) -> PendingState:
    state = begin(admitted(), user(), LICENSES, "FR", T0, RULES)
    assert state.teams is not None
    return replace(state, teams=replace(state.teams, **teams))


def intended(operation_id: str | None = None, **teams: Any) -> PendingState:
    return started(order=NumberOrder(T0, operation_id), **teams)


def error(kind: GraphErrorKind, call: GraphCall, status: int, **options: Any) -> GraphError:
    return GraphError("Graph said no", kind=kind, call=call, status=status, code="Code", **options)


def assignment(holder: str | None, status: str = "", activation: str = "activated") -> Any:
    status = status or ("userAssigned" if holder else "unassigned")
    return NumberAssignment(NUMBER, "operatorConnect", holder, status, activation)


def licenses_json() -> list[dict[str, str]]:
    return [lic.to_json() for lic in LICENSES]


# ---------------------------------------------------------------- readiness


def test_the_step_starts_when_the_licenses_are_on_with_its_own_deadline() -> None:
    """TEAMS_READY_TIMEOUT counts from the moment every license is on; nothing to order yet."""
    state = started()
    assert state.teams is not None
    assert (state.teams.started_at, state.teams.deadline) == (T0, T0 + timedelta(hours=2))
    assert state.teams.licenses == LICENSES
    assert next_read(state) == TeamsRead.CONFIGURATION


def test_a_user_teams_does_not_know_yet_waits_announced_provisioning_once() -> None:
    """404 from Teams: not_found, the usual backoff, `provisioning` once and no more."""
    first = after_readiness(started(), TeamsUnknown(), T0, RULES)
    assert isinstance(first, Wait)
    assert (first.announce, first.more, first.reason) == (Announcement.PROVISIONING, (), None)
    assert first.next_check == T0 + timedelta(minutes=5)
    assert first.state.teams is not None
    assert first.state.teams.last_seen == TeamsSeen.NOT_FOUND
    again = after_readiness(first.state, TeamsUnknown(), T0 + timedelta(minutes=5), RULES)
    assert isinstance(again, Wait)
    assert again.announce is None
    assert again.next_check == T0 + timedelta(minutes=15)  # the backoff doubles


@pytest.mark.parametrize(
    "configuration",
    [
        TeamsUser("user", frozenset({"Teams"})),
        TeamsUser("ineligibleUser"),
        TeamsUser("unknownFutureValue"),
        TeamsUser("guest", frozenset({"Teams", "PhoneSystem"})),
        TeamsUser("resourceAccount", frozenset({"PhoneSystem"})),
    ],
    ids=["no-phone-system", "ineligible", "unknown-future", "guest", "resource-account"],
)
def test_a_teams_account_that_is_not_a_phone_system_user_waits_as_no_phone_system(
    configuration: TeamsUser,
) -> None:
    """Only a Teams `user` with PhoneSystem is ready; anything else waits (no_phone_system)."""
    step = after_readiness(started(), configuration, T0, RULES)
    assert isinstance(step, Wait)
    assert step.state.teams is not None
    assert step.state.teams.last_seen == TeamsSeen.NO_PHONE_SYSTEM


def test_an_sfb_on_prem_user_is_announced_provisioning_then_blocked_and_rechecked() -> None:
    """sfbOnPremUser: `provisioning` and `blocked`/sfb_onprem_user at the first sight, then
    only rechecked (blocked stays the ledger's status while it lasts)."""
    sfb = TeamsUser("sfbOnPremUser", frozenset({"Teams", "PhoneSystem"}))
    first = after_readiness(started(), sfb, T0, RULES)
    assert isinstance(first, Wait)
    assert (first.announce, first.more) == (Announcement.PROVISIONING, (Announcement.BLOCKED,))
    assert first.reason is not None
    assert first.reason.code == "sfb_onprem_user"
    again = after_readiness(first.state, sfb, T0 + timedelta(minutes=5), RULES)
    assert isinstance(again, Wait)
    assert (again.announce, again.more) == (None, ())
    assert again.reason == first.reason
    assert settle(first.state, again, T0).progress.status == RequestStatus.BLOCKED  # type: ignore[union-attr]


def test_blocked_is_sent_once_per_request_with_the_first_reason() -> None:
    """A request blocked before (no seats) is not announced blocked again for Skype."""
    state = replace(started(), blocked_sent=True, provisioning_sent=True)
    step = after_readiness(state, TeamsUser("sfbOnPremUser"), T0, RULES)
    assert isinstance(step, Wait)
    assert (step.announce, step.more) == (None, ())


def test_a_ready_user_leads_to_reading_the_number() -> None:
    """A Teams user with Phone System: read the number before anything is ordered."""
    step = after_readiness(started(last_seen=TeamsSeen.NOT_FOUND), READY, T0, RULES)
    assert isinstance(step, CheckNumber)
    assert step.state.teams is not None
    assert step.state.teams.last_seen is None


def test_a_ready_user_who_already_has_the_number_is_done_already_assigned() -> None:
    """Teams shows the number on the user: nothing to order."""
    step = after_readiness(started(), replace(READY, telephone_numbers=(NUMBER,)), T0, RULES)
    assert isinstance(step, NumberAssigned)
    assert step.status == LicenseStatus.ALREADY_ASSIGNED


# ---------------------------------------------------------------- the number


def test_a_free_number_records_the_intent_and_is_ordered_at_the_next_check_only() -> None:
    """Free: the intent goes to the pending queue first (a Wait, soon); the order is sent
    by the check that reads it back."""
    first = after_number(started(), assignment(None), T0, RULES)
    assert isinstance(first, Wait)
    assert first.next_check == T0 + timedelta(seconds=30)
    assert first.state.teams is not None
    assert first.state.teams.order == NumberOrder(T0, None)
    assert next_read(first.state) == TeamsRead.NUMBER
    second = after_number(first.state, assignment(None), T0 + timedelta(seconds=30), RULES)
    assert isinstance(second, OrderNumber)


def test_a_direct_routing_number_unknown_to_the_inventory_is_ordered() -> None:
    """Direct Routing numbers appear in the inventory once assigned: absent is free."""
    assert isinstance(after_number(intended(), None, T0, RULES), OrderNumber)


@pytest.mark.parametrize(
    ("ordered", "status"),
    [(False, LicenseStatus.ALREADY_ASSIGNED), (True, LicenseStatus.ASSIGNED)],
)
def test_a_number_on_the_user_is_done(ordered: bool, status: LicenseStatus) -> None:
    """On this user: `already_assigned`, or `assigned` when this request ordered it."""
    state = intended() if ordered else started()
    step = after_number(state, assignment(USER_ID.upper()), T0, RULES)
    assert isinstance(step, NumberAssigned)
    assert step.status == status


@pytest.mark.parametrize("status", ["userAssigned", "voiceApplicationAssigned"])
def test_a_number_held_by_someone_else_fails_phone_number_rejected_without_an_order(
    status: str,
) -> None:
    """Someone else's: phone_number_rejected, Graph's view of it, and the licenses."""
    for state in (started(), intended()):
        step = after_number(state, assignment(OTHER, status), T0, RULES)
        assert isinstance(step, Fail)
        assert step.reason.code == "phone_number_rejected"
        assert step.details["graphError"]["code"] == status
        assert step.details["graphError"]["call"] == "numberAssignments"
        assert OTHER not in str(step.details)  # nobody else's id in our event
        assert step.details["licenses"] == licenses_json()


@pytest.mark.parametrize("ordered", [False, True])
def test_a_number_with_an_order_under_way_is_waited_for_not_ordered(ordered: bool) -> None:
    """assignmentPending (ours after a crash, or anyone's): wait soon, order nothing."""
    state = intended() if ordered else started()
    step = after_number(state, assignment(None, activation="assignmentPending"), T0, RULES)
    assert isinstance(step, Wait)
    assert step.next_check == T0 + timedelta(seconds=30)
    assert step.state.teams is not None
    assert step.state.teams.order == (NumberOrder(T0) if ordered else None)


# ---------------------------------------------------------------- the order


def test_an_accepted_order_is_followed_by_its_operation() -> None:
    """202 with the operation's id: recorded, looked at again soon."""
    step = after_order(intended(), "QXNzaWdubWVudHwx", T0, RULES)
    assert isinstance(step, Wait)
    assert step.state.teams is not None
    assert step.state.teams.order == NumberOrder(T0, "QXNzaWdubWVudHwx")
    assert next_read(step.state) == TeamsRead.OPERATION


def test_an_order_accepted_without_an_operation_is_followed_by_the_number() -> None:
    """No Location: the number's state says where the order stands."""
    step = after_order(intended(), None, T0, RULES)
    assert isinstance(step, Wait)
    assert next_read(step.state) == TeamsRead.NUMBER


def test_an_order_graph_refuses_at_once_fails_phone_number_rejected_with_its_error() -> None:
    """400 (a body or number Graph cannot take): final, Graph's own words."""
    refused = error(GraphErrorKind.REJECTED, GraphCall.ASSIGN_NUMBER, 400)
    step = after_order_error(intended(), refused, T0, RULES)
    assert isinstance(step, Fail)
    assert step.reason.code == "phone_number_rejected"
    assert step.details["graphError"] == {
        "status": 400,
        "code": "Code",
        "message": "Graph said no",
        "call": "assignNumber",
    }
    assert step.details["licenses"] == licenses_json()


@pytest.mark.parametrize(
    ("kind", "status"), [(GraphErrorKind.THROTTLED, 429), (GraphErrorKind.UNAVAILABLE, 503)]
)
def test_an_order_graph_did_not_take_keeps_the_intent_and_waits(
    kind: GraphErrorKind, status: int
) -> None:
    """429 or 503: wait (never before Retry-After); the intent stays, so the next check
    reads the number before ordering again."""
    trouble = error(kind, GraphCall.ASSIGN_NUMBER, status, retry_after=600.0)
    step = after_order_error(intended(), trouble, T0, RULES)
    assert isinstance(step, Wait)
    assert step.next_check == T0 + timedelta(seconds=600)
    assert next_read(step.state) == TeamsRead.NUMBER


# ---------------------------------------------------------------- the operation


@pytest.mark.parametrize("status", [OperationStatus.NOT_STARTED, OperationStatus.RUNNING])
def test_an_operation_still_running_is_looked_at_again_soon(status: OperationStatus) -> None:
    """notStarted, running: wait, soon."""
    step = after_operation(intended("op"), NumberOperation(status), T0, RULES)
    assert isinstance(step, Wait)
    assert step.next_check == T0 + timedelta(seconds=30)
    assert next_read(step.state) == TeamsRead.OPERATION


def test_a_succeeded_operation_is_the_number_assigned() -> None:
    """succeeded: done, `assigned`."""
    step = after_operation(intended("op"), NumberOperation(OperationStatus.SUCCEEDED), T0, RULES)
    assert isinstance(step, NumberAssigned)
    assert step.status == LicenseStatus.ASSIGNED


@pytest.mark.parametrize(
    "detail",
    [
        "Telephone Number '+33155550100' has already been assigned to another user",
        "Telephone Number '+33155550100' is not found from tenant 'c0ffee00'",
        "Telephone Number '+33155550100' cannot be assigned to a user: its capabilities do "
        "not include 'userAssignment'",
    ],
    ids=["someone-elses", "unknown-or-other-type", "not-a-user-number"],
)
def test_a_failed_operation_waiting_cannot_cure_fails_phone_number_rejected(detail: str) -> None:
    """A number unknown, of another type, or someone else's: final, with Teams' words."""
    step = after_operation(
        intended("op"), NumberOperation(OperationStatus.FAILED, detail), T0, RULES
    )
    assert isinstance(step, Fail)
    assert step.reason.code == "phone_number_rejected"
    assert step.details["graphError"] == {
        "status": 200,
        "code": "failed",
        "message": detail,
        "call": "assignNumberOperation",
    }
    assert step.details["licenses"] == licenses_json()


@pytest.mark.parametrize(
    ("status", "detail", "seen"),
    [
        (
            OperationStatus.FAILED,
            f"User '{USER_ID}' lacks appropriate licenses to assign a 'OperatorConnect' number",
            TeamsSeen.NO_PHONE_SYSTEM,
        ),
        (
            OperationStatus.FAILED,
            f"User '{USER_ID}' is not found from tenant 'c0ffee00'",
            TeamsSeen.NOT_FOUND,
        ),
        (OperationStatus.FAILED, "Service is unavailable. Please try again", TeamsSeen.UNREACHABLE),
        (OperationStatus.FAILED, None, TeamsSeen.UNREACHABLE),
        (OperationStatus.SKIPPED, None, TeamsSeen.UNREACHABLE),
        (OperationStatus.UNKNOWN_FUTURE_VALUE, None, TeamsSeen.UNREACHABLE),
    ],
    ids=["lacks-licenses", "user-not-found", "unavailable", "no-detail", "skipped", "unknown"],
)
def test_a_failed_operation_waiting_may_cure_forgets_the_order_and_waits_for_teams(
    status: OperationStatus, detail: str | None, seen: TeamsSeen
) -> None:
    """Teams not ready yet, or its service down: back to readiness, the usual backoff,
    and a new order only after the number is read again."""
    step = after_operation(intended("op", checks=2), NumberOperation(status, detail), T0, RULES)
    assert isinstance(step, Wait)
    assert step.next_check == T0 + timedelta(minutes=10)
    assert step.state.teams is not None
    assert (step.state.teams.order, step.state.teams.last_seen) == (None, seen)
    assert next_read(step.state) == TeamsRead.CONFIGURATION


def test_an_order_failed_for_skype_for_business_blocks_the_request() -> None:
    """The user homed in Skype for Business Server meanwhile: blocked/sfb_onprem_user."""
    detail = f"User '{USER_ID}' is homed in Skype for Business Server on-premises; move it"
    state = replace(intended("op"), provisioning_sent=True)
    step = after_operation(state, NumberOperation(OperationStatus.FAILED, detail), T0, RULES)
    assert isinstance(step, Wait)
    assert step.announce == Announcement.BLOCKED
    assert step.reason is not None
    assert step.reason.code == "sfb_onprem_user"


def test_an_operation_graph_no_longer_knows_is_followed_by_the_number() -> None:
    """404 on the operation: keep the intent, read the number instead."""
    assert next_read(operation_lost(intended("op"))) == TeamsRead.NUMBER


# ---------------------------------------------------------------- trouble and the deadline


@pytest.mark.parametrize(
    ("call", "permission"),
    [
        (GraphCall.TEAMS_CONFIGURATION, "TeamsUserConfiguration.Read.All"),
        (GraphCall.NUMBER_ASSIGNMENTS, "TeamsTelephoneNumber.Read.All"),
        (GraphCall.ASSIGN_NUMBER, "TeamsTelephoneNumber.ReadWrite.All"),
        (GraphCall.NUMBER_OPERATION, "TeamsTelephoneNumber.Read.All"),
    ],
)
def test_a_403_on_a_teams_call_blocks_graph_access_denied_naming_the_permission(
    call: GraphCall, permission: str
) -> None:
    """403: blocked once with `data.permission` (the least privileged covering the call)."""
    denied = error(GraphErrorKind.ACCESS_DENIED, call, 403)
    step = after_teams_error(replace(started(), provisioning_sent=True), denied, T0, RULES)
    assert isinstance(step, Wait)
    assert step.announce == Announcement.BLOCKED
    assert step.reason is not None
    assert step.reason.code == "graph_access_denied"
    assert step.details == {"permission": permission}
    assert "TeamsTelephoneNumber.ReadWrite.All" in step.reason.message


def test_an_unreadable_configuration_waits_for_retry_after() -> None:
    """A throttled configuration read (Teams' own budget): not before Retry-After."""
    throttled = error(GraphErrorKind.THROTTLED, GraphCall.TEAMS_CONFIGURATION, 429, retry_after=900)
    step = after_readiness(started(), TeamsUnread(throttled), T0, RULES)
    assert isinstance(step, Wait)
    assert step.next_check == T0 + timedelta(seconds=900)


def test_a_read_graph_refuses_as_malformed_fails_graph_rejected_with_the_licenses() -> None:
    """A 400 on a read will not pass by waiting: graph_rejected."""
    refused = error(GraphErrorKind.REJECTED, GraphCall.NUMBER_ASSIGNMENTS, 400)
    step = after_teams_error(started(), refused, T0, RULES)
    assert isinstance(step, Fail)
    assert step.reason.code == "graph_rejected"
    assert step.details["licenses"] == licenses_json()


@pytest.mark.parametrize(
    ("reading", "seen"),
    [
        (TeamsUnknown(), "not_found"),
        (TeamsUser("sfbOnPremUser"), "sfb_onprem_user"),
        (TeamsUser("user", frozenset({"Teams"})), "no_phone_system"),
        (
            TeamsUnread(error(GraphErrorKind.UNAVAILABLE, GraphCall.TEAMS_CONFIGURATION, 0)),
            "unreachable",
        ),
    ],
)
def test_teams_never_ready_by_the_deadline_fails_teams_not_ready_with_what_it_last_said(
    reading: Any, seen: str
) -> None:
    """At the Teams deadline: teams_not_ready, `lastSeen`, and the licenses."""
    deadline = T0 + timedelta(hours=2)
    step = after_readiness(started(), reading, deadline, RULES)
    assert isinstance(step, Fail)
    assert step.reason.code == "teams_not_ready"
    assert step.details["lastSeen"] == seen
    assert step.details["licenses"] == licenses_json()


def test_an_order_still_running_at_the_deadline_fails_teams_not_ready() -> None:
    """The contract: an operation still running is retried until the Teams deadline."""
    running = NumberOperation(OperationStatus.RUNNING)
    step = after_operation(intended("op"), running, T0 + timedelta(hours=2), RULES)
    assert isinstance(step, Fail)
    assert step.reason.code == "teams_not_ready"
    assert step.details["lastSeen"] == "unreachable"
    assert "had not completed" in step.reason.message


def test_access_denied_until_the_deadline_fails_graph_access_denied_with_the_licenses() -> None:
    """Graph refused the app its last Teams call: graph_access_denied, not teams_not_ready."""
    denied = error(GraphErrorKind.ACCESS_DENIED, GraphCall.ASSIGN_NUMBER, 403)
    step = after_order_error(intended(), denied, T0 + timedelta(hours=3), RULES)
    assert isinstance(step, Fail)
    assert step.reason.code == "graph_access_denied"
    assert step.details["permission"] == "TeamsTelephoneNumber.ReadWrite.All"
    assert step.details["lastError"]["call"] == "assignNumber"
    assert step.details["licenses"] == licenses_json()


def test_waits_never_go_past_the_teams_deadline() -> None:
    """The backoff is capped at the step's deadline, not the sync deadline."""
    late = T0 + timedelta(hours=1, minutes=58)
    step = after_readiness(started(checks=9), TeamsUnknown(), late, RULES)
    assert isinstance(step, Wait)
    assert step.next_check == T0 + timedelta(hours=2)


# ---------------------------------------------------------------- events and ledger


def test_a_wait_of_the_step_announces_provisioning_with_the_licenses_and_its_deadline() -> None:
    """`provisioning`: licenses, nextCheckAt, deadline (Teams'); the ledger says provisioning."""
    step = after_readiness(started(), TeamsUnknown(), T0, RULES)
    assert isinstance(step, Wait)
    park = settle(started(), step, T0)
    assert isinstance(park, Park)
    (event,) = park.announcements
    assert event.id == "HR-T1:provisioning"
    assert event.data["userId"] == USER_ID
    assert event.data["licenses"] == licenses_json()
    assert event.data["deadline"] == "2026-11-24T11:00:00Z"
    assert park.progress.status == RequestStatus.PROVISIONING
    assert park.progress.deadline == T0 + timedelta(hours=2)
    assert park.progress.last_seen == "not_found"


def test_the_number_assigned_is_licensed_with_data_teams_and_the_licenses_as_they_were() -> None:
    """`licensed` carries data.teams and the licensing outcomes (not already_assigned)."""
    done = after_operation(intended("op"), NumberOperation(OperationStatus.SUCCEEDED), T0, RULES)
    conclusion = settle(intended("op"), done, T0)
    assert isinstance(conclusion, Conclude)
    data = conclusion.event.data
    assert data["teams"] == {
        "phoneNumber": NUMBER,
        "numberType": "operatorConnect",
        "status": "assigned",
    }
    assert data["licenses"] == licenses_json()
    assert (data["userId"], data["usageLocation"]) == (USER_ID, "FR")


def test_a_failure_decided_as_the_step_begins_names_the_user() -> None:
    """A Teams-step failure in the check that licensed the user still carries userId."""
    before = admitted()
    step = after_number(started(), assignment(OTHER), T0, RULES)
    conclusion = settle(before, step, T0)
    assert isinstance(conclusion, Conclude)
    assert conclusion.event.data["userId"] == USER_ID


# ---------------------------------------------------------------- the prerequisite


@pytest.mark.parametrize(
    ("licenses", "own", "missing"),
    [
        ((LicenseRequest("MCOEV"),), {}, False),
        ((LicenseRequest("SPE_E5"),), {}, False),
        ((LicenseRequest("SPE_E5", ("MCOEV",)),), {}, True),
        ((LicenseRequest("ENTERPRISEPACK"),), {}, True),
        ((LicenseRequest("ENTERPRISEPACK"),), {MCOEV: frozenset()}, False),
        ((LicenseRequest("ENTERPRISEPACK"),), {E5: frozenset({MCOEV_PLAN})}, True),
        ((LicenseRequest("VISIOCLIENT"),), {}, True),
    ],
    ids=[
        "requested",
        "in-a-requested-suite",
        "disabled-in-the-request",
        "nowhere",
        "the-users-own",
        "disabled-on-the-users-own",
        "unknown-sku",
    ],
)
def test_phone_system_must_be_among_the_requested_or_the_users_own_plans(
    licenses: tuple[LicenseRequest, ...], own: dict[str, frozenset[str]], missing: bool
) -> None:
    """MCOEV in a requested SKU (not disabled) or in one the user holds (not disabled)."""
    state = admitted(*licenses)
    who = user(assigned_sku_ids=frozenset(own), disabled_plans=own)
    found = phone_system_missing(state, who, CATALOG)
    assert (found is not None) == missing
    if found is not None:
        assert found.reason.code == "missing_prerequisite"


def test_a_request_without_teams_needs_no_phone_system() -> None:
    """No `teams`: no prerequisite."""
    plain = replace(admitted(), request=replace(admitted().request, teams=None))
    assert phone_system_missing(plain, user(), SkuCatalog(())) is None
