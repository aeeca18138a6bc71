"""Pure decisions: given a request's state, what Graph said and the time, what happens
next. No I/O here; `shared.service` carries the decisions out.

A request's life: admitted (`admit`) → looked up (`after_lookup`): wait, fail or license →
licensing planned against the SKU catalog (`plan_licenses`) → licensed, failed, or blocked
for lack of seats (`after_no_seats`), which waits like a sync does, until the deadline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

from shared.codes import FailureCode, LastSeen, LicenseStatus
from shared.errors import FieldError, GraphError, GraphErrorKind, InvalidRequest
from shared.events import LicenseOutcome, Reason
from shared.requests import LicenseRequest, OnboardingRequest
from shared.state import LastError, PendingState
from shared.tenant import (
    Ambiguous,
    DirectoryUser,
    Found,
    LicenseAssignment,
    Lookup,
    LookupFailed,
    NotFound,
    SkuCatalog,
)
from shared.times import format_time


@dataclass(frozen=True)
class Backoff:
    initial: timedelta
    maximum: timedelta

    def delay(self, checks: int) -> timedelta:
        """Delay after the `checks`-th check: initial, doubling, capped at maximum."""
        factor = 1 << max(0, min(checks - 1, 30))
        return min(self.initial * factor, self.maximum)


def admit(
    request: OnboardingRequest,
    now: datetime,
    *,
    default_licenses: tuple[LicenseRequest, ...] | None,
    sync_timeout: timedelta,
) -> PendingState:
    """Resolve what the message left to settings; InvalidRequest when nothing says which
    licenses to assign."""
    licenses = request.licenses or default_licenses
    if not licenses:
        raise InvalidRequest(
            [
                FieldError(
                    "licenses", "is required: the message has none and DEFAULT_LICENSES is not set"
                )
            ],
            request_id=request.request_id,
        )
    deadline = request.sync_deadline or now + sync_timeout
    return PendingState(
        request=replace(request, licenses=licenses, sync_deadline=deadline), received_at=now
    )


# --- decisions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """Park the request until `next_check`; publish `awaiting_sync`/`blocked` if set."""

    state: PendingState
    next_check: datetime
    announce: str | None = None  # "awaiting_sync" | "blocked" | None
    reason: Reason | None = None
    details: Mapping[str, Any] = field(default_factory=dict)  # extra `blocked` data


@dataclass(frozen=True)
class Fail:
    reason: Reason
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class License:
    """The user is synced: go on to license assignment, from `state`."""

    state: PendingState
    user: DirectoryUser


Decision = Wait | Fail | License


def after_lookup(state: PendingState, lookup: Lookup, now: datetime, backoff: Backoff) -> Decision:
    """What to do once Graph answered (or failed to answer) a lookup of the request's user."""
    checked = replace(state, checks=state.checks + 1)
    match lookup:
        case Found(user=user) if user.synced:
            seen = replace(checked, last_seen=LastSeen.SYNCED, seen_synced=True, last_error=None)
            return License(seen, user)
        case Found():
            return _not_yet(
                replace(checked, last_seen=LastSeen.NOT_SYNCED, last_error=None), now, backoff
            )
        case NotFound():
            return _not_yet(
                replace(checked, last_seen=LastSeen.NOT_FOUND, last_error=None), now, backoff
            )
        case Ambiguous(field=name, count=count):
            return Fail(
                Reason(
                    FailureCode.USER_AMBIGUOUS,
                    f"{name} matches {count} users; the request must name exactly one",
                )
            )
        case LookupFailed(error=error):
            return after_graph_error(checked, error, now, backoff)
    raise AssertionError(f"unexpected lookup {lookup!r}")  # pragma: no cover


def _not_yet(state: PendingState, now: datetime, backoff: Backoff) -> Decision:
    if now >= state.deadline:
        return at_deadline(state)
    announce = None if state.awaiting_sync_sent else "awaiting_sync"
    return Wait(
        replace(state, awaiting_sync_sent=True),
        _next_check(state, now, backoff),
        announce=announce,
    )


# assignLicense's permanent refusals, by what Graph's message said.
_REFUSALS: Final = {
    GraphErrorKind.MUTUALLY_EXCLUSIVE: FailureCode.MUTUALLY_EXCLUSIVE_PLANS,
    GraphErrorKind.MISSING_PREREQUISITE: FailureCode.MISSING_PREREQUISITE,
    GraphErrorKind.UNKNOWN_SKU: FailureCode.UNKNOWN_SKU,
    GraphErrorKind.REJECTED: FailureCode.GRAPH_REJECTED,
}


