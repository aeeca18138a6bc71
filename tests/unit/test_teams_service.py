"""The Teams Phone step through the service, on in-memory fakes (contract v1.2, "Teams
Phone"): what ends up on the queues and in Teams, across checks, sweeps and crashes."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest

from shared.decisions import Backoff
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.domain.pending import from_message
from shared.service.onboarding import OnboardingService, Policy
from tests.fakes import (
    E3,
    MCOEV,
    T0,
    Crash,
    FakeClock,
    FakeDirectory,
    FakeEventSink,
    FakeLedger,
    FakeQueue,
    FakeTeams,
    FakeUser,
)

NUMBER = "+33155550100"
GROUPS = {"ENTERPRISEPACK": "0f0e0d0c-0b0a-4909-8807-060504030201"}
MCOEV_GROUP = "1f0e0d0c-0b0a-4909-8807-060504030201"
SOON = timedelta(seconds=30)
LEASE = timedelta(minutes=6)


class TeamsWorld:
    """A service with the Teams Phone step on, wired to fakes."""

    def __init__(self, **policy: Any) -> None:
        self.clock = FakeClock()
        self.directory = FakeDirectory()
        self.teams = FakeTeams()
        self.pending = FakeQueue(self.clock)
        self.events = FakeEventSink()
        self.ledger = FakeLedger()
        settings: dict[str, Any] = {
            "backoff": Backoff(timedelta(minutes=5), timedelta(minutes=30)),
            "sync_timeout": timedelta(hours=2),
            "poison_hold": timedelta(0),
            "teams_phone": True,
            "teams_ready_timeout": timedelta(hours=3),
            **policy,
        }
        self.service = OnboardingService(
            directory=self.directory,
            pending=self.pending,
            poison=FakeQueue(self.clock),
            events=self.events,
            ledger=self.ledger,
            clock=self.clock,
            policy=Policy(**settings),
            teams=self.teams,
        )
        self.dana = self.directory.add(FakeUser("u-dana", "dana@contoso.com"))

    def handle(self, body: dict[str, Any], message_id: str = "q1") -> str:
        return asyncio.run(self.service.handle_request(json.dumps(body), message_id))

    def sweep_after(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        asyncio.run(self.service.sweep())

    def words(self) -> list[str]:
        return [e.type.rsplit(".", 1)[-1] for e in self.events.events]

    def data(self, suffix: str) -> dict[str, Any]:
        (event,) = self.events.of_type(suffix)
        return dict(event.data)


def phone_request(
    licenses: list[dict[str, Any]] | None = None, number: str = NUMBER, **extra: Any
) -> dict[str, Any]:
    return {
        "requestId": "HR-T1",
        "userPrincipalName": "dana@contoso.com",
        "licenses": licenses or [{"skuPartNumber": "MCOEV"}, {"skuPartNumber": "ENTERPRISEPACK"}],
        "teams": {"phoneNumber": number, "numberType": "operatorConnect"},
        **extra,
    }


def test_licensed_then_provisioning_then_licensed_with_the_number() -> None:
    """Licenses on, `provisioning` while Teams catches up, the number ordered once,
    followed, and `licensed` with data.teams and the licenses `assigned`."""
    world = TeamsWorld()
    world.teams.put_number(NUMBER)
    assert world.handle(phone_request()) == "provisioning"
    provisioning = world.data("provisioning")
    assert [lic["status"] for lic in provisioning["licenses"]] == ["assigned", "assigned"]
    assert set(world.dana.licenses) == {MCOEV, E3}
    world.sweep_after(timedelta(minutes=5))  # Teams does not know Dana yet
    world.teams.ready("u-dana")
    world.sweep_after(timedelta(minutes=10))  # ready, the number free: the intent only
    assert world.teams.orders == []
    (state,) = world.pending.contents()
    assert state["teams"]["order"]["operationId"] is None
    world.sweep_after(SOON)  # the order
    assert [(n, u) for _, n, u in world.teams.orders] == [(NUMBER, "u-dana")]
    world.sweep_after(SOON)  # running
    world.sweep_after(SOON)  # succeeded
    assert world.words() == ["provisioning", "licensed"]
    licensed = world.data("licensed")
    assert licensed["teams"] == {
        "phoneNumber": NUMBER,
        "numberType": "operatorConnect",
        "status": "assigned",
    }
    assert [lic["status"] for lic in licensed["licenses"]] == ["assigned", "assigned"]
    assert len(world.teams.orders) == 1
    assert world.pending.stored == []
    assert world.ledger.records["HR-T1"].status == "licensed"


def test_the_ledger_shows_provisioning_while_the_step_waits() -> None:
    """The request's status is `provisioning`, its deadline the Teams deadline."""
    world = TeamsWorld()
    world.handle(phone_request())
    progress = world.ledger.records["HR-T1"].progress
    assert progress.status == "provisioning"
    assert progress.deadline == world.clock.now() + timedelta(hours=3)
    assert "provisioning" in progress.sent


