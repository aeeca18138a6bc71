"""The two use cases against in-memory fakes: what ends up on the queues, not which
methods were called."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest

from shared.decisions import Backoff
from shared.domain.errors import GraphCall, GraphErrorKind, StorageUnavailable
from shared.domain.requests import LicenseRequest
from shared.service import OnboardingService, Policy
from tests.fakes import (
    E3,
    MCOEV,
    YAMMER,
    FakeClock,
    FakeDirectory,
    FakeEventSink,
    FakeLedger,
    FakeQueue,
    FakeSku,
    FakeUser,
    refusal,
)


class World:
    """A service wired to fakes, with helpers to drive it."""

    def __init__(self, **policy: Any) -> None:
        self.clock = FakeClock()
        self.directory = FakeDirectory()
        self.pending = FakeQueue(self.clock)
        self.poison = FakeQueue(self.clock)
        self.events = FakeEventSink()
        self.ledger = FakeLedger()
        settings: dict[str, Any] = {
            "backoff": Backoff(timedelta(minutes=5), timedelta(minutes=30)),
            "sync_timeout": timedelta(hours=2),
            "poison_hold": timedelta(0),  # report poisoned messages at once, as in v1
            **policy,
        }
        self.service = OnboardingService(
            directory=self.directory,
            pending=self.pending,
            poison=self.poison,
            events=self.events,
            ledger=self.ledger,
            clock=self.clock,
            policy=Policy(**settings),
        )

    def handle(self, body: dict[str, Any] | str, message_id: str = "q1") -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return asyncio.run(self.service.handle_request(text, message_id))

    def sweep_after(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        asyncio.run(self.service.sweep())

    def data(self, suffix: str) -> dict[str, Any]:
        (event,) = self.events.of_type(suffix)
        return dict(event.data)


def request(
    request_id: str = "HR-1", upn: str = "jane@contoso.com", **extra: Any
) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "userPrincipalName": upn,
        "licenses": [
            {"skuPartNumber": "MCOEV"},
            {"skuPartNumber": "ENTERPRISEPACK", "disabledPlans": ["YAMMER_ENTERPRISE"]},
        ],
        **extra,
    }


def jane(world: World, **fields: Any) -> FakeUser:
    return world.directory.add(FakeUser("u-jane", "jane@contoso.com", **fields))


def test_a_synced_user_is_licensed_at_once_with_disabled_plans_resolved() -> None:
    """One licensed event; plans given by name reach Graph as servicePlanIds."""
    world = World()
    jane(world)
    assert world.handle(request()) == "licensed"
    data = world.data("licensed")
    assert data["userId"] == "u-jane"
    assert [(lic["skuPartNumber"], lic["status"]) for lic in data["licenses"]] == [
        ("MCOEV", "assigned"),
        ("ENTERPRISEPACK", "assigned"),
    ]
    assert world.directory.users["u-jane"].licenses[E3] == (YAMMER,)
    assert world.pending.stored == []


def test_a_user_not_yet_synced_is_parked_and_licensed_by_the_sweep_once_synced() -> None:
    """awaiting_sync once, then licensed; the pending message is gone at the end."""
    world = World()
    user = jane(world, sync_enabled=None)
    assert world.handle(request()) == "waiting"
    awaiting = world.data("awaiting_sync")
    assert awaiting["lastSeen"] == "not_synced"
    assert awaiting["nextCheckAt"] == "2026-11-24T09:05:00Z"
    assert len(world.pending.stored) == 1

    world.sweep_after(timedelta(minutes=5))
    assert len(world.events.of_type("awaiting_sync")) == 1
    user.sync_enabled = True
    world.sweep_after(timedelta(minutes=10))
    assert world.data("licensed")["licenses"][0]["status"] == "assigned"
    assert world.pending.stored == []


def test_rechecks_back_off_by_doubling_up_to_the_maximum() -> None:
    """5, 10, 20, 30, 30 minutes between checks."""
    world = World(sync_timeout=timedelta(hours=5))
    world.handle(request())
    gaps = []
    for _ in range(5):
        (stored,) = world.pending.stored
        gap = stored.visible_at - world.clock.now()
        gaps.append(gap)
        world.sweep_after(gap)
    assert gaps == [timedelta(minutes=m) for m in (5, 10, 20, 30, 30)]


def test_a_user_never_synced_fails_with_sync_timeout_at_the_deadline() -> None:
    """The last check happens at the deadline, not after it, and says what was seen."""
    world = World(sync_timeout=timedelta(minutes=12))
    world.handle(request())
    for _ in range(4):
        world.sweep_after(timedelta(minutes=30))
    data = world.data("failed")
    assert data["reason"]["code"] == "sync_timeout"
    assert data["lastSeen"] == "not_found"
    assert world.pending.stored == []
    assert world.events.terminal_ids() == {"HR-1:failed"}


def test_a_request_delivered_twice_uses_one_seat_and_repeats_the_same_event_id() -> None:
    """Guarantee 3: the second delivery reports already_assigned under the same id."""
    world = World()
    jane(world)
    world.handle(request(), message_id="q1")
    world.handle(request(), message_id="q2")
    first, second = world.events.of_type("licensed")
    assert first.id == second.id == "HR-1:licensed"
    assert {lic["status"] for lic in second.data["licenses"]} == {"already_assigned"}
    assert world.directory.seats_used(MCOEV) == 1
    assert len([w for w in world.directory.writes if w[0] == "assignLicense"]) == 1


def test_two_requests_for_the_same_user_never_take_a_second_seat() -> None:
    """A different requestId for a user who already has the SKU."""
    world = World()
    jane(world)
    world.handle(request("HR-1"))
    world.handle(request("HR-2"))
    assert world.directory.seats_used(MCOEV) == 1
    statuses = [lic["status"] for lic in world.events.of_type("licensed")[1].data["licenses"]]
    assert statuses == ["already_assigned", "already_assigned"]


def test_graph_unavailable_parks_a_valid_request_instead_of_raising() -> None:
    """Guarantee 2: a 503 storm never reaches the host (no retry, no poison)."""
    world = World()
    jane(world)
    world.directory.unavailable = True
    assert world.handle(request()) == "waiting"
    assert world.events.events == []  # transient trouble is not an awaiting_sync
    world.directory.unavailable = False
    world.sweep_after(timedelta(minutes=5))
    assert world.data("licensed")


def test_retry_after_from_graph_pushes_the_next_check_later() -> None:
    """A 429 with Retry-After 600 s waits at least that long."""
    world = World()
    jane(world)
    world.directory.unavailable = True
    world.directory.retry_after = 600
    world.handle(request())
    (stored,) = world.pending.stored
    assert stored.visible_at - world.clock.now() == timedelta(seconds=600)


def test_graph_down_until_the_deadline_fails_with_the_last_graph_error() -> None:
    """Nothing waits forever: sync_timeout, lastSeen unreachable, and Graph's words."""
    world = World(sync_timeout=timedelta(minutes=10))
    world.directory.unavailable = True
    world.handle(request())
    world.sweep_after(timedelta(minutes=5))
    world.sweep_after(timedelta(minutes=5))
    data = world.data("failed")
    assert data["reason"]["code"] == "sync_timeout"
    assert data["lastSeen"] == "unreachable"
    assert data["lastError"]["status"] == 503


