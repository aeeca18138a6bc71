"""1. Cold start: fresh interpreters import the app and license a user, with and without
Application Insights, and with msgraph's typed models (`coldstart_child` is the process)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from local_stack.bench.common import (
    TELEMETRY_SETTINGS,
    directory,
    fresh_state,
    graph_calls,
    median,
    mib,
    run_child,
    table,
    upns,
)
from local_stack.stack import LocalStack


def cold_start(runs: int) -> dict[str, Any]:
    """`runs` fresh interpreters per path; each licenses a user of its own."""
    modes = ("app", "telemetry", "typed")
    names = {mode: upns(f"cold.{mode}", runs) for mode in modes}
    every = [upn for group in names.values() for upn in group]
    samples: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    with LocalStack(fresh_state("coldstart"), directory(every, synced=True)) as stack:
        assert stack.graph is not None
        stack.graph.set_throttle(0, 0)
        env = stack.app_environment()
        for n in range(runs):
            for mode in modes:  # interleaved: drift hits every path alike
                stack.graph.clear_requests()
                sample, wall = run_child(
                    ["local_stack.bench.coldstart_child", mode, names[mode][n]],
                    {**env, **TELEMETRY_SETTINGS} if mode == "telemetry" else env,
                    timeout=120,
                    what=f"cold start ({mode})",
                )
                sample["process_wall_seconds"] = wall
                sample["graph_requests"] = graph_calls(stack.graph.requests())["total"]
                samples[mode].append(sample)
    return {mode: summarize_cold(group) for mode, group in samples.items()}


def summarize_cold(group: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    def med(point: str, key: str) -> float:
        return median([float(s[point][key]) for s in group])

    out: dict[str, Any] = {
        "runs": len(group),
        "outcomes": sorted({str(s["outcome"]) for s in group}),
        "import_seconds": med("imported", "seconds"),
        "import_max_rss_mib": mib(med("imported", "max_rss_kib")),
        "import_modules": med("imported", "modules"),
        "import_model_modules": med("imported", "model_modules"),
        "first_request_seconds": med("first_request", "seconds"),
        "first_request_max_rss_mib": mib(med("first_request", "max_rss_kib")),
        "first_request_modules": med("first_request", "modules"),
        "first_request_model_modules": med("first_request", "model_modules"),
        "process_wall_seconds": median([float(s["process_wall_seconds"]) for s in group]),
        "graph_requests": median([float(s["graph_requests"]) for s in group]),
        "first_request_seconds_all": [round(s["first_request"]["seconds"], 3) for s in group],
    }
    if group[0].get("telemetry_ready"):
        out["telemetry_ready_seconds"] = med("telemetry_ready", "seconds")
        out["telemetry_ready_max_rss_mib"] = mib(med("telemetry_ready", "max_rss_kib"))
        out["telemetry_ready_modules"] = med("telemetry_ready", "modules")
    if group[0].get("first_user"):
        out["first_user_seconds"] = med("first_user", "seconds")
        out["first_user_model_modules"] = med("first_user", "model_modules")
    return out


def show_cold(result: Mapping[str, Any]) -> None:
    modes = [m for m in ("app", "telemetry", "typed") if m in result]
    heads = {"app": "app (raw JSON)", "telemetry": "app + App Insights", "typed": "typed models"}

    def row(label: str, cell: Any) -> tuple[str, ...]:
        return (label, *(cell(result[m]) for m in modes))

    rows = [
        ("median of runs", *(heads[m] for m in modes)),
        row("import function_app (s)", lambda r: f"{r['import_seconds']:.2f}"),
        row("  peak RSS after import (MiB)", lambda r: f"{r['import_max_rss_mib']:.0f}"),
        row(
            "  modules / msgraph models",
            lambda r: f"{r['import_modules']:.0f} / {r['import_model_modules']:.0f}",
        ),
        row("first request done (s)", lambda r: f"{r['first_request_seconds']:.2f}"),
        row("  peak RSS (MiB)", lambda r: f"{r['first_request_max_rss_mib']:.0f}"),
        row(
            "  modules / msgraph models",
            lambda r: f"{r['first_request_modules']:.0f} / {r['first_request_model_modules']:.0f}",
        ),
        row("  Graph requests", lambda r: f"{r['graph_requests']:.0f}"),
        row(
            "exporter ready (s) / peak RSS (MiB)",
            lambda r: (
                f"{r['telemetry_ready_seconds']:.2f} / {r['telemetry_ready_max_rss_mib']:.0f}"
                if "telemetry_ready_seconds" in r
                else "-"
            ),
        ),
        row("process wall, spawn to exit (s)", lambda r: f"{r['process_wall_seconds']:.2f}"),
    ]
    table(f"1. Cold start ({result['app']['runs']} fresh interpreters per path)", rows)
    for mode in modes:
        print(f"  {mode}: first request per run {result[mode]['first_request_seconds_all']}")
    typed = result.get("typed")
    if typed and "first_user_seconds" in typed:
        print(
            f"  typed: first user fetched at {typed['first_user_seconds']:.2f} s with "
            f"{typed['first_user_model_modules']:.0f} msgraph model modules loaded"
        )
