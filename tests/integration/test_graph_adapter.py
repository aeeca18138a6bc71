"""The Graph adapter through msgraph-sdk, over real HTTP, against the Graph emulator.

Every exchange is checked against Microsoft's OpenAPI excerpt by the `graph_emulator`
fixture, including the request bodies the app sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote

import pytest

from local_stack.graph_emulator import Emulator
from shared.adapters.graph import GraphDirectory, connect
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.domain.requests import UserIdentifiers
from shared.domain.tenant import Ambiguous, Found, LicenseAssignment, LookupFailed, NotFound
from shared.service.pacing import SharedPacer
from tests.fakes import FakePacingStore
from tests.support.graph import (
    DOLLAR_UPN,
    E3_SKU,
    EXCHANGE_STANDARD_SKU,
    GUEST_UPN,
    HOSTILE_EMPLOYEE_ID,
    JANE_ID,
    JANE_UPN,
    MCOEV_SKU,
    QUOTE_UPN,
    TEAMS_SKU,
)

T = TypeVar("T")


def run(emulator: Emulator, use: Callable[[GraphDirectory], Awaitable[T]], **options: Any) -> T:
    """Run `use` with a GraphDirectory on the emulator, closing its client afterwards."""

    async def main() -> T:
        directory = connect(emulator.base_url, local=True, **options)
        try:
            return await use(directory)
        finally:
            await directory.aclose()

    return asyncio.run(main())


def graph_calls(emulator: Emulator) -> list[dict[str, Any]]:
    return [e for e in emulator.requests() if e["path"].startswith("/v1.0")]


def lookup(emulator: Emulator, **ids: str) -> Any:
    return run(emulator, lambda d: d.find_user(UserIdentifiers(**ids)))


def test_a_user_is_found_by_upn_with_one_get_selecting_the_sync_fields(
    graph_emulator: Emulator,
) -> None:
    """One request; the sync fields are selected (Graph omits them by default)."""
    result = lookup(graph_emulator, user_principal_name=JANE_UPN)
    assert isinstance(result, Found)
    assert result.user.id == JANE_ID
    assert result.user.synced
    assert result.user.usage_location == "FR"
    (call,) = graph_calls(graph_emulator)
    assert call["method"] == "GET"
    select = parse_qs(call["query"])["$select"][0].split(",")
    assert {"onPremisesSyncEnabled", "assignedLicenses", "usageLocation"} <= set(select)


@pytest.mark.parametrize("upn", [GUEST_UPN, DOLLAR_UPN, QUOTE_UPN])
def test_unusual_upns_reach_graph_intact(graph_emulator: Emulator, upn: str) -> None:
    """Guest #EXT# is percent-encoded, $ uses the key syntax, ' survives."""
    result = lookup(graph_emulator, user_principal_name=upn)
    assert isinstance(result, Found)
    assert result.user.user_principal_name == upn
    (call,) = graph_calls(graph_emulator)
    assert "#" not in call["path"]
    if upn.startswith("$"):
        assert call["path"].startswith("/v1.0/users(")


def test_an_unknown_upn_falls_back_to_employee_id(graph_emulator: Emulator) -> None:
    """UPN first (by key, then by filter), then employeeId: the first that finds wins."""
    result = lookup(graph_emulator, user_principal_name="nobody@contoso.com", employee_id="000123")
    assert isinstance(result, Found)
    assert result.user.id == JANE_ID
    calls = graph_calls(graph_emulator)
    assert [c["status"] for c in calls] == [404, 200, 200]
    assert [parse_qs(c["query"]).get("$filter") for c in calls] == [
        None,
        ["userPrincipalName eq 'nobody@contoso.com'"],
        ["employeeId eq '000123'"],
    ]