def test_an_invalid_message_is_rejected_with_field_errors_and_never_raised() -> None:
    """No retry for a message that can never succeed."""
    world = World()
    assert world.handle({"requestId": "HR-7", "userPrincipleName": "x@y.com"}) == "rejected"
    event = world.events.events[0]
    assert event.id == "HR-7:rejected"
    assert {"field": "userPrincipleName", "problem": "unknown field"} in event.data["errors"]


def test_no_licenses_in_the_message_nor_in_settings_is_a_rejection() -> None:
    """DEFAULT_LICENSES absent and the message has none."""
    world = World()
    body = {"requestId": "HR-8", "userPrincipalName": "jane@contoso.com"}
    assert world.handle(body) == "rejected"
    assert world.events.events[0].data["errors"][0]["field"] == "licenses"


def test_default_licenses_apply_when_the_message_has_none() -> None:
    """DEFAULT_LICENSES=MCOEV."""
    world = World(default_licenses=(LicenseRequest("MCOEV"),))
    jane(world)
    world.handle({"requestId": "HR-8", "userPrincipalName": "jane@contoso.com"})
    assert [lic["skuPartNumber"] for lic in world.data("licensed")["licenses"]] == ["MCOEV"]


def test_a_missing_usage_location_is_written_from_the_message_before_assigning() -> None:
    """A value synced from AD wins; otherwise the message's, then the default."""
    world = World(default_usage_location="DE")
    jane(world, usage_location=None)
    world.handle(request(usageLocation="BE"))
    assert world.directory.writes[0] == ("usageLocation", "u-jane", "BE")
    assert world.data("licensed")["usageLocation"] == "BE"


