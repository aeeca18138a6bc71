"""Pure decisions: given a request's state, what Graph said and the time, what happens
next. No I/O here; `shared.service` carries the decisions out, one way: fetch, ask the
workflow, write, publish, acknowledge.

A request's life: admitted (`admit`) → looked up (`after_lookup`): wait, fail or license →
licensing planned against the SKU catalog (`plan_licensing`, which also says when the
catalog looks stale) → written; a Graph failure at any step is `after_graph_error`'s to
judge → licensed, failed, or blocked, which waits like a sync does, until the deadline.
`settle` turns the outcome into what to publish and keep; `redelivery` says what a
message gets when its request is already known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

from shared.codes import (
    Announcement,
    EventType,
    FailureCode,
    ForcedSyncStatus,
    LastSeen,
    LicenseStatus,
    RejectionCode,
)
from shared.errors import FieldError, GraphCall, GraphError, GraphErrorKind, InvalidRequest
from shared.events import (
    Event,
    LicenseOutcome,
    Reason,
    Subject,
    awaiting_sync_event,
    blocked_event,
    failed_event,
    licensed_event,
    rejected_event,
    scheduled_event,
)
from shared.records import Progress, RequestRecord
from shared.requests import LicenseRequest, OnboardingRequest
from shared.state import LastError, PendingState
from shared.tenant import (
    Ambiguous,
    DirectoryUser,
    ForcedSyncResult,
    Found,
    LicenseAssignment,
    Lookup,
    LookupFailed,
    NotFound,
    Sku,
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


MAX_START_AHEAD: Final = timedelta(days=400)
# Azure Storage hides a message for at most 7 days: a longer wait is a chain of hops.
MAX_HOP: Final = timedelta(days=7) - timedelta(minutes=1)


def admit(
    request: OnboardingRequest,
    now: datetime,
    *,
    default_licenses: tuple[LicenseRequest, ...] | None,
    sync_timeout: timedelta,
    lead_time: timedelta = timedelta(days=1),
    group_mode: bool = False,
) -> PendingState:
    """Resolve what the message left to settings and the clock; InvalidRequest when
    nothing says which licenses to assign, or the dates cannot work.

    The start window opens at `startDate - lead_time`; nothing is looked up or assigned
    before it (a date already past behaves as if absent). The default deadline counts from
    the start of work: receipt, or the window if it is later."""
    errors: list[FieldError] = []
    licenses = request.licenses or default_licenses
    if not licenses:
        errors.append(
            FieldError(
                "licenses", "is required: the message has none and DEFAULT_LICENSES is not set"
            )
        )
    if group_mode:  # the group's license holds the disabled plans
        errors += [
            FieldError(
                f"licenses[{n}].disabledPlans",
                "is not allowed with LICENSING_MODE=group: the licensing group decides them",
            )
            for n, lic in enumerate(request.licenses or ())
            if lic.disabled_plans
        ]
    window: datetime | None = None
    if request.start_date is not None:
        if request.start_date > now + MAX_START_AHEAD:
            errors.append(FieldError("startDate", "must be at most 400 days ahead"))
        elif request.start_date - lead_time > now:
            window = request.start_date - lead_time
    if window is not None and request.sync_deadline is not None and request.sync_deadline < window:
        errors.append(
            FieldError(
                "syncDeadline",
                f"is before the start window {format_time(window)} (startDate minus "
                "LICENSE_LEAD_TIME): nothing would be done before it",
            )
        )
    if errors:
        raise InvalidRequest(errors, request_id=request.request_id)
    deadline = request.sync_deadline or max(now, window or now) + sync_timeout
    return PendingState(
        request=replace(request, licenses=licenses, sync_deadline=deadline),
        received_at=now,
        not_before=window,
    )


def before_check(state: PendingState, now: datetime) -> Wait | None:
    """Before the start window: wait for it without any Graph call (`scheduled`, once), in
    hops of at most 7 days; None when the window is open."""
    if state.not_before is None or now >= state.not_before:
        return None
    announce = None if state.scheduled_sent else Announcement.SCHEDULED
    next_check = min(state.not_before, now + MAX_HOP)
    return Wait(replace(state, scheduled_sent=True), next_check, announce=announce)


# --- decisions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """Park the request until `next_check`; publish `awaiting_sync`/`blocked` if set."""

    state: PendingState
    next_check: datetime
    announce: Announcement | None = None
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


@dataclass(frozen=True)
class ForceSync:
    """Not in Entra yet (or not synced): ask Cloud Sync to provision the user now, then
    decide with `after_forced_sync`."""

    state: PendingState


Decision = Wait | Fail | License | ForceSync


def after_lookup(
    state: PendingState,
    lookup: Lookup,
    now: datetime,
    backoff: Backoff,
    *,
    can_force_sync: bool = False,
) -> Decision:
    """What to do once Graph answered (or failed to answer) a lookup of the request's user.
    `can_force_sync`: a Cloud Sync job is configured (CLOUD_SYNC_JOB)."""
    checked = replace(state, checks=state.checks + 1)
    match lookup:
        case Found(user=user) if user.synced:
            seen = replace(checked, last_seen=LastSeen.SYNCED, seen_synced=True, last_error=None)
            return License(seen, user)
        case Found():
            waiting = replace(checked, last_seen=LastSeen.NOT_SYNCED, last_error=None)
            return _not_yet(waiting, now, backoff, can_force_sync=can_force_sync)
        case NotFound():
            waiting = replace(checked, last_seen=LastSeen.NOT_FOUND, last_error=None)
            return _not_yet(waiting, now, backoff, can_force_sync=can_force_sync)
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


def _not_yet(
    state: PendingState, now: datetime, backoff: Backoff, *, can_force_sync: bool = False
) -> Wait | Fail | ForceSync:
    if now >= state.deadline:
        return at_deadline(state)
    if (
        can_force_sync
        and state.request.distinguished_name is not None
        and state.forced_sync in (None, ForcedSyncStatus.THROTTLED)
    ):
        return ForceSync(state)
    return _awaiting_sync(state, _next_check(state, now, backoff))


def _awaiting_sync(state: PendingState, next_check: datetime) -> Wait:
    announce = None if state.awaiting_sync_sent else Announcement.AWAITING_SYNC
    return Wait(replace(state, awaiting_sync_sent=True), next_check, announce=announce)


def after_forced_sync(
    state: PendingState,
    result: ForcedSyncResult,
    now: datetime,
    backoff: Backoff,
    *,
    recheck: timedelta,
) -> Wait:
    """After asking Cloud Sync for this user: check again soon (the user should appear
    within seconds) unless the call failed, then wait for the regular sync as before. A
    throttled call (not sent) is tried again at the next check; one that was sent is never
    sent again. The first attempt's outcome goes with `awaiting_sync`."""
    state = replace(state, forced_sync=result.status, forced_sync_message=result.message)
    if result.status == ForcedSyncStatus.FAILED:
        next_check = _next_check(state, now, backoff)
    else:
        next_check = min(now + min(recheck, backoff.delay(1)), state.deadline)
    return _awaiting_sync(state, next_check)


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
) -> Wait | Fail:
    """Every Graph failure, whatever the call: wait, block or fail.

    Graph is eventually consistent and throttles the app as a whole (docs/graph-facts.md,
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
) -> Wait | Fail:
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
) -> Wait | Fail:
    """401/403: `blocked` once (graph_access_denied), retried until the deadline."""
    state = replace(state, last_error=LastError.of(error))
    if now >= state.deadline:
        return at_deadline(state)
    reason = Reason(FailureCode.GRAPH_ACCESS_DENIED, access_denied_message(error))
    announce = None if state.blocked_sent else Announcement.BLOCKED
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


def after_no_seats(
    state: PendingState, message: str, now: datetime, backoff: Backoff
) -> Wait | Fail:
    """No free seat for a SKU: `blocked` once, retried until the deadline, then `no_seats`."""
    reason = Reason(FailureCode.NO_SEATS, message)
    if now >= state.deadline:
        return Fail(reason)
    announce = None if state.blocked_sent else Announcement.BLOCKED
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
class RefreshCatalog:
    """The cached SKU catalog looks stale (a SKU it does not know, a SKU without seats, or
    Graph saying so): read it again and plan once more, before deciding anything."""


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


def plan_licensing(
    state: PendingState,
    user: DirectoryUser,
    catalog: SkuCatalog,
    now: datetime,
    backoff: Backoff,
    *,
    refreshed: bool,
    default_location: str | None,
    may_write_location: bool,
) -> LicensePlan | RefreshCatalog | Wait | Fail:
    """What to write for a synced user, or why not (yet). A catalog read before this
    request may not know a SKU bought since, or count seats freed since: it gets one
    refresh before `unknown_sku` or `blocked`."""
    plan = plan_licenses(
        state.licenses,
        catalog,
        user,
        requested_location=state.request.usage_location,
        default_location=default_location,
        may_write_location=may_write_location,
    )
    stale = (isinstance(plan, Fail) and plan.reason.code == FailureCode.UNKNOWN_SKU) or (
        isinstance(plan, LicensePlan) and bool(plan.short_of_seats)
    )
    if stale and not refreshed:
        return RefreshCatalog()
    if isinstance(plan, LicensePlan) and plan.short_of_seats:
        return after_no_seats(
            state, f"no free seat for {', '.join(plan.short_of_seats)}", now, backoff
        )
    return plan


def after_write_error(
    state: PendingState,
    error: GraphError,
    now: datetime,
    backoff: Backoff,
    *,
    user: DirectoryUser,
    wrote_usage_location: bool,
    refreshed: bool,
) -> Wait | Fail | RefreshCatalog:
    """A write Graph refused: an unknown skuId may be a stale catalog (one refresh), the
    rest is `after_graph_error`'s."""
    if error.kind == GraphErrorKind.UNKNOWN_SKU and not refreshed:
        return RefreshCatalog()
    return after_graph_error(
        state, error, now, backoff, user=user, wrote_usage_location=wrote_usage_location
    )


