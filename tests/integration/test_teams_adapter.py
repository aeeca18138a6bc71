"""The Teams Phone adapter (`GraphTeams`) through msgraph-sdk, over real HTTP, against the
Graph emulator's Teams (every exchange checked against the OpenAPI excerpt at teardown)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote

import httpx
import pytest

from local_stack.graph_emulator import Emulator, ManualClock
from shared.adapters.graph import GraphTeams, connect
from shared.adapters.graph.teams import _OPERATION_ID, _operation_of
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.domain.phone import TeamsRequest
from shared.domain.teams import NumberType, OperationStatus
from shared.domain.teams_tenant import NumberOperation, TeamsUnknown, TeamsUnread, TeamsUser
from tests.emulator.test_graph_emulator_teams import (
    ALICE,
    FREE,
    OWNER_ID,
    SKY_ID,
    TAKEN,
    make_ready,
    teams_directory,
)
from tests.support.graph import JANE_ID

T = TypeVar("T")
NOBODY = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"
TEAMS_ONLY = TeamsRequest(FREE, NumberType.OPERATOR_CONNECT)


@pytest.fixture
def graph_directory() -> dict[str, Any]:
    """The emulator's Teams test tenant: Sky homed in Skype for Business, numbers."""
    return teams_directory()


def run(emulator: Emulator, use: Callable[[GraphTeams], Awaitable[T]], **options: Any) -> T:
    """Run `use` with a GraphTeams sharing a GraphDirectory's client, then close it."""

    async def main() -> T:
        directory = connect(emulator.base_url, local=True)
        try:
            return await use(GraphTeams(directory.adapter, **options))
        finally:
            await directory.aclose()

    return asyncio.run(main())


def teams_calls(emulator: Emulator) -> list[dict[str, Any]]:
    return [e for e in emulator.requests() if e["path"].startswith("/v1.0")]


def alice_id(emulator: Emulator) -> str:
    return str(emulator.teams_user(ALICE)["userId"])