def test_a_usage_location_synced_from_ad_is_not_overwritten() -> None:
    """No PATCH when the user has one."""
    world = World()
    jane(world, usage_location="FR")
    world.handle(request(usageLocation="BE"))
    assert [w[0] for w in world.directory.writes] == ["assignLicense"]


def test_no_usage_location_anywhere_fails_before_any_write() -> None:
    """usage_location_missing, and nothing written."""
    world = World()
    jane(world, usage_location=None)
    world.handle(request())
    assert world.data("failed")["reason"]["code"] == "usage_location_missing"
    assert world.directory.writes == []


def test_set_usage_location_off_fails_rather_than_writing() -> None:
    """SET_USAGE_LOCATION=false means the app never PATCHes the user."""
    world = World(set_usage_location=False, default_usage_location="FR")
    jane(world, usage_location=None)
    world.handle(request())
    assert world.data("failed")["reason"]["code"] == "usage_location_missing"
    assert world.directory.writes == []


@pytest.mark.parametrize(
    ("licenses", "code"),
    [
        ([{"skuPartNumber": "NOPE"}], "unknown_sku"),
        ([{"skuPartNumber": "ENTERPRISEPACK", "disabledPlans": ["NOPE"]}], "unknown_service_plan"),
    ],
)
def test_unknown_skus_and_plans_fail_before_any_write(licenses: list[Any], code: str) -> None:
    """Resolved against subscribedSkus (refreshed once, in case it was stale)."""
    world = World()
    jane(world)
    world.handle(request(licenses=licenses))
    assert world.data("failed")["reason"]["code"] == code
    assert world.directory.writes == []


def test_no_seats_blocks_once_then_licenses_when_seats_appear() -> None:
    """blocked is announced once; the sweep retries until a seat frees up."""
    world = World()
    jane(world)
    world.directory.skus[0].consumed = world.directory.skus[0].enabled
    assert world.handle(request()) == "blocked"
    assert world.data("blocked")["reason"]["code"] == "no_seats"
    world.sweep_after(timedelta(minutes=5))
    assert len(world.events.of_type("blocked")) == 1
    world.directory.skus[0].enabled += 5
    world.sweep_after(timedelta(minutes=10))
    assert world.data("licensed")
    assert world.events.terminal_ids() == {"HR-1:licensed"}


def test_no_seats_until_the_deadline_fails_with_no_seats() -> None:
    """The deadline applies to waiting for seats too."""
    world = World(sync_timeout=timedelta(minutes=10))
    jane(world)
    world.directory.skus[0].consumed = world.directory.skus[0].enabled
    world.handle(request())
    world.sweep_after(timedelta(minutes=5))
    world.sweep_after(timedelta(minutes=5))
    assert world.data("failed")["reason"]["code"] == "no_seats"


def test_a_seat_taken_between_the_check_and_the_write_also_blocks() -> None:
    """Graph's own no-seats answer leads to blocked, like the pre-check."""
    world = World()
    jane(world)
    world.directory.assign_refusal = refusal(
        "Subscription x does not have any available licenses.", GraphErrorKind.NO_SEATS
    )
    assert world.handle(request()) == "blocked"


def test_a_permanent_graph_refusal_fails_with_graphs_code_and_message() -> None:
    """mutually_exclusive_plans, with graphError carrying Graph's own words."""
    world = World()
    jane(world)
    world.directory.assign_refusal = refusal(
        "Service plans A and B are mutually exclusive.", GraphErrorKind.MUTUALLY_EXCLUSIVE
    )
    world.directory.assign_refusal.request_id = "rid-1"
    world.handle(request())
    data = world.data("failed")
    assert data["reason"] == {
        "code": "mutually_exclusive_plans",
        "message": "Service plans A and B are mutually exclusive.",
    }
    assert data["graphError"]["requestId"] == "rid-1"


