"""Pure decisions: what happens next for a request, given what Graph said and the time."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.decisions import (
    Backoff,
    Fail,
    License,
    LicensePlan,
    Rules,
    Wait,
    admit,
    after_graph_error,
    after_lookup,
    after_no_seats,
    plan_licenses,
)
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind, InvalidRequest
from shared.domain.requests import LicenseRequest, OnboardingRequest, UserIdentifiers
from shared.domain.state import PendingState
from shared.domain.tenant import (
    Ambiguous,
    DirectoryUser,
    Found,
    LookupFailed,
    NotFound,
    ServicePlan,
    Sku,
    SkuCatalog,
)
from tests.fakes import E3, MCOEV, T0, YAMMER

BACKOFF = Backoff(timedelta(minutes=5), timedelta(minutes=30))
RULES = Rules(BACKOFF, sync_timeout=timedelta(hours=1))
E3_SKU = Sku(
    E3, "ENTERPRISEPACK", "User", "Enabled", 10, 3, (ServicePlan(YAMMER, "YAMMER_ENTERPRISE"),)
)
MCOEV_SKU = Sku(MCOEV, "MCOEV", "User", "Enabled", 5, 5)
CATALOG = SkuCatalog((E3_SKU, MCOEV_SKU))


def state(**changes: object) -> PendingState:
    request = OnboardingRequest("HR-1", UserIdentifiers("jane@contoso.com"))
    admitted = admit(
        request, T0, replace(RULES, default_licenses=(LicenseRequest("ENTERPRISEPACK"),))
    )
    return replace(admitted, **changes)  # type: ignore[arg-type]


def user(**changes: object) -> DirectoryUser:
    base = DirectoryUser("u1", "jane@contoso.com", True, "FR", frozenset())
    return replace(base, **changes)  # type: ignore[arg-type]


def graph_error(
    kind: GraphErrorKind,
    call: GraphCall = GraphCall.LOOKUP,
    status: int = 503,
    message: str = "down",
    **options: object,
) -> GraphError:
    return GraphError(message, kind=kind, call=call, status=status, **options)  # type: ignore[arg-type]


def plan(
    licenses: list[LicenseRequest], who: DirectoryUser, **options: object
) -> LicensePlan | Fail:
    requested = options.pop("requested_location", None)
    rules = replace(
        RULES,
        default_location=options.get("default_location"),
        may_write_location=options.get("may_write_location", True),
    )
    return plan_licenses(licenses, CATALOG, who, requested_location=requested, rules=rules)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("checks", "minutes"), [(1, 5), (2, 10), (3, 20), (4, 30), (9, 30), (500, 30)]
)
def test_backoff_doubles_from_the_initial_delay_up_to_the_maximum(
    checks: int, minutes: int
) -> None:
    """And never overflows, however many checks there were."""
    assert BACKOFF.delay(checks) == timedelta(minutes=minutes)


def test_admission_resolves_default_licenses_and_deadline() -> None:
    """What the message left out comes from the settings, once, at receipt."""
    admitted = state()
    assert admitted.licenses == (LicenseRequest("ENTERPRISEPACK"),)
    assert admitted.deadline == T0 + timedelta(hours=1)


def test_admission_without_any_license_is_an_invalid_request() -> None:
    """Neither the message nor DEFAULT_LICENSES say what to assign."""
    with pytest.raises(InvalidRequest) as caught:
        admit(OnboardingRequest("HR-1", UserIdentifiers("a@b.com")), T0, RULES)
    assert caught.value.request_id == "HR-1"


def test_a_synced_user_goes_on_to_licensing() -> None:
    """onPremisesSyncEnabled true is the only 'synced'."""
    decision = after_lookup(state(), Found(user()), T0, RULES)
    assert isinstance(decision, License)
    assert decision.user == user()
    assert (decision.state.last_seen, decision.state.seen_synced) == ("synced", True)


@pytest.mark.parametrize(
    ("lookup", "seen"),
    [
        (NotFound(), "not_found"),
        (Found(user(sync_enabled=None)), "not_synced"),
        (Found(user(sync_enabled=False)), "not_synced"),
    ],
)
def test_not_yet_synced_waits_and_announces_awaiting_sync_the_first_time(
    lookup: object, seen: str
) -> None:
    """null and false both mean not yet; the first wait is announced."""
    decision = after_lookup(state(), lookup, T0, RULES)  # type: ignore[arg-type]
    assert isinstance(decision, Wait)
    assert decision.announce == "awaiting_sync"
    assert decision.state.last_seen == seen
    assert decision.next_check == T0 + timedelta(minutes=5)
    again = after_lookup(decision.state, lookup, T0 + timedelta(minutes=5), RULES)  # type: ignore[arg-type]
    assert isinstance(again, Wait)
    assert again.announce is None
    assert again.next_check == T0 + timedelta(minutes=15)


def test_the_next_check_never_goes_past_the_deadline() -> None:
    """A 30-minute backoff 10 minutes before the deadline checks at the deadline."""
    late = T0 + timedelta(minutes=50)
    decision = after_lookup(state(checks=6), NotFound(), late, RULES)
    assert isinstance(decision, Wait)
    assert decision.next_check == T0 + timedelta(hours=1)


def test_at_the_deadline_not_synced_fails_with_what_was_last_seen() -> None:
    """sync_timeout with lastSeen."""
    decision = after_lookup(state(), Found(user(sync_enabled=None)), T0 + timedelta(hours=1), RULES)
    assert isinstance(decision, Fail)
    assert decision.reason.code == "sync_timeout"
    assert decision.details == {"lastSeen": "not_synced"}


def test_graph_unavailable_waits_silently_and_remembers_the_error() -> None:
    """No awaiting_sync for transient trouble; Retry-After lengthens the wait."""
    error = graph_error(GraphErrorKind.THROTTLED, status=429, message="busy", retry_after=900)
    decision = after_lookup(state(), LookupFailed(error), T0, RULES)
    assert isinstance(decision, Wait)
    assert decision.announce is None
    assert decision.next_check == T0 + timedelta(seconds=900)
    assert decision.state.last_error is not None
    assert decision.state.last_error.to_json() == {
        "status": 429,
        "code": "",
        "message": "busy",
        "call": "lookup",
    }


def test_a_throttled_request_comes_back_at_graphs_retry_after_not_after_the_recheck_backoff() -> (
    None
):
    """Throttling is not sync: Retry-After 3 s brings a checked request back in 3 s, not
    after the 5 minutes meant for waiting on Active Directory."""
    checked = state(checks=3, first_check_done=True, seen_synced=True)
    throttled = graph_error(GraphErrorKind.THROTTLED, status=429, retry_after=3)
    decision = after_graph_error(checked, throttled, T0, RULES)
    assert isinstance(decision, Wait)
    assert decision.next_check == T0 + timedelta(seconds=3)
    assert decision.announce is None


def test_a_write_the_app_did_not_send_comes_back_at_its_turn() -> None:
    """Not sent because the app's turn at Graph was 75 s away: back in 75 s."""
    checked = state(checks=1, first_check_done=True, seen_synced=True)
    not_sent = graph_error(
        GraphErrorKind.THROTTLED,
        GraphCall.ASSIGN_LICENSE,
        status=429,
        message="not sent: the app's next write turn is 75.0 s away (20 writes/s)",
        retry_after=75,
    )
    decision = after_graph_error(checked, not_sent, T0, RULES)
    assert isinstance(decision, Wait)
    assert decision.next_check == T0 + timedelta(seconds=75)