def test_an_sfb_on_prem_user_is_blocked_then_licensed_once_moved() -> None:
    """sfbOnPremUser: provisioning and blocked/sfb_onprem_user once; moved: the number."""
    world = TeamsWorld()
    world.dana.licenses = {MCOEV: (), E3: ()}
    world.teams.user("u-dana", "sfbOnPremUser", "Teams", "PhoneSystem")
    assert world.handle(phone_request()) == "blocked"
    assert world.data("blocked")["reason"]["code"] == "sfb_onprem_user"
    assert world.data("provisioning")["licenses"][0]["status"] == "already_assigned"
    world.sweep_after(timedelta(minutes=5))
    assert world.ledger.records["HR-T1"].progress.status == "blocked"
    world.teams.ready("u-dana")  # Move-CsUser
    for _ in range(6):
        world.sweep_after(timedelta(minutes=10))
    assert world.words() == ["provisioning", "blocked", "licensed"]
    assert world.data("licensed")["teams"]["status"] == "assigned"


def test_a_number_assigned_to_someone_else_fails_phone_number_rejected_listing_licenses() -> None:
    """No order; failed/phone_number_rejected with graphError; the licenses stay on."""
    world = TeamsWorld()
    world.teams.ready("u-dana")
    world.teams.put_number(NUMBER, holder="u-alex")
    assert world.handle(phone_request()) == "failed:phone_number_rejected"
    failed = world.data("failed")
    assert failed["graphError"]["code"] == "userAssigned"
    assert [lic["skuPartNumber"] for lic in failed["licenses"]] == ["MCOEV", "ENTERPRISEPACK"]
    assert failed["userId"] == "u-dana"
    assert world.teams.orders == []
    assert set(world.dana.licenses) == {MCOEV, E3}


def test_an_order_teams_refuses_for_good_fails_phone_number_rejected() -> None:
    """The operation fails "not found from tenant" for the number: final."""
    world = TeamsWorld()
    world.teams.ready("u-dana")
    world.teams.fail_next = [f"Telephone Number '{NUMBER}' is not found from tenant 't'"]
    world.handle(phone_request())
    for _ in range(4):
        world.sweep_after(SOON)
    assert world.words() == ["provisioning", "failed"]
    failed = world.data("failed")
    assert failed["reason"]["code"] == "phone_number_rejected"
    assert failed["graphError"]["message"].startswith("Telephone Number")
    assert len(world.teams.orders) == 1


def test_an_order_teams_fails_for_now_is_ordered_again_later() -> None:
    """ "Service is unavailable": the order is forgotten, Teams read again, a new order."""
    world = TeamsWorld()
    world.teams.ready("u-dana")
    world.teams.fail_next = ["Service is unavailable. Please try again"]
    world.handle(phone_request())
    for _ in range(3):
        world.sweep_after(SOON)  # the order, running, failed
    assert len(world.teams.orders) == 1
    world.sweep_after(timedelta(minutes=5))  # Teams read again (the usual backoff): intent
    assert len(world.teams.orders) == 1
    for _ in range(3):
        world.sweep_after(SOON)  # the order, running, succeeded
    assert len(world.teams.orders) == 2
    assert world.words() == ["provisioning", "licensed"]


def test_teams_never_ready_ends_teams_not_ready_at_its_deadline() -> None:
    """Teams never shows Phone System: teams_not_ready at TEAMS_READY_TIMEOUT, lastSeen."""
    world = TeamsWorld(teams_ready_timeout=timedelta(hours=1))
    world.teams.user("u-dana", "user", "Teams")
    world.handle(phone_request())
    for _ in range(8):
        world.sweep_after(timedelta(minutes=30))
    assert world.words() == ["provisioning", "failed"]
    failed = world.data("failed")
    assert (failed["reason"]["code"], failed["lastSeen"]) == ("teams_not_ready", "no_phone_system")
    assert failed["licenses"][0]["skuPartNumber"] == "MCOEV"
    assert world.events.of_type("failed")[0].time == T0 + timedelta(hours=1)  # the deadline


def test_a_kill_between_ordering_and_recording_the_operation_does_not_order_twice() -> None:
    """The process dies right after assignNumber: the copy of the state that comes back
    has the intent but no operation; the number shows the order under way, then done."""
    world = TeamsWorld()
    world.teams.ready("u-dana")
    world.handle(phone_request())
    world.clock.advance(SOON)
    world.teams.crash_after_order = 1
    with pytest.raises(Crash):
        asyncio.run(world.service.sweep())
    assert len(world.teams.orders) == 1
    world.sweep_after(LEASE)  # the copy comes back: the number is assignmentPending
    assert len(world.teams.orders) == 1
    world.teams.decide_all()
    world.sweep_after(SOON)
    assert len(world.teams.orders) == 1
    assert world.words() == ["provisioning", "licensed"]
    assert world.data("licensed")["teams"]["status"] == "assigned"