def test_an_employee_id_matching_two_users_is_ambiguous() -> None:
    """user_ambiguous, never a guess."""
    world = World()
    world.directory.add(FakeUser("u1", "a@contoso.com", employee_id="42"))
    world.directory.add(FakeUser("u2", "b@contoso.com", employee_id="42"))
    world.handle(
        {"requestId": "HR-3", "employeeId": "42", "licenses": [{"skuPartNumber": "MCOEV"}]}
    )
    assert world.data("failed")["reason"]["code"] == "user_ambiguous"


def test_a_failed_event_publish_leaves_the_pending_message_for_the_next_sweep() -> None:
    """Guarantee 1: acknowledged only after the outcome is durable."""
    world = World()
    user = jane(world, sync_enabled=None)
    world.handle(request())
    user.sync_enabled = True
    world.events.fail_next = 1
    world.clock.advance(timedelta(minutes=5))
    with pytest.raises(StorageUnavailable):  # an outage stops the sweep
        asyncio.run(world.service.sweep())
    assert len(world.pending.stored) == 1  # still there, hidden for its lease
    world.sweep_after(timedelta(minutes=6))
    assert world.events.terminal_ids() == {"HR-1:licensed"}
    assert world.pending.stored == []


def test_a_failed_publish_at_intake_raises_so_the_host_retries() -> None:
    """Storage trouble is the host's business (retry, then poison)."""
    world = World()
    world.events.fail_next = 1
    with pytest.raises(StorageUnavailable):
        world.handle({"requestId": "HR-1"})


def test_poison_messages_are_reported_once_as_rejected_and_removed() -> None:
    """With the requestId when the body has one, by message id otherwise."""
    world = World()
    world.poison.put(json.dumps(request("HR-5")))
    world.poison.put("garbage")
    world.sweep_after(timedelta(0))
    ids = sorted(e.id for e in world.events.of_type("rejected"))
    assert ids == ["HR-5:rejected", "message:m2:rejected"]
    assert {e.data["reason"]["code"] for e in world.events.events} == {"poison"}
    assert world.poison.stored == []
    world.sweep_after(timedelta(minutes=5))
    assert len(world.events.events) == 2


def test_an_unreadable_pending_message_is_reported_not_retried_forever() -> None:
    """A corrupted internal message ends in a rejected event too."""
    world = World()
    world.pending.put('{"v": 1, "request": {"requestId": "HR-6"}}')
    world.sweep_after(timedelta(0))
    (event,) = world.events.events
    assert event.id == "HR-6:rejected"
    assert world.pending.stored == []


def test_the_sweep_stops_taking_messages_when_its_budget_is_spent() -> None:
    """Guarantee 5: what is left is due at the next tick."""
    world = World(sweep_budget_seconds=0)
    world.pending.put("{}")
    world.poison.put("{}")
    report = asyncio.run(world.service.sweep())
    assert report.stopped_by_budget
    assert len(world.pending.stored) == 1
    assert len(world.poison.stored) == 1


def test_the_sweep_looks_users_up_in_chunks_of_a_hundred() -> None:
    """250 due users: three lookup calls (the Graph adapter splits each into $batch of 20)."""
    world = World()
    for n in range(250):
        world.handle(request(f"HR-{n}", upn=f"user{n}@contoso.com"))
    world.directory.lookup_calls.clear()
    world.sweep_after(timedelta(minutes=5))
    assert world.directory.lookup_calls == [100, 100, 50]
    assert len(world.pending.stored) == 250


def test_pending_messages_carry_resolved_licenses_and_deadline() -> None:
    """Changing DEFAULT_LICENSES later does not change a parked request."""
    world = World(default_licenses=(LicenseRequest("MCOEV"),))
    world.handle({"requestId": "HR-1", "userPrincipalName": "jane@contoso.com"})
    (state,) = world.pending.contents()
    assert state["request"]["licenses"] == [{"skuPartNumber": "MCOEV"}]
    assert state["request"]["syncDeadline"] == "2026-11-24T11:00:00Z"