# --- what to publish and keep -------------------------------------------------------------


@dataclass(frozen=True)
class Licensed:
    """Every requested license is on the user."""

    user: DirectoryUser
    plan: LicensePlan


Outcome = Wait | Fail | Licensed


@dataclass(frozen=True)
class Park:
    """Publish the announcements, keep `state` on the pending queue until `next_check`,
    and show `progress` in the ledger."""

    announcements: tuple[Event, ...]
    state: PendingState
    next_check: datetime
    progress: Progress


@dataclass(frozen=True)
class Conclude:
    """Record the terminal event (the first one recorded stands), then publish it."""

    event: Event


def settle(state: PendingState, outcome: Outcome, now: datetime) -> Park | Conclude:
    """The events an outcome gives, and what is kept of the request."""
    request = state.request
    user = outcome.user if isinstance(outcome, Licensed) else None
    who = Subject(
        request.request_id,
        user.user_principal_name if user else request.identifiers.user_principal_name,
        user.id if user else None,
    )
    match outcome:
        case Licensed(plan=plan):
            return Conclude(
                licensed_event(
                    who, now, licenses=plan.outcomes, usage_location=plan.usage_location or ""
                )
            )
        case Fail(reason=reason, details=details):
            return Conclude(failed_event(who, now, reason=reason, details=details))
        case Wait(state=next_state, next_check=next_check, announce=announce):
            announcements: list[Event] = []
            if announce == Announcement.AWAITING_SYNC:
                forced = None
                if next_state.forced_sync is not None:
                    forced = {
                        "status": str(next_state.forced_sync),
                        "message": next_state.forced_sync_message or "",
                    }
                announcements.append(
                    awaiting_sync_event(
                        who,
                        now,
                        last_seen=next_state.last_seen or LastSeen.NOT_FOUND,
                        next_check=next_check,
                        deadline=next_state.deadline,
                        forced_sync=forced,
                    )
                )
            elif announce == Announcement.SCHEDULED:
                assert next_state.not_before is not None
                announcements.append(
                    scheduled_event(
                        who, now, not_before=next_state.not_before, deadline=next_state.deadline
                    )
                )
            elif announce == Announcement.BLOCKED:
                assert outcome.reason is not None
                announcements.append(
                    blocked_event(
                        who,
                        now,
                        reason=outcome.reason,
                        next_check=next_check,
                        deadline=next_state.deadline,
                        details=outcome.details,
                    )
                )
            progress = Progress(
                status=_status_of(next_state, now),
                parked=True,
                deadline=next_state.deadline,
                next_check_at=next_check,
                last_seen=next_state.last_seen,
                last_error=next_state.last_error.to_json() if next_state.last_error else None,
                sent={str(announce): now} if announce else {},
                not_before=next_state.not_before,
                reason=outcome.reason.to_json() if outcome.reason else None,
            )
            return Park(tuple(announcements), next_state, next_check, progress)
    raise AssertionError(f"unexpected outcome {outcome!r}")  # pragma: no cover


