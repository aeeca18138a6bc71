"""Admission: what a valid message leaves to the settings and the clock (licenses, the
deadline, the start window), and the wait before the start window opens."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final

from shared.decisions.outcomes import Wait
from shared.decisions.rules import Rules
from shared.domain.codes import Announcement
from shared.domain.errors import FieldError, InvalidRequest
from shared.domain.requests import OnboardingRequest
from shared.domain.state import PendingState
from shared.domain.times import format_time

MAX_START_AHEAD: Final = timedelta(days=400)
# Azure Storage hides a message for at most 7 days: a longer wait is a chain of hops.
MAX_HOP: Final = timedelta(days=7) - timedelta(minutes=1)


def admit(request: OnboardingRequest, now: datetime, rules: Rules) -> PendingState:
    """Resolve what the message left to settings and the clock; InvalidRequest when
    nothing says which licenses to assign, or the dates cannot work.

    The start window opens at `startDate - lead_time`; nothing is looked up or assigned
    before it (a date already past behaves as if absent). The default deadline counts from
    the start of work: receipt, or the window if it is later."""
    licenses = request.licenses or rules.default_licenses
    window = _start_window(request, now, rules)
    errors = _license_problems(request, rules, any_license=bool(licenses))
    errors += _date_problems(request, now, window)
    if errors:
        raise InvalidRequest(errors, request_id=request.request_id)
    deadline = request.sync_deadline or max(now, window or now) + rules.sync_timeout
    return PendingState(
        request=replace(request, licenses=licenses, sync_deadline=deadline),
        received_at=now,
        not_before=window,
    )


def _start_window(request: OnboardingRequest, now: datetime, rules: Rules) -> datetime | None:
    """`startDate - lead_time` when it is still ahead (and the date is not too far)."""
    start = request.start_date
    if start is None or start > now + MAX_START_AHEAD or start - rules.lead_time <= now:
        return None
    return start - rules.lead_time


def _license_problems(
    request: OnboardingRequest, rules: Rules, *, any_license: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    if not any_license:
        errors.append(
            FieldError(
                "licenses", "is required: the message has none and DEFAULT_LICENSES is not set"
            )
        )
    if rules.group_mode:  # the group's license holds the disabled plans
        errors += [
            FieldError(
                f"licenses[{n}].disabledPlans",
                "is not allowed with LICENSING_MODE=group: the licensing group decides them",
            )
            for n, lic in enumerate(request.licenses or ())
            if lic.disabled_plans
        ]
    if request.teams is not None and not rules.teams_phone:
        errors.append(
            FieldError(
                "teams",
                "is not accepted here: this deployment does not run the Teams Phone step "
                "(TEAMS_PHONE is not true)",
            )
        )
    return errors


def _date_problems(
    request: OnboardingRequest, now: datetime, window: datetime | None
) -> list[FieldError]:
    if request.start_date is not None and request.start_date > now + MAX_START_AHEAD:
        return [FieldError("startDate", "must be at most 400 days ahead")]
    if window is not None and request.sync_deadline is not None and request.sync_deadline < window:
        return [
            FieldError(
                "syncDeadline",
                f"is before the start window {format_time(window)} (startDate minus "
                "LICENSE_LEAD_TIME): nothing would be done before it",
            )
        ]
    return []


def before_check(state: PendingState, now: datetime) -> Wait | None:
    """Before the start window: wait for it without any Graph call (`scheduled`, once), in
    hops of at most 7 days; None when the window is open."""
    if state.not_before is None or now >= state.not_before:
        return None
    announce = None if state.scheduled_sent else Announcement.SCHEDULED
    next_check = min(state.not_before, now + MAX_HOP)
    return Wait(replace(state, scheduled_sent=True), next_check, announce=announce)
