"""The Teams Phone step (contract v1.2, "Teams Phone"), once every license is on the user:
read Teams, ask the decisions (`shared.decisions.teams`), read the number, order it, follow
the order. Fetch, ask the decisions, write: the outcome is carried out by
`shared.service.settling` like any other (the intent to order is one of those outcomes: a
`Wait` written to the pending queue before the order is ever sent).
"""

from __future__ import annotations

import logging
from datetime import datetime

from shared.decisions import (
    CheckNumber,
    Fail,
    Licensed,
    NumberAssigned,
    OrderNumber,
    Outcome,
    TeamsRead,
    TeamsStep,
    Wait,
    after_number,
    after_operation,
    after_order,
    after_order_error,
    after_readiness,
    after_teams_error,
    begin,
    next_read,
    operation_lost,
)
from shared.domain.errors import GraphError, GraphErrorKind
from shared.domain.state import PendingState
from shared.domain.teams_tenant import TeamsReading, TeamsUnread
from shared.service.context import Context
from shared.service.ports import TeamsPhone
from shared.service.reporting import log_access_denied

log = logging.getLogger("user_onboarding")


async def after_licensed(ctx: Context, state: PendingState, licensed: Licensed) -> Outcome:
    """Every license is on: done, or (with `teams`) the Teams Phone step begins now and
    looks at Teams at once (a user who already had Phone System may be ready)."""
    if state.request.teams is None:
        return licensed
    plan = licensed.plan
    begun = begin(
        state, licensed.user, plan.outcomes, plan.usage_location, ctx.clock.now(), ctx.rules
    )
    return await recheck(ctx, begun)


async def recheck(
    ctx: Context, state: PendingState, reading: TeamsReading | None = None
) -> Outcome:
    """One check of a request in the Teams Phone step. `reading`: the user's configuration,
    when the sweep has read it already (in a `$batch` with others)."""
    step: TeamsStep
    match next_read(state):
        case TeamsRead.CONFIGURATION:
            if reading is None:
                assert state.teams is not None
                (reading,) = await _teams(ctx).configurations([state.teams.user_id])
            if isinstance(reading, TeamsUnread):
                _log_if_denied(state, reading.error)
            step = after_readiness(state, reading, ctx.clock.now(), ctx.rules)
        case TeamsRead.NUMBER:
            step = await _read_number(ctx, state)
        case TeamsRead.OPERATION:
            step = await _follow(ctx, state)
    while True:
        match step:
            case CheckNumber(state=ready):
                step = await _read_number(ctx, ready)
            case OrderNumber(state=intended):
                step = await _order(ctx, intended)
            case Wait() | Fail() | NumberAssigned():
                return step


async def _read_number(ctx: Context, state: PendingState) -> TeamsStep:
    assert state.request.teams is not None
    try:
        number = await _teams(ctx).number(state.request.teams.phone_number)
    except GraphError as exc:
        return _trouble(ctx, state, exc)
    return after_number(state, number, ctx.clock.now(), ctx.rules)


async def _order(ctx: Context, state: PendingState) -> TeamsStep:
    """The intent is on the pending queue already: send the order."""
    teams, asked = state.teams, state.request.teams
    assert teams is not None
    assert asked is not None
    try:
        operation_id = await _teams(ctx).assign_number(teams.user_id, asked)
    except GraphError as exc:
        _log_if_denied(state, exc)
        return after_order_error(state, exc, ctx.clock.now(), ctx.rules)
    log.info(
        "request %s: number ordered from Teams (operation %s)",
        state.request.request_id,
        operation_id or "not given",
        extra={"requestId": state.request.request_id, "teamsOperation": operation_id},
    )
    return after_order(state, operation_id, ctx.clock.now(), ctx.rules)


async def _follow(ctx: Context, state: PendingState) -> TeamsStep:
    teams = state.teams
    assert teams is not None
    assert teams.order is not None
    assert teams.order.operation_id
    try:
        operation = await _teams(ctx).operation(teams.order.operation_id)
    except GraphError as exc:
        if exc.kind == GraphErrorKind.NOT_FOUND:  # the number says where the order stands
            return await _read_number(ctx, operation_lost(state))
        return _trouble(ctx, state, exc)
    return after_operation(state, operation, ctx.clock.now(), ctx.rules)


def _trouble(ctx: Context, state: PendingState, error: GraphError) -> TeamsStep:
    _log_if_denied(state, error)
    now: datetime = ctx.clock.now()
    return after_teams_error(state, error, now, ctx.rules)


def _log_if_denied(state: PendingState, error: GraphError) -> None:
    if error.kind == GraphErrorKind.ACCESS_DENIED:
        log_access_denied(state.request.request_id, error)


def _teams(ctx: Context) -> TeamsPhone:
    if ctx.teams is None:
        raise RuntimeError("a request is in the Teams Phone step, but no Teams port is wired")
    return ctx.teams
