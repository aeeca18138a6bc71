"""Group-based licensing (LICENSING_MODE=group): each SKU is granted by its licensing group,
and `licensed` only once Entra shows it Active (or ActiveWithError) on the user
(contract, "Group-based licensing")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final

from shared.decisions.outcomes import Fail, GroupPlan, Licensed, LicensePlan, RefreshCatalog, Wait
from shared.decisions.rules import Rules
from shared.decisions.trouble import after_no_seats, at_deadline
from shared.domain.codes import FailureCode, LicenseStatus
from shared.domain.errors import GraphCall, GraphErrorKind
from shared.domain.events import LicenseOutcome, Reason
from shared.domain.state import LastError, PendingState
from shared.domain.tenant import DirectoryUser, LicenseState, Sku, SkuCatalog

# An `Error` licenseAssignmentState, as the contract maps it (CountViolation blocks).
_GROUP_ERRORS: Final = {
    "MutuallyExclusiveViolation": FailureCode.MUTUALLY_EXCLUSIVE_PLANS,
    "DependencyViolation": FailureCode.MISSING_PREREQUISITE,
}


@dataclass
class _Survey:
    """Where each requested SKU stands on the user."""

    outcomes: list[LicenseOutcome] = field(default_factory=list)  # held already
    to_add: list[tuple[str, str]] = field(default_factory=list)  # (skuId, group) to join
    counting: list[Sku] = field(default_factory=list)  # Error: CountViolation (no seats)
    processing: bool = False  # joined, not processed by Entra yet


def plan_group_licensing(
    state: PendingState,
    user: DirectoryUser,
    catalog: SkuCatalog,
    now: datetime,
    rules: Rules,
    *,
    refreshed: bool,
) -> GroupPlan | RefreshCatalog | Licensed | Wait | Fail:
    """Per SKU: held already (any Active state, or assigned directly) → done; its group's
    state is Error → the contract's code (CountViolation: blocked no_seats, and once
    subscribedSkus shows a free seat, ask Entra to reprocess); not a member yet → add;
    added but not processed yet → wait. A usage location is written when one is known and
    allowed; without one the tenant's applies (group licensing inherits it)."""
    assert rules.license_groups is not None
    survey = _Survey()
    for wanted in state.licenses:
        found = _surveyed(
            state,
            user,
            catalog.find(wanted.sku_part_number),
            wanted.sku_part_number,
            rules.license_groups,
            survey,
            refreshed=refreshed,
        )
        if found is not None:
            return found
    if survey.counting:
        return _out_of_seats(state, survey, now, rules, refreshed=refreshed)
    location, write = user.usage_location, False
    if survey.to_add and not location:
        location = state.request.usage_location or rules.default_location
        write = location is not None and rules.may_write_location
    if survey.to_add or write:
        return GroupPlan(location if write else None, write, tuple(survey.to_add), reprocess=False)
    if survey.processing:
        return _processing(state, now, rules)
    plan = LicensePlan(user.usage_location, False, (), tuple(survey.outcomes), ())
    return Licensed(user, plan)


def _surveyed(
    state: PendingState,
    user: DirectoryUser,
    sku: Sku | None,
    asked: str,
    groups: Mapping[str, str],
    survey: _Survey,
    *,
    refreshed: bool,
) -> RefreshCatalog | Fail | None:
    """Add one SKU's standing to `survey`; a refresh or a failure ends the planning."""
    if sku is None or not sku.assignable_to_users:
        if not refreshed:
            return RefreshCatalog()
        return Fail(
            Reason(
                FailureCode.UNKNOWN_SKU,
                f"the tenant has no subscription with skuPartNumber {asked}"
                if sku is None
                else f"{sku.part_number} cannot be assigned to users",
            )
        )
    group = groups.get(sku.part_number.upper())
    if group is None:
        return Fail(
            Reason(
                FailureCode.UNKNOWN_SKU,
                f"LICENSE_GROUPS names no licensing group for {sku.part_number}",
            )
        )
    sku_id = sku.id.lower()
    states = [s for s in user.license_states if s.sku_id == sku_id]
    if sku_id in user.assigned_sku_ids or any(s.active for s in states):
        joined = sku_id in state.groups_joined
        status = LicenseStatus.ASSIGNED if joined else LicenseStatus.ALREADY_ASSIGNED
        survey.outcomes.append(LicenseOutcome(sku.part_number, sku.id, status))
        return None
    ours = next((s for s in states if s.assigned_by_group == group.lower()), None)
    if ours is not None and ours.state in ("Error", "Disabled"):
        if ours.error == "CountViolation":
            survey.counting.append(sku)
            return None
        return _group_error(sku, group, ours)
    if sku_id in state.groups_joined:
        survey.processing = True
    else:
        survey.to_add.append((sku_id, group))
    return None


def _group_error(sku: Sku, group: str, ours: LicenseState) -> Fail:
    code = _GROUP_ERRORS.get(ours.error or "", FailureCode.GRAPH_REJECTED)
    return Fail(
        Reason(
            code,
            f"Entra could not license {sku.part_number} through group {group}: "
            f"state {ours.state}, error {ours.error or 'none'}",
        ),
        {"graphError": {"state": ours.state, "error": ours.error, "skuId": sku.id, "group": group}},
    )


def _out_of_seats(
    state: PendingState, survey: _Survey, now: datetime, rules: Rules, *, refreshed: bool
) -> GroupPlan | RefreshCatalog | Wait | Fail:
    """CountViolation: seats may have been bought since the catalog was read (one
    refresh); once one is free, ask Entra to reprocess; else blocked no_seats."""
    if all(s.free_units <= 0 for s in survey.counting) and not refreshed:
        return RefreshCatalog()
    if any(s.free_units > 0 for s in survey.counting) and not survey.to_add:
        return GroupPlan(None, False, (), reprocess=True)
    short = ", ".join(s.part_number for s in survey.counting)
    return after_no_seats(state, f"no free seat for {short} (CountViolation)", now, rules)


def after_group_writes(
    state: PendingState, plan: GroupPlan, now: datetime, rules: Rules
) -> Wait | Fail:
    """The memberships are added (or a reprocess asked): Entra processes group licenses in
    seconds to minutes; look again soon."""
    joined = state.groups_joined | {sku for sku, _ in plan.add_to_groups}
    written = state.usage_location_written or plan.write_usage_location
    return _processing(
        replace(state, groups_joined=frozenset(joined), usage_location_written=written), now, rules
    )


def _processing(state: PendingState, now: datetime, rules: Rules) -> Wait | Fail:
    state = replace(state, first_check_done=True)
    if now >= state.deadline:
        pending = LastError(
            GraphErrorKind.UNAVAILABLE,
            GraphCall.LOOKUP,
            0,
            "LicenseProcessingPending",
            "Entra had not finished processing the group licenses",
        )
        return at_deadline(replace(state, last_error=pending))
    return Wait(state, rules.soon(state, now, rules.group_recheck))