def test_several_configurations_are_read_in_one_batch_each_as_teams_shows_it(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """Ready, homed in Skype for Business, without Phone System, unknown: one `$batch`,
    answers in the order asked, `Prefer: include-unknown-enum-members` on each item."""
    make_ready(graph_client, graph_clock)
    graph_emulator.clear_requests()
    users = [JANE_ID, SKY_ID, alice_id(graph_emulator), NOBODY]
    ready, sfb, alice, nobody = run(graph_emulator, lambda t: t.configurations(users))
    assert isinstance(ready, TeamsUser)
    assert ready.ready
    assert isinstance(sfb, TeamsUser)
    assert sfb.on_premises
    assert not sfb.ready
    assert isinstance(alice, TeamsUser)
    assert (alice.ready, "PhoneSystem" in alice.feature_types) == (False, False)
    assert isinstance(nobody, TeamsUnknown)
    (call,) = [c for c in teams_calls(graph_emulator) if not c["batchItem"]]
    assert call["path"] == "/v1.0/$batch"


def test_one_configuration_is_a_plain_get_selecting_what_readiness_needs(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """One user: a GET with $select; the numbers Teams shows on the user are read too."""
    graph_emulator.clear_requests()
    (sky,) = run(graph_emulator, lambda t: t.configurations([SKY_ID]))
    assert isinstance(sky, TeamsUser)
    assert sky.account_type == "sfbOnPremUser"
    (call,) = teams_calls(graph_emulator)
    assert call["path"] == f"/v1.0/admin/teams/userConfigurations/{SKY_ID}"
    select = parse_qs(call["query"])["$select"][0].split(",")
    assert set(select) == {"accountType", "featureTypes", "telephoneNumbers"}


def test_a_number_is_read_by_an_escaped_filter_with_its_assignment(
    graph_emulator: Emulator,
) -> None:
    """Free, someone else's, not in the inventory: the filter names the number exactly."""
    graph_emulator.clear_requests()
    free, taken, absent = run(
        graph_emulator,
        lambda t: asyncio.gather(t.number(FREE), t.number(TAKEN), t.number("+33155550177")),
    )
    assert free is not None
    assert (free.assignment_target_id, free.assignment_status) == (None, "unassigned")
    assert taken is not None
    assert taken.taken_from(JANE_ID)
    assert taken.held_by(OWNER_ID)
    assert absent is None
    calls = teams_calls(graph_emulator)
    filters = sorted(unquote(parse_qs(c["query"])["$filter"][0]) for c in calls)
    assert filters[0] == "telephoneNumber eq '+33155550100'"


def test_an_order_returns_its_operation_which_is_followed_to_success(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """assignNumber through msgraph-sdk: the operation id from Location (which the SDK
    drops otherwise); notStarted, running, succeeded; the number is then the user's."""
    make_ready(graph_client, graph_clock)

    async def scenario(teams: GraphTeams) -> list[Any]:
        operation_id = await teams.assign_number(JANE_ID, TEAMS_ONLY)
        assert operation_id is not None
        seen = [await teams.operation(operation_id)]
        graph_clock.advance(1)
        seen.append(await teams.operation(operation_id))
        graph_clock.advance(2)
        seen.append(await teams.operation(operation_id))
        seen.append(await teams.number(FREE))
        return seen

    not_started, running, succeeded, number = run(graph_emulator, scenario)
    assert [not_started.status, running.status, succeeded.status] == [
        OperationStatus.NOT_STARTED,
        OperationStatus.RUNNING,
        OperationStatus.SUCCEEDED,
    ]
    assert number.held_by(JANE_ID)
    (order,) = graph_emulator.teams_operations()
    assert (order["telephoneNumber"], order["assignmentTargetId"]) == (FREE, JANE_ID)
    assert order["numberType"] == "operatorConnect"


def test_while_an_order_runs_the_number_shows_it_pending(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """What a replay after a crash reads: the number `assignmentPending`."""
    make_ready(graph_client, graph_clock)

    async def scenario(teams: GraphTeams) -> Any:
        await teams.assign_number(JANE_ID, TEAMS_ONLY)
        return await teams.number(FREE)

    assert run(graph_emulator, scenario).pending


def test_a_failed_operation_carries_teams_status_detail(
    graph_emulator: Emulator, graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """The number someone else holds: failed, Teams' words in `detail`."""
    make_ready(graph_client, graph_clock)

    async def scenario(teams: GraphTeams) -> Any:
        taken = TeamsRequest(TAKEN, NumberType.OPERATOR_CONNECT)
        operation_id = await teams.assign_number(JANE_ID, taken)
        assert operation_id is not None
        graph_clock.advance(3)
        return await teams.operation(operation_id)

    failed = run(graph_emulator, scenario)
    assert failed.status == OperationStatus.FAILED
    assert failed.detail is not None
    assert "has already been assigned to another user" in failed.detail


def test_an_operation_graph_does_not_know_is_not_found(graph_emulator: Emulator) -> None:
    """404: the decisions then follow the number."""
    with pytest.raises(GraphError) as raised:
        run(graph_emulator, lambda t: t.operation("QXNzaWdubWVudHxub3BlCg"))
    assert raised.value.kind == GraphErrorKind.NOT_FOUND
    assert raised.value.call == GraphCall.NUMBER_OPERATION


def test_without_the_teams_permissions_every_call_is_access_denied_naming_its_call(
    graph_emulator: Emulator,
) -> None:
    """403 on each call: the configuration unread, the number and the order refused."""
    granted = [p for p in graph_emulator.permissions() or [] if not p.startswith("Teams")]
    graph_emulator.set_permissions(granted or ["User.Read.All"])

    async def scenario(teams: GraphTeams) -> list[Any]:
        out: list[Any] = await teams.configurations([JANE_ID])
        for attempt in (teams.number(FREE), teams.assign_number(JANE_ID, TEAMS_ONLY)):
            try:
                await attempt
            except GraphError as exc:
                out.append(exc)
        return out

    (unread, number, order) = run(graph_emulator, scenario)
    assert isinstance(unread, TeamsUnread)
    assert (unread.error.kind, unread.error.call) == (
        GraphErrorKind.ACCESS_DENIED,
        GraphCall.TEAMS_CONFIGURATION,
    )
    assert (number.kind, number.call, number.status) == (
        GraphErrorKind.ACCESS_DENIED,
        GraphCall.NUMBER_ASSIGNMENTS,
        403,
    )
    assert (order.kind, order.call) == (GraphErrorKind.ACCESS_DENIED, GraphCall.ASSIGN_NUMBER)
    assert graph_emulator.teams_operations() == []


def test_teams_throttling_closes_the_teams_gate_not_the_directorys(
    graph_emulator: Emulator,
) -> None:
    """Over Teams' own budget: 429 with Retry-After; the Teams gate closes, and only it."""
    graph_emulator.set_teams(readsPerSecond=1)

    async def scenario() -> tuple[Any, float, float]:
        directory = connect(graph_emulator.base_url, local=True)
        try:
            teams = GraphTeams(directory.adapter, retries=0)
            await teams.number(FREE)
            try:
                await teams.number(FREE)
            except GraphError as exc:
                gates = (teams.gate, directory.gate)
                return exc, *(gate.closed_for(write=False) for gate in gates)
            raise AssertionError("not throttled")
        finally:
            await directory.aclose()

    throttled, teams_wait, directory_wait = asyncio.run(scenario())
    assert throttled.kind == GraphErrorKind.THROTTLED
    assert throttled.retry_after is not None
    assert teams_wait > 0
    assert directory_wait == 0


def test_a_throttled_batch_item_is_unread_and_closes_the_teams_gate(
    graph_emulator: Emulator,
) -> None:
    """Items are charged one by one: those over the budget come back throttled."""
    graph_emulator.set_teams(readsPerSecond=2)

    async def scenario(teams: GraphTeams) -> tuple[list[Any], float]:
        readings = await teams.configurations([JANE_ID, SKY_ID, OWNER_ID, NOBODY])
        return readings, teams.gate.closed_for(write=False)

    readings, closed = run(graph_emulator, scenario, retries=0)
    unread = [r for r in readings if isinstance(r, TeamsUnread)]
    assert unread
    assert {r.error.kind for r in unread} == {GraphErrorKind.THROTTLED}
    assert closed > 0


def test_an_order_is_never_retried_inline_after_an_outage(graph_emulator: Emulator) -> None:
    """A 503 on assignNumber may hide a placed order: raised at once, sent once."""
    graph_emulator.add_fault(method="POST", path="assignNumber", status=503, count=1)
    with pytest.raises(GraphError) as raised:
        run(graph_emulator, lambda t: t.assign_number(JANE_ID, TEAMS_ONLY))
    assert raised.value.kind == GraphErrorKind.UNAVAILABLE
    posts = [c for c in teams_calls(graph_emulator) if c["method"] == "POST"]
    assert len(posts) == 1


def test_an_operation_in_the_get_pages_value_wrapper_or_with_a_new_status_is_read() -> None:
    """The get page's example wraps the entity in `value`; a status added to the evolvable
    enum later reads as unknownFutureValue (waited out), never as an error."""
    wrapped = {
        "value": {
            "id": "QQ",
            "status": "failed",
            "numbers": [{"status": "failed", "statusDetail": "Service is unavailable"}],
        }
    }
    failed = NumberOperation(OperationStatus.FAILED, "Service is unavailable")
    assert _operation_of(wrapped) == failed
    assert _operation_of({"status": "paused", "numbers": []}).status == (
        OperationStatus.UNKNOWN_FUTURE_VALUE
    )
    with pytest.raises(GraphError):
        _operation_of({"numbers": []})


@pytest.mark.parametrize(
    "location",
    [
        "https://graph.microsoft.com/v1.0/admin/teams/telephoneNumberManagement/operations('QQ1')",
        "https://graph.microsoft.com/v1.0/admin/teams/telephoneNumberManagement/operations(%27QQ1%27)",
        "https://graph.microsoft.com/v1.0/admin/teams/telephoneNumberManagement/operations/QQ1",
    ],
)
def test_the_operation_id_is_read_from_each_form_of_location(location: str) -> None:
    """The docs' `operations('{id}')`, percent-encoded or not, and `operations/{id}`."""
    match = _OPERATION_ID.search(unquote(location))
    assert match is not None
    assert (match.group(1) or match.group(2)) == "QQ1"
