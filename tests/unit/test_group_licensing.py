"""Group-based licensing (LICENSING_MODE=group, contract v1.1): each SKU through its
licensing group, `licensed` only once Entra shows it Active, and every Error state mapped
to the contract's codes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.domain.errors import SettingsError
from shared.domain.tenant import LicenseState
from shared.settings import Settings
from tests.fakes import E3, MCOEV, FakeUser
from tests.unit.test_service import World, jane, request

E3_GROUP = "0f0e0d0c-0b0a-4909-8807-060504030201"
MCOEV_GROUP = "1f0e0d0c-0b0a-4909-8807-060504030201"
GROUPS = {"ENTERPRISEPACK": E3_GROUP, "MCOEV": MCOEV_GROUP}


def world(**policy: Any) -> World:
    w = World(license_groups=GROUPS, **policy)
    w.directory.groups = {E3_GROUP: E3, MCOEV_GROUP: MCOEV}
    return w


def e3_only(**extra: Any) -> dict[str, Any]:
    return request(licenses=[{"skuPartNumber": "ENTERPRISEPACK"}], **extra)


def test_the_user_is_added_to_the_group_and_licensed_once_the_state_is_active() -> None:
    """Add member, wait (no event), then licensed/assigned when Entra shows Active."""
    w = world()
    jane(w)
    assert w.handle(e3_only()) == "waiting"
    assert w.directory.memberships == [(E3_GROUP, "u-jane")]
    assert w.events.events == []
    (state,) = w.pending.contents()
    assert state["groupsJoined"] == [E3]
    w.sweep_after(timedelta(seconds=30))
    (licensed,) = w.events.of_type("licensed")
    assert licensed.data["licenses"] == [
        {"skuPartNumber": "ENTERPRISEPACK", "skuId": E3, "status": "assigned"}
    ]
    assert w.directory.memberships == [(E3_GROUP, "u-jane")]  # added once


def test_a_sku_the_user_already_holds_is_already_assigned_without_a_membership() -> None:
    """Held directly (or through any group): nothing to add."""
    w = world()
    jane(w, licenses={E3: ()})
    assert w.handle(e3_only()) == "licensed"
    assert w.data("licensed")["licenses"][0]["status"] == "already_assigned"
    assert w.directory.memberships == []


def test_count_violation_blocks_then_reprocesses_once_seats_are_free() -> None:
    """blocked/no_seats; after seats are added, reprocessLicenseAssignment, then licensed."""
    w = world()
    jane(w)
    e3 = w.directory.skus[1]
    e3.consumed = e3.enabled
    w.handle(e3_only())
    w.sweep_after(timedelta(seconds=30))
    assert w.data("blocked")["reason"]["code"] == "no_seats"
    assert w.directory.reprocessed == []
    e3.enabled += 1
    w.sweep_after(timedelta(minutes=10))  # the next check after blocked
    assert w.directory.reprocessed == ["u-jane"]
    w.sweep_after(timedelta(seconds=30))
    assert w.events.terminal_ids() == {"HR-1:licensed"}


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("MutuallyExclusiveViolation", "mutually_exclusive_plans"),
        ("DependencyViolation", "missing_prerequisite"),
        ("ProhibitedInUsageLocationViolation", "graph_rejected"),
        ("Other", "graph_rejected"),
    ],
)
def test_an_error_state_fails_with_the_contracts_code(error: str, code: str) -> None:
    """The state's error is in data.graphError."""
    w = world()
    jane(w)
    w.directory.group_errors[E3] = error
    w.handle(e3_only())
    w.sweep_after(timedelta(seconds=30))
    data = w.data("failed")
    assert data["reason"]["code"] == code
    assert data["graphError"] == {"state": "Error", "error": error, "skuId": E3, "group": E3_GROUP}


def test_a_disabled_plans_request_is_rejected_in_group_mode() -> None:
    """The group decides the disabled plans: a field-level rejection."""
    w = world()
    jane(w)
    assert w.handle(request()) == "rejected"
    (error,) = w.data("rejected")["errors"]
    assert error["field"] == "licenses[1].disabledPlans"


def test_a_sku_without_a_licensing_group_fails_as_unknown_sku() -> None:
    """LICENSE_GROUPS names no group for it."""
    w = World(license_groups={"MCOEV": MCOEV_GROUP})
    jane(w)
    w.handle(e3_only())
    assert w.data("failed")["reason"]["code"] == "unknown_sku"


def test_no_usage_location_is_not_a_failure_in_group_mode() -> None:
    """The tenant's location applies to group licenses; nothing is written."""
    w = world()
    jane(w, usage_location=None)
    w.handle(e3_only())
    assert ("usageLocation", "u-jane", "FR") not in w.directory.writes
    w.sweep_after(timedelta(seconds=30))
    assert w.events.terminal_ids() == {"HR-1:licensed"}


def test_an_active_with_error_state_counts_as_licensed() -> None:
    """ActiveWithError: the license is on the user."""
    w = world()
    user = jane(w)
    user.group_states[E3_GROUP] = LicenseState(E3, E3_GROUP, "ActiveWithError", "Other")
    assert w.handle(e3_only()) == "licensed"


def test_processing_that_never_ends_fails_graph_unavailable_at_the_deadline() -> None:
    """The user is synced but Entra never showed the state: not a sync_timeout."""
    w = world(sync_timeout=timedelta(minutes=1))
    w.directory.add(FakeUser("u-jane", "jane@contoso.com"))
    w.directory._process = lambda user, group: None  # type: ignore[method-assign]
    w.handle(e3_only())
    w.sweep_after(timedelta(seconds=30))
    w.sweep_after(timedelta(seconds=30))
    assert w.data("failed")["reason"]["code"] == "graph_unavailable"


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"LICENSING_MODE": "groups"}, "LICENSING_MODE"),
        ({"LICENSING_MODE": "group"}, "LICENSE_GROUPS"),
        ({"LICENSING_MODE": "group", "LICENSE_GROUPS": "MCOEV"}, "LICENSE_GROUPS"),
        ({"LICENSING_MODE": "group", "LICENSE_GROUPS": "MCOEV=not-a-guid"}, "LICENSE_GROUPS"),
        (
            {"LICENSING_MODE": "group", "LICENSE_GROUPS": f"MCOEV={MCOEV_GROUP},mcoev={E3_GROUP}"},
            "LICENSE_GROUPS",
        ),
    ],
)
def test_group_mode_settings_are_validated_naming_the_setting(
    env: dict[str, str], setting: str
) -> None:
    """Both settings are checked at start-up."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", **env})
    assert caught.value.setting == setting


def test_license_groups_are_read_by_upper_case_sku() -> None:
    """skuPartNumber matching is case-insensitive, as everywhere else."""
    config = Settings.from_env(
        {
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "LICENSING_MODE": "GROUP",
            "LICENSE_GROUPS": f" enterprisepack = {E3_GROUP.upper()} , MCOEV={MCOEV_GROUP}",
        }
    )
    assert config.licensing_mode == "group"
    assert config.license_groups == GROUPS