def test_a_throttled_request_never_comes_back_after_its_deadline() -> None:
    """Retry-After past the deadline (after the first check): back at the deadline, to
    fail honestly then."""
    checked = state(checks=2, first_check_done=True, seen_synced=True)
    near = checked.deadline - timedelta(seconds=10)
    throttled = graph_error(GraphErrorKind.THROTTLED, status=429, retry_after=60)
    decision = after_graph_error(checked, throttled, near, RULES)
    assert isinstance(decision, Wait)
    assert decision.next_check == checked.deadline


def test_an_outage_still_waits_the_recheck_backoff() -> None:
    """A 503 is not throttling: the usual backoff (5 minutes after the first check)."""
    checked = state(checks=1, first_check_done=True, seen_synced=True)
    decision = after_graph_error(checked, graph_error(GraphErrorKind.UNAVAILABLE), T0, RULES)
    assert isinstance(decision, Wait)
    assert decision.next_check == T0 + timedelta(minutes=5)


def test_graph_unavailable_at_the_deadline_keeps_the_last_real_observation() -> None:
    """lastSeen stays not_synced; lastError says why the last check failed."""
    decision = after_lookup(
        state(last_seen="not_synced"),
        LookupFailed(graph_error(GraphErrorKind.UNAVAILABLE)),
        T0 + timedelta(hours=2),
        RULES,
    )
    assert isinstance(decision, Fail)
    assert decision.details["lastSeen"] == "not_synced"
    assert decision.details["lastError"]["status"] == 503


