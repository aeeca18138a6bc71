"""`pip install .` gives an operator the on-call tool alone (`onboarding-ops`): every
package of `ops` and `shared` goes in, its dependencies are the app's pins, and the tool
imports neither the local stack nor the app's Graph, Functions or telemetry libraries."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_the_console_script_is_the_tool() -> None:
    """`onboarding-ops` runs `ops.__main__:main`, the same as `python -m ops`."""
    target = PYPROJECT["project"]["scripts"]["onboarding-ops"]
    module, _, function = target.partition(":")
    assert (
        getattr(importlib.import_module(module), function)
        is importlib.import_module("ops.__main__").main
    )


def test_every_package_of_ops_and_shared_is_installed() -> None:
    """A folder of Python files missing an __init__.py would be left out of the wheel."""
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(find_packages(where=str(REPO), include=include))
    folders = {
        ".".join(path.parent.relative_to(REPO).parts)
        for top in ("ops", "shared")
        for path in (REPO / top).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert folders <= found, sorted(folders - found)
    assert {"ops", "shared"} <= found
    assert not {name for name in found if name.split(".")[0] not in ("ops", "shared")}


def test_the_dependencies_are_the_apps_pins() -> None:
    """Each one is pinned exactly as in requirements.txt, what Azure installs for the app."""
    pins = {
        line.strip()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    dependencies = PYPROJECT["project"]["dependencies"]
    assert dependencies
    assert set(dependencies) <= pins, set(dependencies) - pins


def test_the_tool_imports_only_what_it_depends_on() -> None:
    """No local stack (it is not installed), no library left out of the dependencies."""
    code = "import json, sys, ops.__main__; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout)
    unwanted = ("local_stack", "function_app", "msgraph", "kiota", "opentelemetry")
    unwanted_azure = ("azure.functions", "azure.monitor")
    bad = [m for m in loaded if m.split(".")[0] in unwanted or m.startswith(unwanted_azure)]
    assert not bad, bad
    assert {"azure.data.tables", "azure.storage.queue"} <= set(loaded)