def after_graph_error(
    state: PendingState,
    error: GraphError,
    now: datetime,
    backoff: Backoff,
    *,
    user: DirectoryUser | None = None,
    wrote_usage_location: bool = False,
) -> Decision:
    """Every Graph failure, whatever the call: wait, block or fail.

    Graph is eventually consistent and throttles the app as a whole (graph-facts.md,
    "Eventual consistency"): throttling, outages, and a 404 on a write to a user a lookup
    has just returned are waited out until the deadline. 401/403 block the request, loudly,
    until an administrator grants the permission. An "invalid usage location" answer is
    replication lag when a usage location exists (the app wrote one, or the user has
    one); only without any is it final.
    """
    if wrote_usage_location:
        state = replace(state, usage_location_written=True)
    match error.kind:
        case GraphErrorKind.THROTTLED | GraphErrorKind.UNAVAILABLE | GraphErrorKind.NOT_FOUND:
            return _retry_later(state, error, now, backoff)
        case GraphErrorKind.ACCESS_DENIED:
            return _access_denied(state, error, now, backoff)
        case GraphErrorKind.USAGE_LOCATION_INVALID:
            if state.usage_location_written or (user is not None and user.usage_location):
                return _retry_later(state, error, now, backoff)
            return _refused(FailureCode.USAGE_LOCATION_MISSING, error)
        case GraphErrorKind.NO_SEATS:
            return after_no_seats(state, error.graph_message, now, backoff)
        case kind:
            return _refused(_REFUSALS[kind], error)


def _refused(code: FailureCode, error: GraphError) -> Fail:
    return Fail(Reason(code, error.graph_message), {"graphError": LastError.of(error).to_json()})


def _retry_later(
    state: PendingState, error: GraphError, now: datetime, backoff: Backoff
) -> Decision:
    """Transient trouble: try again later (never before Graph's Retry-After), until the
    deadline."""
    state = replace(state, last_error=LastError.of(error))
    if now >= state.deadline:
        return at_deadline(state)
    next_check = _next_check(state, now, backoff)
    if error.retry_after:
        next_check = min(
            max(next_check, now + timedelta(seconds=error.retry_after)), state.deadline
        )
    return Wait(state, next_check)


def _access_denied(
    state: PendingState, error: GraphError, now: datetime, backoff: Backoff
) -> Decision:
    """401/403: `blocked` once (graph_access_denied), retried until the deadline."""
    state = replace(state, last_error=LastError.of(error))
    if now >= state.deadline:
        return at_deadline(state)
    reason = Reason(FailureCode.GRAPH_ACCESS_DENIED, access_denied_message(error))
    announce = None if state.blocked_sent else "blocked"
    return Wait(
        replace(state, blocked_sent=True),
        _next_check(state, now, backoff),
        announce=announce,
        reason=reason,
        details=_permission_details(state.last_error),
    )


def access_denied_message(error: GraphError | LastError) -> str:
    """What an administrator must do, in one sentence."""
    call = error.call
    if error.status == 401:
        return (
            f"Graph refused the app's token on {call} (401 {error.code}); check the app's "
            f"identity and that it holds {call.permission}"
        )
    return (
        f"Graph refused {call} ({error.status} {error.code}): grant the app's identity the "
        f"application permission {call.permission}"
    )


def _permission_details(error: LastError | None) -> dict[str, Any]:
    """`data.permission` for a 403: the permission that covers the refused call."""
    if error is None or error.status != 403:
        return {}
    return {"permission": error.call.permission}


def after_no_seats(state: PendingState, message: str, now: datetime, backoff: Backoff) -> Decision:
    """No free seat for a SKU: `blocked` once, retried until the deadline, then `no_seats`."""
    reason = Reason(FailureCode.NO_SEATS, message)
    if now >= state.deadline:
        return Fail(reason)
    announce = None if state.blocked_sent else "blocked"
    blocked = replace(state, last_seen=LastSeen.SYNCED, blocked_sent=True, last_error=None)
    return Wait(blocked, _next_check(state, now, backoff), announce=announce, reason=reason)


def _next_check(state: PendingState, now: datetime, backoff: Backoff) -> datetime:
    return min(now + backoff.delay(max(state.checks, 1)), state.deadline)