def test_an_ambiguous_identifier_fails_at_once() -> None:
    """Never a guess between two users."""
    decision = after_lookup(state(), Ambiguous("employeeId", 2), T0, RULES)
    assert isinstance(decision, Fail)
    assert decision.reason.code == "user_ambiguous"


def test_a_permanent_refusal_of_the_lookup_fails_with_graphs_words() -> None:
    """graph_rejected with graphError."""
    refused = graph_error(
        GraphErrorKind.REJECTED, status=400, message="Invalid filter clause", code="BadRequest"
    )
    decision = after_lookup(state(), LookupFailed(refused), T0, RULES)
    assert isinstance(decision, Fail)
    assert decision.details["graphError"]["code"] == "BadRequest"


def test_no_seats_is_announced_once_then_fails_at_the_deadline() -> None:
    """blocked, then silent waits, then no_seats."""
    first = after_no_seats(state(), "none left", T0, RULES)
    assert isinstance(first, Wait)
    assert first.announce == "blocked"
    second = after_no_seats(first.state, "none left", T0, RULES)
    assert isinstance(second, Wait)
    assert second.announce is None
    final = after_no_seats(first.state, "none left", T0 + timedelta(hours=1), RULES)
    assert isinstance(final, Fail)
    assert final.reason.code == "no_seats"


def test_plans_resolve_by_name_and_skus_already_held_are_skipped() -> None:
    """YAMMER by name becomes its id; a SKU held (even via a group) is already_assigned."""
    result = plan(
        [LicenseRequest("enterprisepack", ("yammer_enterprise",)), LicenseRequest("MCOEV")],
        user(assigned_sku_ids=frozenset({MCOEV})),
    )
    assert isinstance(result, LicensePlan)
    assert [(a.sku_id, a.disabled_plan_ids) for a in result.to_assign] == [(E3, (YAMMER,))]
    assert [o.status for o in result.outcomes] == ["assigned", "already_assigned"]
    assert result.short_of_seats == ()


def test_a_sku_without_free_seats_is_flagged_only_when_it_must_be_assigned() -> None:
    """MCOEV has 0 free seats: flagged for a new user, not for one who has it."""
    new = plan([LicenseRequest("MCOEV")], user())
    held = plan([LicenseRequest("MCOEV")], user(assigned_sku_ids=frozenset({MCOEV})))
    assert isinstance(new, LicensePlan)
    assert new.short_of_seats == ("MCOEV",)
    assert isinstance(held, LicensePlan)
    assert held.short_of_seats == ()


@pytest.mark.parametrize(
    ("options", "who", "location", "write"),
    [
        (
            {"requested_location": "BE", "default_location": "DE"},
            user(usage_location="FR"),
            "FR",
            False,
        ),
        (
            {"requested_location": "BE", "default_location": "DE"},
            user(usage_location=None),
            "BE",
            True,
        ),
        ({"default_location": "DE"}, user(usage_location=None), "DE", True),
    ],
)
def test_usage_location_comes_from_the_user_then_the_message_then_the_default(
    options: dict[str, object], who: DirectoryUser, location: str, write: bool
) -> None:
    """A value synced from AD wins; written only when the user has none."""
    result = plan([LicenseRequest("ENTERPRISEPACK")], who, **options)
    assert isinstance(result, LicensePlan)
    assert (result.usage_location, result.write_usage_location) == (location, write)