def test_the_sku_catalog_is_read_once_per_process_within_its_lifetime() -> None:
    """Two requests a minute apart: one subscribedSkus read."""
    world = World()
    jane(world)
    world.directory.add(FakeUser("u-2", "bob@contoso.com"))
    world.handle(request("HR-1"))
    world.clock.advance(timedelta(minutes=1))
    world.handle(request("HR-2", upn="bob@contoso.com"))
    assert world.directory.sku_reads == 1
    world.clock.advance(timedelta(minutes=5))
    world.handle(request("HR-3"))
    assert world.directory.sku_reads == 2


def test_a_sku_bought_after_the_catalog_was_cached_is_found_by_one_refresh() -> None:
    """A stale cache never fails a request with unknown_sku."""
    world = World()
    jane(world)
    world.handle(request("HR-1", licenses=[{"skuPartNumber": "MCOEV"}]))
    world.directory.skus.append(FakeSku("0c266dff-15dd-4b49-8397-2bb16070ed52", "AAD_PREMIUM", 3))
    world.handle(request("HR-2", licenses=[{"skuPartNumber": "AAD_PREMIUM"}]))
    assert [e.id for e in world.events.events] == ["HR-1:licensed", "HR-2:licensed"]
    assert world.directory.sku_reads == 2


# --- real tenants: replication lag, permissions ------------------------------------------


def test_replication_lag_on_the_first_writes_parks_then_licenses() -> None:
    """A user who has just appeared: 404 on writes is waited out, then licensed."""
    world = World()
    jane(world)
    world.directory.write_lag = 1
    assert world.handle(request()) == "waiting"
    assert world.events.events == []
    world.sweep_after(timedelta(minutes=5))
    assert world.events.terminal_ids() == {"HR-1:licensed"}


def test_invalid_usage_location_right_after_the_apps_own_patch_ends_licensed() -> None:
    """The PATCH succeeded; assignLicense has not seen it yet: lag, not usage_location_missing."""
    world = World(default_usage_location="FR")
    jane(world, usage_location=None)
    world.directory.usage_location_lag = 1
    assert world.handle(request()) == "waiting"
    (state,) = world.pending.contents()
    assert state["usageLocationWritten"] is True
    world.sweep_after(timedelta(minutes=5))
    assert world.events.terminal_ids() == {"HR-1:licensed"}


def test_a_missing_permission_blocks_loudly_and_a_grant_lets_the_request_finish(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """blocked/graph_access_denied once, an ERROR naming the permission, then licensed."""
    world = World()
    jane(world)
    world.directory.denied = {GraphCall.ASSIGN_LICENSE}
    with caplog.at_level("ERROR", logger="user_onboarding"):
        assert world.handle(request()) == "blocked"
    blocked = world.data("blocked")
    assert blocked["reason"]["code"] == "graph_access_denied"
    assert blocked["permission"] == "LicenseAssignment.ReadWrite.All"
    assert any("LicenseAssignment.ReadWrite.All" in r.getMessage() for r in caplog.records)
    world.sweep_after(timedelta(minutes=5))
    assert len(world.events.of_type("blocked")) == 1
    world.directory.denied = set()
    world.sweep_after(timedelta(minutes=10))
    assert world.events.terminal_ids() == {"HR-1:licensed"}


def test_a_permission_never_granted_fails_graph_access_denied_at_the_deadline() -> None:
    """Not sync_timeout, not silence: graph_access_denied with data.permission."""
    world = World(sync_timeout=timedelta(minutes=10))
    world.directory.denied = {GraphCall.LOOKUP}
    world.handle(request())
    world.sweep_after(timedelta(minutes=5))
    world.sweep_after(timedelta(minutes=5))
    data = world.data("failed")
    assert data["reason"]["code"] == "graph_access_denied"
    assert data["permission"] == "User.Read.All"
    assert data["lastError"]["status"] == 403


def test_writes_that_keep_failing_on_a_synced_user_end_graph_unavailable() -> None:
    """Seen synced, never licensed before the deadline: graph_unavailable with lastError."""
    world = World(sync_timeout=timedelta(minutes=10))
    jane(world)
    world.directory.write_lag = 100
    world.handle(request())
    world.sweep_after(timedelta(minutes=5))
    world.sweep_after(timedelta(minutes=5))
    data = world.data("failed")
    assert data["reason"]["code"] == "graph_unavailable"
    assert data["lastError"]["code"] == "Request_ResourceNotFound"
    assert "lastSeen" not in data