def at_deadline(state: PendingState) -> Fail:
    """The deadline has passed: say honestly why the request could not be done.

    - `graph_access_denied`: the last attempt was refused with 401/403;
    - `graph_unavailable`: the user was seen synced, but Graph kept failing (throttling,
      outages, replication lag) until the deadline;
    - `sync_timeout`: the user was never seen synced (`lastSeen`: not_found, not_synced,
      or unreachable when Graph never answered a lookup).
    """
    deadline = format_time(state.deadline)
    error = state.last_error
    details: dict[str, Any] = {}
    if error is not None:
        details["lastError"] = error.to_json()
    if error is not None and error.kind == GraphErrorKind.ACCESS_DENIED:
        message = f"the deadline {deadline} passed while {access_denied_message(error)}"
        return Fail(
            Reason(FailureCode.GRAPH_ACCESS_DENIED, message),
            {**details, **_permission_details(error)},
        )
    if state.seen_synced:
        message = f"the user is synced, but Graph did not complete the licensing by {deadline}"
        if error is not None:
            message += f" (last answer: {error.status or 'no answer'} {error.code} on {error.call})"
        return Fail(Reason(FailureCode.GRAPH_UNAVAILABLE, message), details)
    last_seen = state.last_seen or LastSeen.UNREACHABLE
    if last_seen == LastSeen.UNREACHABLE:
        message = f"Graph never answered a lookup of the user before the deadline {deadline}"
    else:
        message = f"the user was not synced from Active Directory by {deadline}"
    return Fail(Reason(FailureCode.SYNC_TIMEOUT, message), {"lastSeen": last_seen, **details})


# --- license planning ----------------------------------------------------------------


@dataclass(frozen=True)
class LicensePlan:
    """What to write for a synced user: maybe a usageLocation, then the missing SKUs."""

    usage_location: str | None  # what the user will have; None when nothing is assigned
    write_usage_location: bool
    to_assign: tuple[LicenseAssignment, ...]
    outcomes: tuple[LicenseOutcome, ...]
    short_of_seats: tuple[str, ...]  # skuPartNumbers with no free seat in the catalog


def plan_licenses(
    licenses: Sequence[LicenseRequest],
    catalog: SkuCatalog,
    user: DirectoryUser,
    *,
    requested_location: str | None,
    default_location: str | None,
    may_write_location: bool,
) -> LicensePlan | Fail:
    """Resolve SKUs and plans by name, skip what the user has, choose the usage location.

    Every reason to fail that needs no write is found here, before anything is written.
    """
    to_assign: list[LicenseAssignment] = []
    outcomes: list[LicenseOutcome] = []
    short: list[str] = []
    for wanted in licenses:
        sku = catalog.find(wanted.sku_part_number)
        if sku is None:
            return Fail(
                Reason(
                    FailureCode.UNKNOWN_SKU,
                    f"the tenant has no subscription with skuPartNumber {wanted.sku_part_number}",
                )
            )
        if sku.applies_to.lower() != "user" or sku.capability_status != "Enabled":
            return Fail(
                Reason(
                    FailureCode.UNKNOWN_SKU,
                    f"{sku.part_number} cannot be assigned to users "
                    f"(appliesTo {sku.applies_to}, capabilityStatus {sku.capability_status})",
                )
            )
        plans = {plan.name.upper(): plan.id for plan in sku.service_plans}
        unknown = [name for name in wanted.disabled_plans if name.upper() not in plans]
        if unknown:
            return Fail(
                Reason(
                    FailureCode.UNKNOWN_SERVICE_PLAN,
                    f"{sku.part_number} has no service plan named {', '.join(unknown)}",
                )
            )
        if sku.id.lower() in user.assigned_sku_ids:
            outcomes.append(LicenseOutcome(sku.part_number, sku.id, LicenseStatus.ALREADY_ASSIGNED))
            continue
        outcomes.append(LicenseOutcome(sku.part_number, sku.id, LicenseStatus.ASSIGNED))
        disabled = tuple(plans[name.upper()] for name in wanted.disabled_plans)
        to_assign.append(LicenseAssignment(sku.id, disabled))
        if sku.free_units <= 0:
            short.append(sku.part_number)

    location = user.usage_location
    write = False
    if to_assign and not location:
        location = requested_location or default_location
        if location is None:
            return Fail(
                Reason(
                    FailureCode.USAGE_LOCATION_MISSING,
                    "the user has no usageLocation, the request gives none and "
                    "DEFAULT_USAGE_LOCATION is not set",
                )
            )
        if not may_write_location:
            return Fail(
                Reason(
                    FailureCode.USAGE_LOCATION_MISSING,
                    "the user has no usageLocation and SET_USAGE_LOCATION is false",
                )
            )
        write = True
    return LicensePlan(location, write, tuple(to_assign), tuple(outcomes), tuple(short))