def test_a_hostile_employee_id_reaches_the_filter_escaped_and_unaltered(
    graph_emulator: Emulator,
) -> None:
    """Guarantee 4: the quote is doubled, so the value stays one literal."""
    result = lookup(graph_emulator, employee_id=HOSTILE_EMPLOYEE_ID)
    assert isinstance(result, Found)
    assert result.user.user_principal_name == QUOTE_UPN
    (call,) = graph_calls(graph_emulator)
    sent = parse_qs(call["query"])["$filter"][0]
    assert sent == "employeeId eq 'x'' or startswith(userPrincipalName,''a'"


@pytest.mark.parametrize(
    "value",
    [
        f"' or userPrincipalName eq '{JANE_UPN}",
        "x') or (1 eq 1",
        "a/b?c#d%25e&$top=1",
        "\\'",
        "x" * 256,
    ],
)
def test_hostile_immutable_ids_match_nobody_instead_of_widening_the_filter(
    graph_emulator: Emulator, value: str
) -> None:
    """No injected clause finds Jane; the emulator saw exactly the escaped literal."""
    result = lookup(graph_emulator, immutable_id=value)
    assert isinstance(result, NotFound)
    (call,) = graph_calls(graph_emulator)
    sent = parse_qs(call["query"])["$filter"][0]
    assert sent == "onPremisesImmutableId eq '" + value.replace("'", "''") + "'"
    assert call["status"] == 200


def test_an_employee_id_shared_by_two_users_is_ambiguous(graph_emulator: Emulator) -> None:
    """Two matches: Ambiguous, never the first of them."""
    graph_emulator.add_user({"userPrincipalName": "twin@contoso.com", "employeeId": "000123"})
    result = lookup(graph_emulator, employee_id="000123")
    assert result == Ambiguous("employeeId", 2)


def test_a_user_not_yet_synced_is_found_but_not_synced(graph_emulator: Emulator) -> None:
    """onPremisesSyncEnabled null means not yet."""
    result = lookup(graph_emulator, user_principal_name="alice@contoso.com")
    assert isinstance(result, Found)
    assert not result.user.synced


def test_group_inherited_licenses_count_as_assigned(graph_emulator: Emulator) -> None:
    """assignedLicenses includes licenses from groups."""
    result = lookup(graph_emulator, user_principal_name="grouped@contoso.com")
    assert isinstance(result, Found)
    assert E3_SKU in result.user.assigned_sku_ids


def test_the_sweep_lookup_batches_twenty_per_request_in_order(graph_emulator: Emulator) -> None:
    """45 identifiers: three $batch requests (sent together), answers in the caller's
    order."""
    for n in range(40):
        graph_emulator.add_user({"userPrincipalName": f"u{n}@contoso.com"})
    many = [UserIdentifiers(f"u{n}@contoso.com") for n in range(40)]
    many += [UserIdentifiers(JANE_UPN)] + [
        UserIdentifiers(f"ghost{n}@contoso.com") for n in range(4)
    ]
    results = run(graph_emulator, lambda d: d.find_users(many))
    assert [r.user.user_principal_name for r in results[:41]] == [
        i.user_principal_name for i in many[:41]
    ]  # type: ignore[union-attr]
    assert all(isinstance(r, NotFound) for r in results[41:])
    batches = [c for c in graph_calls(graph_emulator) if c["path"] == "/v1.0/$batch"]
    # The 4 ghosts are tried again by filter: a key GET can lag behind the filter index.
    sizes = [len(b["body"]["requests"]) for b in batches]
    assert sorted(sizes[:3]) == [5, 20, 20]
    assert sizes[3:] == [4]


def test_a_throttled_batch_item_leaves_only_that_user_unanswered(graph_emulator: Emulator) -> None:
    """Per-item 429: LookupFailed with Retry-After for one, the others found."""
    graph_emulator.add_fault(
        method="GET", path="^/users/alice@contoso\\.com$", status=429, retryAfter=7
    )
    many = [UserIdentifiers(JANE_UPN), UserIdentifiers("alice@contoso.com")]
    jane, alice = run(graph_emulator, lambda d: d.find_users(many))
    assert isinstance(jane, Found)
    assert isinstance(alice, LookupFailed)
    assert alice.error.kind == GraphErrorKind.THROTTLED
    assert alice.error.status == 429
    assert alice.error.retry_after == 7


