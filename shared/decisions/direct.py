"""Direct licensing (LICENSING_MODE=direct): which SKUs to assign with which disabled plans,
and which usage location to write first, planned against the tenant's SKU catalog before
anything is written."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.decisions.outcomes import Fail, LicensePlan, RefreshCatalog, Wait
from shared.decisions.rules import Rules
from shared.decisions.trouble import after_no_seats
from shared.domain.codes import FailureCode, LicenseStatus
from shared.domain.events import LicenseOutcome, Reason
from shared.domain.requests import LicenseRequest
from shared.domain.state import PendingState
from shared.domain.tenant import DirectoryUser, LicenseAssignment, Sku, SkuCatalog


def plan_licensing(
    state: PendingState,
    user: DirectoryUser,
    catalog: SkuCatalog,
    now: datetime,
    rules: Rules,
    *,
    refreshed: bool,
) -> LicensePlan | RefreshCatalog | Wait | Fail:
    """What to write for a synced user, or why not (yet). A catalog read before this
    request may not know a SKU bought since, or count seats freed since: it gets one
    refresh before `unknown_sku` or `blocked`."""
    plan = plan_licenses(
        state.licenses, catalog, user, requested_location=state.request.usage_location, rules=rules
    )
    stale = (isinstance(plan, Fail) and plan.reason.code == FailureCode.UNKNOWN_SKU) or (
        isinstance(plan, LicensePlan) and bool(plan.short_of_seats)
    )
    if stale and not refreshed:
        return RefreshCatalog()
    if isinstance(plan, LicensePlan) and plan.short_of_seats:
        return after_no_seats(
            state, f"no free seat for {', '.join(plan.short_of_seats)}", now, rules
        )
    return plan


def plan_licenses(
    licenses: Sequence[LicenseRequest],
    catalog: SkuCatalog,
    user: DirectoryUser,
    *,
    requested_location: str | None,
    rules: Rules,
) -> LicensePlan | Fail:
    """Resolve SKUs and plans by name, skip what the user has, choose the usage location.

    Every reason to fail that needs no write is found here, before anything is written.
    """
    to_assign: list[LicenseAssignment] = []
    outcomes: list[LicenseOutcome] = []
    short: list[str] = []
    for wanted in licenses:
        sku = catalog.find(wanted.sku_part_number)
        refusal = _unusable(wanted, sku)
        if refusal is not None:
            return refusal
        assert sku is not None
        if sku.id.lower() in user.assigned_sku_ids:
            outcomes.append(LicenseOutcome(sku.part_number, sku.id, LicenseStatus.ALREADY_ASSIGNED))
            continue
        outcomes.append(LicenseOutcome(sku.part_number, sku.id, LicenseStatus.ASSIGNED))
        plans = {plan.name.upper(): plan.id for plan in sku.service_plans}
        disabled = tuple(plans[name.upper()] for name in wanted.disabled_plans)
        to_assign.append(LicenseAssignment(sku.id, disabled))
        if sku.free_units <= 0:
            short.append(sku.part_number)
    location = _usage_location(user, bool(to_assign), requested_location, rules)
    if isinstance(location, Fail):
        return location
    where, write = location
    return LicensePlan(where, write, tuple(to_assign), tuple(outcomes), tuple(short))


def _unusable(wanted: LicenseRequest, sku: Sku | None) -> Fail | None:
    """Why a requested SKU cannot be assigned at all, or None."""
    if sku is None:
        return Fail(
            Reason(
                FailureCode.UNKNOWN_SKU,
                f"the tenant has no subscription with skuPartNumber {wanted.sku_part_number}",
            )
        )
    if not sku.assignable_to_users:
        return Fail(
            Reason(
                FailureCode.UNKNOWN_SKU,
                f"{sku.part_number} cannot be assigned to users "
                f"(appliesTo {sku.applies_to}, capabilityStatus {sku.capability_status})",
            )
        )
    plans = {plan.name.upper() for plan in sku.service_plans}
    unknown = [name for name in wanted.disabled_plans if name.upper() not in plans]
    if unknown:
        return Fail(
            Reason(
                FailureCode.UNKNOWN_SERVICE_PLAN,
                f"{sku.part_number} has no service plan named {', '.join(unknown)}",
            )
        )
    return None


def _usage_location(
    user: DirectoryUser, assigning: bool, requested: str | None, rules: Rules
) -> tuple[str | None, bool] | Fail:
    """The usage location the user will have, and whether the app must write it: the
    user's own wins, then the request's, then DEFAULT_USAGE_LOCATION; needed only when
    something is to be assigned."""
    if not assigning or user.usage_location:
        return user.usage_location, False
    location = requested or rules.default_location
    if location is None:
        return Fail(
            Reason(
                FailureCode.USAGE_LOCATION_MISSING,
                "the user has no usageLocation, the request gives none and "
                "DEFAULT_USAGE_LOCATION is not set",
            )
        )
    if not rules.may_write_location:
        return Fail(
            Reason(
                FailureCode.USAGE_LOCATION_MISSING,
                "the user has no usageLocation and SET_USAGE_LOCATION is false",
            )
        )
    return location, True