def test_nothing_to_assign_needs_no_usage_location() -> None:
    """A user who already has everything is licensed even without a location."""
    result = plan(
        [LicenseRequest("MCOEV")], user(usage_location=None, assigned_sku_ids=frozenset({MCOEV}))
    )
    assert isinstance(result, LicensePlan)
    assert result.to_assign == ()


@pytest.mark.parametrize(
    ("licenses", "code"),
    [
        ([LicenseRequest("VISIOCLIENT")], "unknown_sku"),
        ([LicenseRequest("ENTERPRISEPACK", ("NOT_A_PLAN",))], "unknown_service_plan"),
    ],
)
def test_unknown_names_fail_before_anything_is_written(
    licenses: list[LicenseRequest], code: str
) -> None:
    """Resolved against subscribedSkus."""
    result = plan(licenses, user())
    assert isinstance(result, Fail)
    assert result.reason.code == code


def test_a_sku_that_is_not_enabled_for_users_cannot_be_assigned() -> None:
    """capabilityStatus Suspended or appliesTo Company: unknown_sku, with the reason."""
    suspended = SkuCatalog((replace(E3_SKU, capability_status="Suspended"),))
    result = plan_licenses(
        [LicenseRequest("ENTERPRISEPACK")],
        suspended,
        user(),
        requested_location=None,
        rules=RULES,
    )
    assert isinstance(result, Fail)
    assert "Suspended" in result.reason.message


# --- real tenants: replication lag, permissions, honest codes ---------------------------


SYNCED = state(last_seen="synced", seen_synced=True)


@pytest.mark.parametrize(
    ("kind", "call"),
    [
        (GraphErrorKind.NOT_FOUND, GraphCall.SET_USAGE_LOCATION),
        (GraphErrorKind.NOT_FOUND, GraphCall.ASSIGN_LICENSE),
        (GraphErrorKind.THROTTLED, GraphCall.ASSIGN_LICENSE),
        (GraphErrorKind.UNAVAILABLE, GraphCall.SUBSCRIBED_SKUS),
    ],
)
def test_replication_lag_and_outages_on_a_synced_user_wait_silently(
    kind: GraphErrorKind, call: GraphCall
) -> None:
    """A 404 on a write to a user a lookup just returned is lag: never a failure at once."""
    decision = after_graph_error(SYNCED, graph_error(kind, call, status=404), T0, RULES)
    assert isinstance(decision, Wait)
    assert decision.announce is None
    assert decision.state.last_error is not None
    assert decision.state.last_error.kind == kind


def test_a_synced_user_whose_writes_keep_failing_ends_graph_unavailable_not_sync_timeout() -> None:
    """Honest codes: sync_timeout only for a user never seen synced."""
    error = graph_error(GraphErrorKind.NOT_FOUND, GraphCall.ASSIGN_LICENSE, status=404)
    decision = after_graph_error(SYNCED, error, T0 + timedelta(hours=1), RULES)
    assert isinstance(decision, Fail)
    assert decision.reason.code == "graph_unavailable"
    assert decision.details["lastError"]["call"] == "assignLicense"
    assert "lastSeen" not in decision.details


def test_a_user_never_seen_synced_ends_sync_timeout_whatever_graph_said_last() -> None:
    """Graph never answered: lastSeen unreachable, and the last error."""
    error = graph_error(GraphErrorKind.UNAVAILABLE)
    decision = after_lookup(state(), LookupFailed(error), T0 + timedelta(hours=1), RULES)
    assert isinstance(decision, Fail)
    assert decision.reason.code == "sync_timeout"
    assert decision.details["lastSeen"] == "unreachable"
    assert decision.details["lastError"]["status"] == 503


@pytest.mark.parametrize("status", [401, 403])
def test_access_denied_blocks_once_naming_the_permission(status: int) -> None:
    """blocked/graph_access_denied once; data.permission for a 403."""
    error = graph_error(
        GraphErrorKind.ACCESS_DENIED,
        GraphCall.ASSIGN_LICENSE,
        status=status,
        code="Authorization_RequestDenied",
    )
    first = after_graph_error(SYNCED, error, T0, RULES)
    assert isinstance(first, Wait)
    assert first.announce == "blocked"
    assert first.reason is not None
    assert first.reason.code == "graph_access_denied"
    assert "LicenseAssignment.ReadWrite.All" in first.reason.message
    expected = {"permission": "LicenseAssignment.ReadWrite.All"} if status == 403 else {}
    assert first.details == expected
    again = after_graph_error(first.state, error, T0 + timedelta(minutes=5), RULES)
    assert isinstance(again, Wait)
    assert again.announce is None