def _status_of(state: PendingState, now: datetime) -> str:
    if state.not_before is not None and now < state.not_before:
        return "scheduled"
    return "blocked" if state.blocked_sent else "waiting"


@dataclass(frozen=True)
class Republish:
    """The request is decided: publish its outcome again (same id)."""

    event: Event


@dataclass(frozen=True)
class Ignore:
    """The request is in the hands of another delivery: nothing to do or publish."""

    why: str


def redelivery(record: RequestRecord, message_id: str, now: datetime) -> Republish | Ignore | None:
    """What a valid message gets when the ledger already knows its request; None: handle
    it (a redelivery of the message that opened it, before it was parked).

    A new delivery of a licensed request reports its licenses `already_assigned` (they
    are, and no second seat is used); a replay of the deciding message repeats its event
    word for word."""
    if record.decided is not None:
        event = record.decided.event
        if record.decided.by == message_id or event.type != EventType.LICENSED:
            return Republish(event)
        licenses = [
            LicenseOutcome(
                lic["skuPartNumber"], lic["skuId"], LicenseStatus.ALREADY_ASSIGNED
            ).to_json()
            for lic in event.data.get("licenses", [])
        ]
        return Republish(
            Event(event.type, event.id, now, {**event.data, "licenses": licenses}, event.subject)
        )
    if record.owner != message_id:
        return Ignore(f"already in progress, opened by message {record.owner}")
    if record.progress.parked:
        return Ignore("already parked by this same message")
    return None


