"""One check of a request, from Graph's lookup to its outcome: ask the decisions what the
lookup means, force a sync or license the user (plan against the SKU catalog, then write),
and judge every Graph failure on the way. Fetch, ask the decisions, write: the outcome is
carried out by `shared.service.settling`."""

from __future__ import annotations

import logging
from datetime import datetime

from shared.decisions import (
    Decision,
    Fail,
    ForceSync,
    GroupPlan,
    License,
    Licensed,
    LicensePlan,
    Outcome,
    RefreshCatalog,
    Wait,
    after_forced_sync,
    after_graph_error,
    after_group_writes,
    after_lookup,
    after_write_error,
    phone_system_missing,
    plan_group_licensing,
    plan_licensing,
)
from shared.domain.errors import GraphError, GraphErrorKind
from shared.domain.personal import redact, values_of
from shared.domain.state import PendingState
from shared.domain.tenant import DirectoryUser, Lookup, LookupFailed
from shared.service.context import Context
from shared.service.phone import after_licensed
from shared.service.reporting import log_access_denied

log = logging.getLogger("user_onboarding")


async def check(ctx: Context, state: PendingState, lookup: Lookup, now: datetime) -> Outcome:
    """What a lookup of the request's user leads to, once every step it asks for is done."""
    if isinstance(lookup, LookupFailed):
        _log_if_denied(state, lookup.error)
    decision: Decision = after_lookup(state, lookup, now, ctx.rules)
    if isinstance(decision, ForceSync):
        return await _force_sync(ctx, decision.state)
    if isinstance(decision, License):
        outcome = await _license(ctx, decision.state, decision.user)
        if isinstance(outcome, Licensed):  # (v1.2) then, with `teams`, the Teams Phone step
            return await after_licensed(ctx, decision.state, outcome)
        return outcome
    return decision


async def _force_sync(ctx: Context, state: PendingState) -> Wait:
    assert ctx.cloud_sync is not None
    assert state.request.distinguished_name is not None
    result = await ctx.cloud_sync.force(state.request.distinguished_name)
    log.info(
        "forced sync for request %s: %s (%s)",
        state.request.request_id,
        result.status,
        redact(result.message, values_of(state.request)),
        extra={"requestId": state.request.request_id, "forcedSync": str(result.status)},
    )
    return after_forced_sync(state, result, ctx.clock.now(), ctx.rules)


async def _license(ctx: Context, state: PendingState, user: DirectoryUser) -> Outcome:
    """Plan against the catalog, then write; a stale catalog is read again once."""
    refreshed = False
    while True:
        step: Outcome | RefreshCatalog
        match await _plan(ctx, state, user, refreshed=refreshed):
            case LicensePlan() as plan:
                step = await _write(ctx, state, user, plan, refreshed=refreshed)
            case GroupPlan() as plan:
                step = await _join_groups(ctx, state, user, plan, refreshed=refreshed)
            case other:
                step = other
        if not isinstance(step, RefreshCatalog):
            return step
        refreshed = True


async def _plan(
    ctx: Context, state: PendingState, user: DirectoryUser, *, refreshed: bool
) -> LicensePlan | GroupPlan | RefreshCatalog | Licensed | Wait | Fail:
    try:
        catalog = await ctx.skus.get(refresh=refreshed)
    except GraphError as exc:
        _log_if_denied(state, exc)
        return after_graph_error(state, exc, ctx.clock.now(), ctx.rules)
    plan = plan_group_licensing if ctx.rules.group_mode else plan_licensing
    planned = plan(state, user, catalog, ctx.clock.now(), ctx.rules, refreshed=refreshed)
    if isinstance(planned, LicensePlan | GroupPlan | Licensed):  # before any write
        return phone_system_missing(state, user, catalog) or planned
    return planned


async def _write(
    ctx: Context, state: PendingState, user: DirectoryUser, plan: LicensePlan, *, refreshed: bool
) -> Licensed | RefreshCatalog | Wait | Fail:
    wrote = False
    try:
        wrote = await _usage_location_first(ctx, user, plan)
        if plan.to_assign:
            await ctx.directory.assign_licenses(
                user.id,
                plan.to_assign,
                usage_location_written=wrote or state.usage_location_written,
            )
    except GraphError as exc:
        return _write_failed(ctx, state, user, exc, wrote=wrote, refreshed=refreshed)
    return Licensed(user, plan)


async def _join_groups(
    ctx: Context, state: PendingState, user: DirectoryUser, plan: GroupPlan, *, refreshed: bool
) -> Wait | Fail | RefreshCatalog:
    wrote = False
    try:
        wrote = await _usage_location_first(ctx, user, plan)
        for _, group in plan.add_to_groups:
            await ctx.directory.add_group_member(group, user.id)
        if plan.reprocess:
            await ctx.directory.reprocess_licenses(user.id)
    except GraphError as exc:
        return _write_failed(ctx, state, user, exc, wrote=wrote, refreshed=refreshed)
    return after_group_writes(state, plan, ctx.clock.now(), ctx.rules)


async def _usage_location_first(
    ctx: Context, user: DirectoryUser, plan: LicensePlan | GroupPlan
) -> bool:
    """Write the usage location the plan needs before any license; True when written."""
    if not plan.write_usage_location:
        return False
    assert plan.usage_location is not None
    await ctx.directory.set_usage_location(user.id, plan.usage_location)
    return True


def _write_failed(
    ctx: Context,
    state: PendingState,
    user: DirectoryUser,
    error: GraphError,
    *,
    wrote: bool,
    refreshed: bool,
) -> Wait | Fail | RefreshCatalog:
    ctx.skus.forget_if_contradicted(error)
    _log_if_denied(state, error)
    return after_write_error(
        state,
        error,
        ctx.clock.now(),
        ctx.rules,
        user=user,
        wrote_usage_location=wrote,
        refreshed=refreshed,
    )


def _log_if_denied(state: PendingState, error: GraphError) -> None:
    if error.kind == GraphErrorKind.ACCESS_DENIED:
        log_access_denied(state.request.request_id, error)
