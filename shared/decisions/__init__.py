"""Pure decisions: given a request's state, what Graph said and the time, what happens
next. No I/O here; `shared.service` carries the decisions out, one way: fetch, ask the
decisions, write, publish, acknowledge. The policy numbers are one `Rules` object.

A request's life, one module per question:

    admission   admitted (`admit`); before its start window, `before_check` waits
    checks      looked up (`after_lookup`): license, wait for the sync (maybe force one), fail
    direct      licensing planned against the SKU catalog (`plan_licensing`), or
    groups      in group mode, through licensing groups (`plan_group_licensing`)
    trouble     a Graph failure at any step (`after_graph_error`), no seats, the deadline
    pacing      the app's turns at Graph, shared by its instances (`take_turns`,
                `after_throttled`)
    settling    the outcome turned into what to publish and keep (`settle`); what a message
                gets when its request is known already (`redelivery`), and whether it may
                carry on a request posted over HTTP or poisoned (`awaiting_carrier`)
    giving_up   invalid and poisoned messages (`rejection`, `given_up`, `poison_hold`)
    teams       (v1.2) the Teams Phone step: prerequisite, readiness, the number, the order
                (`teams_waiting`: its waits, blocks and deadline)
    outcomes    the answers: Wait, Fail, License, Licensed, Park, Conclude...
"""

from shared.decisions.admission import MAX_HOP, MAX_START_AHEAD, admit, before_check
from shared.decisions.checks import after_forced_sync, after_lookup
from shared.decisions.direct import plan_licenses, plan_licensing
from shared.decisions.giving_up import (
    MAX_ORIGINAL_CHARS,
    after_giving_up,
    given_up,
    poison_hold,
    rejection,
)
from shared.decisions.groups import after_group_writes, plan_group_licensing
from shared.decisions.outcomes import (
    CheckNumber,
    Conclude,
    Decision,
    Fail,
    ForceSync,
    GroupPlan,
    Hold,
    Ignore,
    License,
    Licensed,
    LicensePlan,
    NumberAssigned,
    OrderNumber,
    Outcome,
    Park,
    RefreshCatalog,
    Republish,
    TakeOver,
    TeamsStep,
    Wait,
)
from shared.decisions.pacing import Pacing, Turns, after_throttled, take_turns
from shared.decisions.rules import Backoff, Rules
from shared.decisions.settling import (
    Carrier,
    awaiting_carrier,
    is_poisoned,
    redelivery,
    resume,
    settle,
)
from shared.decisions.teams import (
    TeamsRead,
    after_number,
    after_operation,
    after_order,
    after_order_error,
    after_readiness,
    begin,
    next_read,
    operation_lost,
    phone_system_missing,
)
from shared.decisions.teams_waiting import after_teams_error
from shared.decisions.trouble import (
    access_denied_message,
    after_graph_error,
    after_no_seats,
    after_write_error,
    at_deadline,
)

__all__ = [
    "MAX_HOP",
    "MAX_ORIGINAL_CHARS",
    "MAX_START_AHEAD",
    "Backoff",
    "Carrier",
    "CheckNumber",
    "Conclude",
    "Decision",
    "Fail",
    "ForceSync",
    "GroupPlan",
    "Hold",
    "Ignore",
    "License",
    "LicensePlan",
    "Licensed",
    "NumberAssigned",
    "OrderNumber",
    "Outcome",
    "Pacing",
    "Park",
    "RefreshCatalog",
    "Republish",
    "Rules",
    "TakeOver",
    "TeamsRead",
    "TeamsStep",
    "Turns",
    "Wait",
    "access_denied_message",
    "admit",
    "after_forced_sync",
    "after_giving_up",
    "after_graph_error",
    "after_group_writes",
    "after_lookup",
    "after_no_seats",
    "after_number",
    "after_operation",
    "after_order",
    "after_order_error",
    "after_readiness",
    "after_teams_error",
    "after_throttled",
    "after_write_error",
    "at_deadline",
    "awaiting_carrier",
    "before_check",
    "begin",
    "given_up",
    "is_poisoned",
    "next_read",
    "operation_lost",
    "phone_system_missing",
    "plan_group_licensing",
    "plan_licenses",
    "plan_licensing",
    "poison_hold",
    "redelivery",
    "rejection",
    "resume",
    "settle",
    "take_turns",
]
