"""The repo's `function_app.py` imported as a module, for the shims that wrap the real app
(the stress suite's crash points, the big day's scaled wiring): the module the Functions
host would load, under one name, with the repo on `sys.path` for `shared`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def import_function_app(repo: str | Path) -> ModuleType:
    """Import `<repo>/function_app.py` (once per process: it is registered in sys.modules)."""
    repo_path = Path(repo)
    if str(repo_path) not in sys.path:
        sys.path.insert(0, str(repo_path))
    spec = importlib.util.spec_from_file_location(
        "user_onboarding_function_app", repo_path / "function_app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