def test_batch_lookups_fall_back_to_employee_id_only_for_users_not_found(
    graph_emulator: Emulator,
) -> None:
    """Further rounds for the misses only (UPN by filter, then employeeId)."""
    many = [UserIdentifiers(JANE_UPN), UserIdentifiers("gone@contoso.com", employee_id="000200")]
    jane, alice = run(graph_emulator, lambda d: d.find_users(many))
    assert isinstance(jane, Found)
    assert isinstance(alice, Found)
    batches = [c for c in graph_calls(graph_emulator) if c["path"] == "/v1.0/$batch"]
    assert [len(b["body"]["requests"]) for b in batches] == [2, 1, 1]


def test_subscribed_skus_give_seats_and_plans(graph_emulator: Emulator) -> None:
    """Free seats = enabled - consumed; plans resolvable by name."""
    catalog = run(graph_emulator, lambda d: d.subscribed_skus())
    e3 = catalog.find("enterprisepack")
    assert e3 is not None
    assert e3.id == E3_SKU
    assert e3.free_units == 2  # one seat held by the group-licensed user
    assert {p.name for p in e3.service_plans} >= {"EXCHANGE_S_ENTERPRISE", "MCOSTANDARD"}


def test_assign_license_sends_both_arrays_and_takes_a_seat(graph_emulator: Emulator) -> None:
    """removeLicenses: [] is sent (Graph requires it); the seat count moves."""
    run(graph_emulator, lambda d: d.assign_licenses(JANE_ID, [LicenseAssignment(TEAMS_SKU)]))
    (call,) = graph_calls(graph_emulator)
    assert call["body"] == {
        "addLicenses": [{"disabledPlans": [], "skuId": TEAMS_SKU}],
        "removeLicenses": [],
    }
    record = graph_emulator.user_record(JANE_ID)
    assert TEAMS_SKU in {lic["skuId"] for lic in record["assignedLicenses"]}


def test_usage_location_is_patched(graph_emulator: Emulator) -> None:
    """PATCH /users/{id} with usageLocation; 204."""
    run(graph_emulator, lambda d: d.set_usage_location(JANE_ID, "BE"))
    assert graph_emulator.user_record(JANE_ID)["usageLocation"] == "BE"


def refusal_of(emulator: Emulator, user: str, add: list[LicenseAssignment]) -> GraphError:
    async def attempt(directory: GraphDirectory) -> GraphError:
        with pytest.raises(GraphError) as caught:
            await directory.assign_licenses(user, add)
        return caught.value

    return run(emulator, attempt)


def test_each_assign_license_refusal_maps_to_its_kind(graph_emulator: Emulator) -> None:
    """Graph says 400 Request_BadRequest for all; the message tells them apart."""
    nolocation = graph_emulator.user_record("nolocation@contoso.com")["id"]
    assert (
        refusal_of(graph_emulator, nolocation, [LicenseAssignment(TEAMS_SKU)]).kind
        == "usage_location_invalid"
    )
    assert (
        refusal_of(graph_emulator, JANE_ID, [LicenseAssignment(MCOEV_SKU)]).kind
        == "missing_prerequisite"
    )
    unknown = "11111111-2222-3333-4444-555555555555"
    assert refusal_of(graph_emulator, JANE_ID, [LicenseAssignment(unknown)]).kind == "unknown_sku"
    both = [LicenseAssignment(E3_SKU), LicenseAssignment(EXCHANGE_STANDARD_SKU)]
    assert refusal_of(graph_emulator, JANE_ID, both).kind == "mutually_exclusive"
    graph_emulator.set_seats("Microsoft_Teams_Enterprise_New", consumedUnits=10)
    refused = refusal_of(graph_emulator, JANE_ID, [LicenseAssignment(TEAMS_SKU)])
    assert refused.kind == "no_seats"
    assert refused.call == GraphCall.ASSIGN_LICENSE
    assert refused.code == "Request_BadRequest"
    assert refused.request_id