# --- messages the app cannot take further ---------------------------------------------------

MAX_ORIGINAL_CHARS: Final = 16_384


def rejection(
    problem: InvalidRequest, message_id: str, now: datetime, *, taken: bool = False
) -> Event:
    """`rejected`/`invalid_message`. `taken`: the requestId belongs to another message, so
    this one is rejected under its own id and the request it named is not touched."""
    reason = Reason(RejectionCode.INVALID_MESSAGE, str(problem))
    if not taken:
        return rejected_event(
            now,
            reason=reason,
            request_id=problem.request_id,
            message_id=message_id,
            errors=problem.errors,
        )
    return rejected_event(
        now,
        reason=Reason(
            RejectionCode.INVALID_MESSAGE,
            f"{reason.message}; the requestId {problem.request_id} belongs to another "
            "message, whose request is not affected",
        ),
        request_id=None,
        message_id=message_id,
        errors=problem.errors,
        details={"requestId": problem.request_id},
    )


def given_up(
    content: str, message_id: str, request_id: str | None, why: str, now: datetime
) -> Event:
    """`rejected`/`poison`: the app gave up on a message (the host poisoned it, or the app
    could not handle it); the original text goes with it."""
    return rejected_event(
        now,
        reason=Reason(RejectionCode.POISON, why),
        request_id=request_id,
        message_id=message_id,
        details={"originalMessage": content[:MAX_ORIGINAL_CHARS]},
    )


def after_giving_up(record: RequestRecord | None, source: str) -> Republish | Ignore | None:
    """What the request of a message given up on gets; None: it ends `rejected`/`poison`.
    Decided already: that outcome, again. A poisoned copy of a request that is parked: it
    lives on the pending queue, so nothing ends (the copy is kept all the same)."""
    if record is not None and record.decided is not None:
        return Republish(record.decided.event)
    if source == "poison" and record is not None and record.progress.parked:
        return Ignore("the request is parked and goes on")
    return None


# --- group-based licensing -----------------------------------------------------------------


@dataclass(frozen=True)
class GroupPlan:
    """Writes for group mode: maybe the usage location, the memberships to add, a request
    that Entra reprocess the user's group licenses; then wait for Entra to process them."""

    usage_location: str | None
    write_usage_location: bool
    add_to_groups: tuple[tuple[str, str], ...]  # (skuId, groupId)
    reprocess: bool


# An `Error` licenseAssignmentState, as the contract maps it (CountViolation blocks).
_GROUP_ERRORS: Final = {
    "MutuallyExclusiveViolation": FailureCode.MUTUALLY_EXCLUSIVE_PLANS,
    "DependencyViolation": FailureCode.MISSING_PREREQUISITE,
}


