"""The big-day benchmark's app folder: the repo's app, with the time constants that are
fixed in code divided by the time scale.

As with the stress suite's shim (`local_stack.stress.crashpoints`), the development host
runs a small folder holding the repo's `host.json` and a `function_app.py` that loads the
repo's `function_app.py` under another module name and installs the process's service
with `bootstrap.use(bootstrap.build_service(...))`. The only differences from production
wiring: `Policy`'s time bounds and `GraphSender`'s `max_inline_wait` divided by
`BIGDAY_TIME_SCALE`, and the shared pacing's rate multiplied by it (see `scale.SCALED`).
Nothing in `shared/` is changed or wrapped.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from local_stack.function_app_module import import_function_app

REPO: Final = Path(__file__).resolve().parents[3]

SHIM: Final = '''"""Big-day benchmark shim (written by local_stack.bench.bigday.app; do not edit):
the repo's function_app.py, loaded under another name, its code's time constants scaled."""

from local_stack.bench.bigday.app import load_app

app = load_app({repo!r})
'''


def scaled_policy(policy: Any, factor: float) -> Any:
    """`Policy` with every time bound the code fixes divided by `factor`."""
    return dataclasses.replace(
        policy,
        sku_cache_ttl=policy.sku_cache_ttl / factor,
        sweep_budget_seconds=policy.sweep_budget_seconds / factor,
        pending_lease=policy.pending_lease / factor,
        forced_sync_recheck=policy.forced_sync_recheck / factor,
        group_recheck=policy.group_recheck / factor,
        pacing=policy.pacing.faster(factor),
    )


def load_app(repo: str | Path = REPO, env: Mapping[str, str] | None = None) -> Any:
    """What the shim runs at import: the repo's `app`, with the scaled service installed."""
    env = os.environ if env is None else env
    module = import_function_app(repo)

    from shared import bootstrap
    from shared.adapters.graph.sender import GraphSender

    factor = float(env.get("BIGDAY_TIME_SCALE") or 1.0)
    settings = bootstrap.settings()
    inline_wait = inspect.signature(GraphSender).parameters["max_inline_wait"].default
    wiring = bootstrap.build_service(
        settings,
        policy=scaled_policy(bootstrap.policy_from(settings), factor),
        graph_options={"max_inline_wait": float(inline_wait) / factor},
    )
    bootstrap.use(wiring)
    return module.app


def write_app_folder(folder: Path, repo: Path = REPO) -> Path:
    """The benchmark's app folder: the repo's host.json and the shim."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(repo / "host.json", folder / "host.json")
    (folder / "function_app.py").write_text(SHIM.format(repo=str(repo)), encoding="utf-8")
    return folder
