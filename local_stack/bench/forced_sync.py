"""5. Users not in Entra yet: a forced sync (provisionOnDemand) against the regular cycle."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from local_stack.bench.common import (
    HOST_SETTINGS,
    NO_THROTTLE,
    directory,
    event_time,
    fresh_state,
    graph_calls,
    median,
    request,
    table,
    upns,
    wait_for_host,
)
from local_stack.stack import LocalStack

SYNC_JOB = {
    "servicePrincipalId": "00d41b14-7958-45ad-9d75-d52fa29e02a1",
    "jobId": "AD2AADProvisioning.fd1c9b9e8077402c8bc03a7186c8f976",
    "ruleId": "6c409270-f78a-4bc6-af23-7cf3ab6482fe",
    "templateId": "AD2AADProvisioning",
}

SYNC_CYCLE_SECONDS = 30

# The committed sample's recheck delays (make run's), so the regular path is bound by the
# cycle rather than by the backoff; the forced path rechecks min(30 s, initial delay) later.
FORCED_SYNC_SETTINGS = {
    **HOST_SETTINGS,
    "RECHECK_INITIAL_DELAY": "PT2S",
    "RECHECK_MAX_DELAY": "PT4S",
    "CLOUD_SYNC_JOB": f"{SYNC_JOB['servicePrincipalId']}/{SYNC_JOB['jobId']}",
}


def distinguished_name(upn: str) -> str:
    return f"CN={upn.split('@')[0]},OU=Staff,DC=contoso,DC=com"


def forced_sync(count: int, spacing: float = 3.0, timeout: float = 120.0) -> dict[str, Any]:
    """`count` users still in AD only (not in Entra), one request every `spacing` seconds,
    alternately with and without `onPremisesDistinguishedName`, so both kinds arrive at
    every phase of the regular cycle. Measures each request from its post to the `time`
    of its terminal event."""
    users = upns("forced", count)
    tenant = directory([], synced=False)
    # Each account appears in AD (awaiting sync) just before its request is posted, as when
    # HR posts right after the account is created: created all at the start, the later ones
    # would be synced by the first cycle before their requests arrived.
    accounts = [
        {
            "userPrincipalName": upn,
            "displayName": upn.split("@")[0],
            "usageLocation": "FR",
            "awaitingSync": True,
            "onPremisesDistinguishedName": distinguished_name(upn),
        }
        for upn in users
    ]
    tenant["synchronization"] = {
        "jobs": [SYNC_JOB],
        "cycleSeconds": SYNC_CYCLE_SECONDS,
        "onDemandDelaySeconds": 3,
    }
    with LocalStack(
        fresh_state("forcedsync"),
        tenant,
        settings=FORCED_SYNC_SETTINGS,
        emulator_options=NO_THROTTLE,
    ) as stack:
        assert stack.graph is not None
        stack.start_host()
        wait_for_host(stack)
        stack.graph.clear_requests()
        posted: dict[str, tuple[bool, datetime]] = {}
        for n, upn in enumerate(users):
            forced = n % 2 == 0
            body = request(f"FORCED-{n:05d}", upn)
            if forced:
                body["onPremisesDistinguishedName"] = distinguished_name(upn)
            stack.graph.add_user(accounts[n])
            posted[body["requestId"]] = (forced, datetime.now().astimezone())
            stack.post(body)
            stack.drain_events()
            time.sleep(spacing)
        terminal = stack.wait_for_terminal(posted, timeout)
        seconds: dict[bool, list[float]] = {True: [], False: []}
        outcomes: Counter[str] = Counter()
        for request_id, (forced, at) in posted.items():
            event = terminal.get(request_id)
            if event is None:
                outcomes["no terminal event"] += 1
                continue
            outcomes[event["type"].rsplit(".", 1)[-1]] += 1
            seconds[forced].append((event_time(event) - at).total_seconds())
        calls = stack.graph.requests()
        on_demand = [e for e in calls if e["path"].endswith("/provisionOnDemand")]
        return {
            "requests": count,
            "spacing_seconds": spacing,
            "cycle_seconds": SYNC_CYCLE_SECONDS,
            "outcomes": dict(outcomes),
            "forced": summarize_latency(seconds[True]),
            "regular": summarize_latency(seconds[False]),
            "provision_on_demand_calls": len(on_demand),
            "provision_on_demand_refused": sum(1 for e in on_demand if e["status"] >= 400),
            "graph": dict(graph_calls(calls)),
            "poison": stack.count("user-onboard-poison"),
        }


def summarize_latency(values: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "median": median(ordered) if ordered else None,
        "min": ordered[0] if ordered else None,
        "max": ordered[-1] if ordered else None,
        "all": [round(v, 1) for v in ordered],
    }


def show_forced(result: Mapping[str, Any]) -> None:
    def cell(group: Mapping[str, Any], key: str) -> str:
        value = group[key]
        return "-" if value is None else f"{value:.1f}"

    forced, regular = result["forced"], result["regular"]
    rows = [
        ("post to terminal event (s)", "with DN (forced sync)", "without DN (regular cycle)"),
        ("requests", str(forced["count"]), str(regular["count"])),
        ("median", cell(forced, "median"), cell(regular, "median")),
        (
            "min / max",
            f"{cell(forced, 'min')} / {cell(forced, 'max')}",
            f"{cell(regular, 'min')} / {cell(regular, 'max')}",
        ),
    ]
    table(
        f"5. Users not in Entra yet, one request every {result['spacing_seconds']:.0f} s, "
        f"regular sync cycle {result['cycle_seconds']} s",
        rows,
    )
    print(
        f"  outcomes {dict(result['outcomes'])}; provisionOnDemand calls "
        f"{result['provision_on_demand_calls']} ({result['provision_on_demand_refused']} "
        f"refused); poison {result['poison']}"
    )
    print(f"  forced: {forced['all']}\n  regular: {regular['all']}")