def test_access_denied_until_the_deadline_fails_graph_access_denied_with_the_permission() -> None:
    """Even on the lookup: a missing User.Read.All is not a sync_timeout."""
    error = graph_error(GraphErrorKind.ACCESS_DENIED, GraphCall.LOOKUP, status=403)
    decision = after_lookup(state(), LookupFailed(error), T0 + timedelta(hours=1), RULES)
    assert isinstance(decision, Fail)
    assert decision.reason.code == "graph_access_denied"
    assert decision.details["permission"] == "User.Read.All"
    assert decision.details["lastError"]["status"] == 403


def test_a_lookup_that_answers_after_a_denial_forgets_the_denial() -> None:
    """Once the grant arrives, the request is judged on what Graph now says."""
    error = graph_error(GraphErrorKind.ACCESS_DENIED, GraphCall.LOOKUP, status=403)
    blocked = after_lookup(state(), LookupFailed(error), T0, RULES)
    assert isinstance(blocked, Wait)
    final = after_lookup(blocked.state, NotFound(), T0 + timedelta(hours=1), RULES)
    assert isinstance(final, Fail)
    assert final.reason.code == "sync_timeout"
    assert final.details == {"lastSeen": "not_found"}


def test_invalid_usage_location_after_the_app_wrote_one_is_replication_lag() -> None:
    """The app's own PATCH succeeded: the replica has not seen it yet."""
    error = graph_error(GraphErrorKind.USAGE_LOCATION_INVALID, GraphCall.ASSIGN_LICENSE, status=400)
    first = after_graph_error(
        SYNCED, error, T0, RULES, user=user(usage_location=None), wrote_usage_location=True
    )
    assert isinstance(first, Wait)
    assert first.state.usage_location_written
    # The next check's lookup may still show no location: the flag carries the knowledge.
    again = after_graph_error(first.state, error, T0, RULES, user=user(usage_location=None))
    assert isinstance(again, Wait)


def test_invalid_usage_location_when_the_user_has_one_is_replication_lag_too() -> None:
    """Set by AD a moment ago: Graph's lookup shows it, assignLicense does not yet."""
    error = graph_error(GraphErrorKind.USAGE_LOCATION_INVALID, GraphCall.ASSIGN_LICENSE, status=400)
    decision = after_graph_error(SYNCED, error, T0, RULES, user=user(usage_location="FR"))
    assert isinstance(decision, Wait)


def test_a_genuine_invalid_usage_location_fails_at_once() -> None:
    """Nobody wrote one and the user has none: usage_location_missing."""
    error = graph_error(GraphErrorKind.USAGE_LOCATION_INVALID, GraphCall.ASSIGN_LICENSE, status=400)
    decision = after_graph_error(SYNCED, error, T0, RULES, user=user(usage_location=None))
    assert isinstance(decision, Fail)
    assert decision.reason.code == "usage_location_missing"


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (GraphErrorKind.MUTUALLY_EXCLUSIVE, "mutually_exclusive_plans"),
        (GraphErrorKind.MISSING_PREREQUISITE, "missing_prerequisite"),
        (GraphErrorKind.UNKNOWN_SKU, "unknown_sku"),
        (GraphErrorKind.REJECTED, "graph_rejected"),
    ],
)
def test_permanent_refusals_fail_with_the_contracts_code_and_graphs_words(
    kind: GraphErrorKind, code: str
) -> None:
    """graphError carries status, code, message and the refused call."""
    error = graph_error(kind, GraphCall.ASSIGN_LICENSE, status=400, code="Request_BadRequest")
    decision = after_graph_error(SYNCED, error, T0, RULES)
    assert isinstance(decision, Fail)
    assert decision.reason.code == code
    assert decision.details["graphError"]["code"] == "Request_BadRequest"
