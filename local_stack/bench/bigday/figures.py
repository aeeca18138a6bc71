"""The big-day figures, from what a run observed (pure: no stack needed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from local_stack.stack import TERMINAL

if TYPE_CHECKING:
    from local_stack.bench.bigday.run import BigDay

WRITE_METHODS: Final = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def request_id(n: int) -> str:
    return f"BIGDAY-{n:06d}"


def terminal_events(events: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """requestId -> its first terminal event."""
    out: dict[str, Mapping[str, Any]] = {}
    for event in events:
        if str(event.get("type", "")).rsplit(".", 1)[-1] in TERMINAL:
            out.setdefault(str(event.get("subject")), event)
    return out


def graph_figures(log: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Calls by kind and answer, from the emulator's request log ($batch items counted one
    by one, as Graph charges them; the envelope apart)."""
    out: Counter[str] = Counter()
    for entry in log:
        if str(entry["path"]).endswith("/$batch") and not entry.get("batchItem"):
            out["batch_envelopes"] += 1
            continue
        kind = "writes" if entry["method"] in WRITE_METHODS else "reads"
        status = entry.get("status") or 0
        out[f"{kind}_sent"] += 1
        if status == 429:
            out[f"{kind}_429"] += 1
        elif 200 <= status < 300:
            out[f"{kind}_ok"] += 1
        else:
            out[f"{kind}_other"] += 1
    return dict(out)


def event_seconds(event: Mapping[str, Any], t0: datetime) -> float:
    moment = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
    return (moment - t0).total_seconds()


def summarize(
    config: BigDay,
    t0: datetime,
    events: Sequence[Mapping[str, Any]],
    log: Sequence[Mapping[str, Any]],
    storage: Counter[str],
    **observed: Any,
) -> dict[str, Any]:
    """The run's figures (pure: from what was observed)."""
    terminal = terminal_events(events)
    mine = [terminal[request_id(n)] for n in range(config.users) if request_id(n) in terminal]
    times = sorted(event_seconds(e, t0) for e in mine)
    graph = graph_figures(log)
    writes = graph.get("writes_ok", 0)
    throttled = graph.get("writes_429", 0) + graph.get("reads_429", 0)
    last = times[-1] if times else None
    return {
        "processes": config.processes,
        "users": config.users,
        "time_scale": config.scale.factor,
        "throttle_model": config.model,
        "units_per_10s": config.units_per_10s,
        "finished": observed["finished"],
        "writes": writes,
        "floor_seconds": config.floor_seconds,
        "seconds_to_last_terminal": last,
        "ratio_to_floor": last / config.floor_seconds if last is not None else None,
        # Graph refused nothing: the machine (CPU, storage), not Graph's budget, set the pace.
        "bound_by": "Graph" if throttled else "machine",
        "seconds_to_half": times[len(times) // 2] if times else None,
        "graph": graph,
        "throttled_total": throttled,
        "throttled_per_write": throttled / writes if writes else None,
        **outcome_figures(mine, events, config.users),
        "poison_queue": observed["poison"],
        "pending_queue_after": observed["pending"],
        **storage_figures(storage, config.users),
        "peak_rss_mib": observed["rss"],
        **cpu_figures(observed.get("cpu") or {}, config.users),
    }


def outcome_figures(
    mine: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]], users: int
) -> dict[str, Any]:
    """Outcomes of the run's requests (failure and rejection codes apart), and whether any
    request got no terminal event, or more than one."""
    codes = Counter(
        str((e.get("data") or {}).get("reason", {}).get("code", ""))
        for e in mine
        if not str(e["type"]).endswith("licensed")
    )
    return {
        "outcomes": dict(Counter(str(e["type"]).rsplit(".", 1)[-1] for e in mine)),
        "failure_codes": {k: v for k, v in codes.items() if k},
        "without_terminal_event": users - len(mine),
        "terminal_events_seen": sum(
            1 for e in events if str(e.get("type", "")).rsplit(".", 1)[-1] in TERMINAL
        ),
        "events_seen": len(events),
    }


def storage_figures(storage: Counter[str], users: int) -> dict[str, Any]:
    """Storage requests the hosts sent (queues and tables), in all, per user and by kind."""
    total = sum(v for v in storage.values() if v > 0)
    # The shared pacing record's reads and writes (its one creation is an insert like the
    # ledger's, not told apart).
    pacing = sum(v for k, v in storage.items() if "(~pacing)" in k and v > 0)
    return {
        "storage_requests": total,
        "storage_per_user": total / users if storage else None,
        "storage_by_kind": {k: v for k, v in storage.most_common() if v > 0},
        "pacing_requests": pacing,
        "pacing_per_user": pacing / users if storage else None,
    }


def cpu_figures(cpu: Mapping[str, Sequence[float | None]], users: int) -> dict[str, Any]:
    """CPU time the hosts spent from t0 on: per host, and the queue-trigger hosts' per
    user (what sizes an instance, whatever else the machine was running)."""
    queue = [v for v in cpu.get("queue", ()) if v is not None]
    return {
        "cpu_seconds": {role: list(values) for role, values in cpu.items()},
        "cpu_ms_per_user": 1000 * sum(queue) / users if queue and users else None,
    }