def plan_group_licensing(
    state: PendingState,
    user: DirectoryUser,
    catalog: SkuCatalog,
    groups: Mapping[str, str],
    now: datetime,
    backoff: Backoff,
    *,
    refreshed: bool,
    default_location: str | None,
    may_write_location: bool,
    recheck: timedelta,
) -> GroupPlan | RefreshCatalog | Licensed | Wait | Fail:
    """Group mode (LICENSING_MODE=group): each SKU is granted by its licensing group, and
    `licensed` only once Entra shows it Active (or ActiveWithError) on the user.

    Per SKU: held already (any Active state, or assigned directly) → done; its group's
    state is Error → the contract's code (CountViolation: blocked no_seats, and once
    subscribedSkus shows a free seat, ask Entra to reprocess); not a member yet → add;
    added but not processed yet → wait. A usage location is written when one is known and
    allowed; without one the tenant's applies (group licensing inherits it)."""
    outcomes: list[LicenseOutcome] = []
    to_add: list[tuple[str, str]] = []
    counting: list[Sku] = []
    processing = False
    for wanted in state.licenses:
        sku = catalog.find(wanted.sku_part_number)
        if sku is None or sku.applies_to.lower() != "user" or sku.capability_status != "Enabled":
            if not refreshed:
                return RefreshCatalog()
            return Fail(
                Reason(
                    FailureCode.UNKNOWN_SKU,
                    f"the tenant has no subscription with skuPartNumber {wanted.sku_part_number}"
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
        states = [s for s in user.license_states if s.sku_id == sku.id.lower()]
        if sku.id.lower() in user.assigned_sku_ids or any(s.active for s in states):
            status = (
                LicenseStatus.ASSIGNED
                if sku.id.lower() in state.groups_joined
                else LicenseStatus.ALREADY_ASSIGNED
            )
            outcomes.append(LicenseOutcome(sku.part_number, sku.id, status))
            continue
        ours = next((s for s in states if s.assigned_by_group == group.lower()), None)
        if ours is not None and ours.state in ("Error", "Disabled"):
            if ours.error == "CountViolation":
                counting.append(sku)
                continue
            code = _GROUP_ERRORS.get(ours.error or "", FailureCode.GRAPH_REJECTED)
            return Fail(
                Reason(
                    code,
                    f"Entra could not license {sku.part_number} through group {group}: "
                    f"state {ours.state}, error {ours.error or 'none'}",
                ),
                {
                    "graphError": {
                        "state": ours.state,
                        "error": ours.error,
                        "skuId": sku.id,
                        "group": group,
                    }
                },
            )
        if sku.id.lower() in state.groups_joined:
            processing = True
        else:
            to_add.append((sku.id.lower(), group))
    if counting:
        short = ", ".join(s.part_number for s in counting)
        if all(s.free_units <= 0 for s in counting) and not refreshed:
            return RefreshCatalog()  # seats may have been bought since the catalog was read
        if any(s.free_units > 0 for s in counting) and not to_add:
            return GroupPlan(None, False, (), reprocess=True)
        return after_no_seats(state, f"no free seat for {short} (CountViolation)", now, backoff)
    location = user.usage_location
    write = False
    if to_add and not location:
        location = state.request.usage_location or default_location
        write = location is not None and may_write_location
    if to_add or write:
        return GroupPlan(location if write else None, write, tuple(to_add), reprocess=False)
    if processing:
        return _processing(state, now, backoff, recheck)
    return Licensed(user, LicensePlan(user.usage_location, False, (), tuple(outcomes), ()))


def after_group_writes(
    state: PendingState, plan: GroupPlan, now: datetime, backoff: Backoff, *, recheck: timedelta
) -> Wait | Fail:
    """The memberships are added (or a reprocess asked): Entra processes group licenses in
    seconds to minutes; look again soon."""
    joined = state.groups_joined | {sku for sku, _ in plan.add_to_groups}
    written = state.usage_location_written or plan.write_usage_location
    return _processing(
        replace(state, groups_joined=frozenset(joined), usage_location_written=written),
        now,
        backoff,
        recheck,
    )


def _processing(
    state: PendingState, now: datetime, backoff: Backoff, recheck: timedelta
) -> Wait | Fail:
    if now >= state.deadline:
        return at_deadline(
            replace(
                state,
                last_error=LastError(
                    GraphErrorKind.UNAVAILABLE,
                    GraphCall.LOOKUP,
                    0,
                    "LicenseProcessingPending",
                    "Entra had not finished processing the group licenses",
                ),
            )
        )
    return Wait(state, min(now + min(recheck, backoff.delay(1)), state.deadline))