def test_a_replay_of_a_licensed_request_neither_orders_again_nor_reports_a_new_number() -> None:
    """The same requestId again after `licensed`: the recorded event, already_assigned."""
    world = TeamsWorld()
    world.teams.ready("u-dana")
    world.handle(phone_request())
    for _ in range(3):
        world.sweep_after(SOON)
    world.handle(phone_request(number="+33155550199"), message_id="q2")
    first, again = world.events.of_type("licensed")
    assert first.id == again.id
    assert again.data["teams"] == {**first.data["teams"], "status": "already_assigned"}
    assert again.data["teams"]["phoneNumber"] == NUMBER
    assert len(world.teams.orders) == 1


def test_a_user_who_has_the_number_already_is_licensed_at_once_already_assigned() -> None:
    """Teams shows the number on the user: licensed with already_assigned, no order."""
    world = TeamsWorld()
    world.teams.ready("u-dana")
    world.teams.users["u-dana"] = world.teams.users["u-dana"].__class__(
        "user", frozenset({"Teams", "PhoneSystem"}), (NUMBER,)
    )
    assert world.handle(phone_request()) == "licensed"
    assert world.data("licensed")["teams"]["status"] == "already_assigned"
    assert world.words() == ["licensed"]
    assert world.teams.orders == []


@pytest.mark.parametrize("mode", ["direct", "group"])
def test_a_request_without_phone_system_anywhere_fails_missing_prerequisite_with_no_write(
    mode: str,
) -> None:
    """No MCOEV requested nor held: missing_prerequisite before anything is written."""
    groups = GROUPS if mode == "group" else None
    world = TeamsWorld(license_groups=groups)
    world.directory.groups = {GROUPS["ENTERPRISEPACK"]: E3}
    world.dana.usage_location = None
    outcome = world.handle(phone_request([{"skuPartNumber": "ENTERPRISEPACK"}], usageLocation="FR"))
    assert outcome == "failed:missing_prerequisite"
    assert world.directory.writes == []
    assert world.teams.orders == []
    assert "licenses" not in world.data("failed")


def test_phone_system_the_user_already_holds_satisfies_the_prerequisite() -> None:
    """MCOEV on the user already: the step goes on with only E3 requested."""
    world = TeamsWorld()
    world.dana.licenses = {MCOEV: ()}
    assert world.handle(phone_request([{"skuPartNumber": "ENTERPRISEPACK"}])) == "provisioning"


def test_group_mode_starts_the_step_once_entra_shows_the_licenses_active() -> None:
    """Group mode: the Teams deadline counts from the check that saw them Active."""
    world = TeamsWorld(license_groups={**GROUPS, "MCOEV": MCOEV_GROUP})
    world.directory.groups = {GROUPS["ENTERPRISEPACK"]: E3, MCOEV_GROUP: MCOEV}
    assert world.handle(phone_request()) == "waiting"
    world.sweep_after(timedelta(minutes=1))
    assert world.words() == ["provisioning"]
    (state,) = world.pending.contents()
    assert state["teams"]["startedAt"] == "2026-11-24T09:01:00Z"


def test_a_403_on_the_teams_configuration_blocks_naming_the_permission() -> None:
    """Teams refuses the app: blocked/graph_access_denied with data.permission."""
    world = TeamsWorld()
    world.teams.refuse[GraphCall.TEAMS_CONFIGURATION] = GraphError(
        "Insufficient privileges",
        kind=GraphErrorKind.ACCESS_DENIED,
        call=GraphCall.TEAMS_CONFIGURATION,
        status=403,
        code="Forbidden",
    )
    assert world.handle(phone_request()) == "blocked"
    blocked = world.data("blocked")
    assert blocked["permission"] == "TeamsUserConfiguration.Read.All"
    assert world.words() == ["provisioning", "blocked"]


def test_the_sweep_reads_teams_configurations_together_without_looking_users_up() -> None:
    """Requests in the step are not looked up again; their configurations are read in one
    call (the adapter batches them)."""
    world = TeamsWorld()
    for n in range(3):
        world.directory.add(FakeUser(f"u-{n}", f"user{n}@contoso.com"))
        body = phone_request(number=f"+3315555020{n}")
        world.handle({**body, "requestId": f"HR-{n}", "userPrincipalName": f"user{n}@contoso.com"})
    lookups = len(world.directory.lookup_calls)
    world.sweep_after(timedelta(minutes=5))
    assert len(world.directory.lookup_calls) == lookups
    assert world.teams.configuration_calls[-1] == 3


def test_a_pending_state_parked_in_the_step_reads_back_unchanged() -> None:
    """The pending format keeps the step (and reads messages parked before it existed)."""
    world = TeamsWorld()
    world.handle(phone_request())
    (message,) = world.pending.stored
    state = from_message(message.content)
    assert state.teams is not None
    assert state.teams.user_id == "u-dana"
    assert state.provisioning_sent
    old = json.loads(message.content)
    del old["teams"], old["provisioningSent"]
    assert from_message(json.dumps(old)).teams is None
