"""Pure decisions: given a request's state, what Graph said and the time, what happens
next. No I/O here; `shared.service.onboarding` carries the decisions out, one way: fetch, ask the
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
                gets when its request is known already (`redelivery`)
    giving_up   invalid and poisoned messages (`rejection`, `given_up`, `poison_hold`)
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
    Outcome,
    Park,
    RefreshCatalog,
    Republish,
    Wait,
)
from shared.decisions.pacing import Pacing, Turns, after_throttled, take_turns
from shared.decisions.rules import Backoff, Rules
from shared.decisions.settling import is_poisoned, redelivery, resume, settle
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
    "Outcome",
    "Pacing",
    "Park",
    "RefreshCatalog",
    "Republish",
    "Rules",
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
    "after_throttled",
    "after_write_error",
    "at_deadline",
    "before_check",
    "given_up",
    "is_poisoned",
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