class Naps:
    """A sleep that records how long the adapter wanted to wait, without waiting."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)


def test_a_single_503_is_retried_inline_and_succeeds(graph_emulator: Emulator) -> None:
    """A short blip does not send the request to the pending queue."""
    graph_emulator.add_fault(path="^/users/", status=503, count=1)
    naps = Naps()
    result = run(graph_emulator, lambda d: d.find_user(UserIdentifiers(JANE_UPN)), sleep=naps)
    assert isinstance(result, Found)
    assert len(naps.taken) == 1


def test_a_long_retry_after_is_not_slept_inside_the_invocation(graph_emulator: Emulator) -> None:
    """Retry-After 120 s: give up at once; the pending queue does the waiting."""
    graph_emulator.add_fault(path="^/users/", status=429, retryAfter=120)
    naps = Naps()
    result = run(graph_emulator, lambda d: d.find_user(UserIdentifiers(JANE_UPN)), sleep=naps)
    assert isinstance(result, LookupFailed)
    assert result.error.kind == GraphErrorKind.THROTTLED
    assert result.error.retry_after == 120
    assert naps.taken == []


def test_a_dropped_connection_is_transient_trouble(graph_emulator: Emulator) -> None:
    """No HTTP answer at all: unavailable, status 0."""
    graph_emulator.add_fault(path="^/subscribedSkus", drop=True)

    async def attempt(directory: GraphDirectory) -> GraphError:
        with pytest.raises(GraphError) as caught:
            await directory.subscribed_skus()
        return caught.value

    error = run(graph_emulator, attempt, retries=0)
    assert error.kind == GraphErrorKind.UNAVAILABLE
    assert error.status == 0
    assert error.code == "NetworkError"


def test_paths_in_the_request_log_decode_back_to_the_exact_upn(graph_emulator: Emulator) -> None:
    """No character of a UPN is lost or reinterpreted on the way."""
    lookup(graph_emulator, user_principal_name=GUEST_UPN)
    (call,) = graph_calls(graph_emulator)
    assert unquote(call["path"].removeprefix("/v1.0/users/")) == GUEST_UPN


# --- a real tenant: replication lag, permissions, the app-wide throttle -----------------


def test_a_key_lookup_lagging_behind_the_filter_still_finds_the_user(
    graph_emulator: Emulator,
) -> None:
    """GET /users/{upn} 404s right after the user appears; the UPN filter finds them."""
    graph_emulator.set_user_lag(JANE_UPN, key_lookup_lag=1)
    result = lookup(graph_emulator, user_principal_name=JANE_UPN)
    assert isinstance(result, Found)
    assert result.user.id == JANE_ID
    calls = graph_calls(graph_emulator)
    assert [c["status"] for c in calls] == [404, 200]
    assert parse_qs(calls[1]["query"])["$filter"] == [f"userPrincipalName eq '{JANE_UPN}'"]


def test_a_404_on_a_write_to_a_user_just_looked_up_is_retried_inline(
    graph_emulator: Emulator,
) -> None:
    """Replication lag: the write is tried again after a short nap and succeeds."""
    graph_emulator.set_user_lag(JANE_ID, write_not_found=1)
    naps = Naps()
    run(
        graph_emulator,
        lambda d: d.assign_licenses(JANE_ID, [LicenseAssignment(TEAMS_SKU)]),
        sleep=naps,
    )
    assert [c["status"] for c in graph_calls(graph_emulator)] == [404, 200]
    assert len(naps.taken) == 1


def test_lag_longer_than_the_inline_retries_is_reported_as_not_found(
    graph_emulator: Emulator,
) -> None:
    """After two short retries the adapter gives up: the workflow parks the request."""
    graph_emulator.set_user_lag(JANE_ID, write_not_found=10)

    async def attempt(directory: GraphDirectory) -> GraphError:
        with pytest.raises(GraphError) as caught:
            await directory.set_usage_location(JANE_ID, "BE")
        return caught.value

    error = run(graph_emulator, attempt, sleep=Naps())
    assert error.kind == GraphErrorKind.NOT_FOUND
    assert error.call == GraphCall.SET_USAGE_LOCATION
    assert len(graph_calls(graph_emulator)) == 3


@pytest.mark.parametrize("written", [True, False])
def test_invalid_usage_location_is_retried_inline_only_after_the_apps_own_patch(
    graph_emulator: Emulator, written: bool
) -> None:
    """The flag says the app just wrote the location: then the refusal is lag."""
    nolocation = graph_emulator.user_record("nolocation@contoso.com")["id"]
    graph_emulator.set_user_lag(nolocation, usage_location_lag=1)

    async def attempt(directory: GraphDirectory) -> GraphError | None:
        await directory.set_usage_location(nolocation, "FR")
        try:
            await directory.assign_licenses(
                nolocation, [LicenseAssignment(TEAMS_SKU)], usage_location_written=written
            )
        except GraphError as exc:
            return exc
        return None

    error = run(graph_emulator, attempt, sleep=Naps())
    if written:
        assert error is None
    else:
        assert error is not None
        assert error.kind == GraphErrorKind.USAGE_LOCATION_INVALID


def test_a_missing_permission_is_access_denied_naming_the_call(graph_emulator: Emulator) -> None:
    """403 Authorization_RequestDenied on assignLicense: no retry, the call is named."""
    graph_emulator.set_permissions(["User.Read.All", "LicenseAssignment.Read.All"])
    error = refusal_of(graph_emulator, JANE_ID, [LicenseAssignment(TEAMS_SKU)])
    assert (error.kind, error.status, error.code) == (
        GraphErrorKind.ACCESS_DENIED,
        403,
        "Authorization_RequestDenied",
    )
    assert error.call.permission == "LicenseAssignment.ReadWrite.All"
    assert len(graph_calls(graph_emulator)) == 1


def test_after_a_429_no_call_of_the_process_is_sent_until_retry_after_passes(
    graph_emulator: Emulator,
) -> None:
    """Graph throttles the app as a whole: the next call waits (here: too long, so it is
    refused without reaching Graph)."""
    graph_emulator.add_fault(path="^/users/", status=429, retryAfter=30, count=1)

    async def attempt(directory: GraphDirectory) -> tuple[Any, GraphError]:
        first = await directory.find_user(UserIdentifiers(JANE_UPN))
        with pytest.raises(GraphError) as caught:
            await directory.subscribed_skus()
        return first, caught.value

    first, second = run(graph_emulator, attempt, sleep=Naps())
    assert isinstance(first, LookupFailed)
    assert second.kind == GraphErrorKind.THROTTLED
    assert second.call == GraphCall.SUBSCRIBED_SKUS
    assert second.retry_after is not None
    assert 25 < second.retry_after <= 30
    assert len(graph_calls(graph_emulator)) == 1  # subscribedSkus never left the process


def test_with_the_apps_pacing_a_retry_after_within_its_horizon_is_waited_out_inline(
    graph_emulator: Emulator,
) -> None:
    """Retry-After 30 s, the shared pacing's horizon 150 s: the lookup waits and succeeds in
    its invocation instead of parking its request, and the 429 is in the shared record."""
    graph_emulator.add_fault(path="^/users/", status=429, retryAfter=30, count=1)
    naps, store = Naps(), FakePacingStore()
    pacer = SharedPacer(store, sleep=naps)

    async def attempt(directory: GraphDirectory) -> Any:
        found = await directory.find_user(UserIdentifiers(JANE_UPN))
        await pacer.settled()
        return found

    result = run(graph_emulator, attempt, sleep=naps, pacer=pacer)
    assert isinstance(result, Found)
    assert [c["status"] for c in graph_calls(graph_emulator)] == [429, 200]
    assert naps.taken
    assert all(25 < nap <= 30 for nap in naps.taken)
    assert store.record.paused_until > 0
    assert "429" in store.record.cause
