"""The shape of `shared/`: the layers of docs/architecture.md are its folders, dependencies
point inward, and no module, class or function grows past what one reader can hold."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 200
MAX_FUNCTION_LINES = 50

# What each layer may import from `shared` (besides itself). The top-level modules are
# the composition root (bootstrap), the settings, the names and the telemetry records.
ALLOWED = {
    "domain": set(),
    "decisions": {"domain"},
    "service": {"domain", "decisions", "telemetry"},
    "adapters": {"domain", "settings", "names", "telemetry", "service.ports"},
}


def modules() -> list[Path]:
    return sorted(SHARED.rglob("*.py"))


def layer_of(path: Path) -> str:
    parts = path.relative_to(SHARED).parts
    return parts[0] if len(parts) > 1 else path.stem


def shared_imports(tree: ast.AST) -> set[str]:
    """The `shared.` modules a module imports, without the `shared.` prefix."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "shared":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("shared."):
                found.add(node.module.removeprefix("shared."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("shared.") for a in node.names if a.name.startswith("shared.")
            )
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SHARED)))
def test_each_layer_imports_only_the_layers_inside_it(path: Path) -> None:
    """domain ← decisions ← service; adapters know the domain, never the use cases."""
    layer = layer_of(path)
    if layer not in ALLOWED:
        return  # bootstrap, settings, names, telemetry: the top level may wire anything
    tree = ast.parse(path.read_text(encoding="utf-8"))
    outside = {
        name
        for name in shared_imports(tree)
        if name.split(".")[0] != layer
        and name not in ALLOWED[layer]
        and name.split(".")[0] not in ALLOWED[layer]
    }
    assert outside == set(), f"{layer} imports {sorted(outside)}"


def test_no_module_class_or_function_is_too_long() -> None:
    """At most 400 lines a module, 200 a class, 50 a function."""
    too_long: list[str] = []
    for path in modules():
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(SHARED))
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            limit = (
                MAX_CLASS_LINES
                if isinstance(node, ast.ClassDef)
                else MAX_FUNCTION_LINES
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                else None
            )
            if limit is not None:
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > limit:
                    too_long.append(f"{name}:{node.name}: {size} lines")  # type: ignore[attr-defined]
    assert too_long == []


def test_the_layers_are_folders_and_the_top_level_is_small() -> None:
    """domain/, decisions/, service/, adapters/, and only wiring, settings, names and
    telemetry beside them."""
    top = {p.name for p in SHARED.iterdir() if not p.name.startswith("__")}
    assert top == {
        "domain",
        "decisions",
        "service",
        "adapters",
        "bootstrap.py",
        "settings.py",
        "names.py",
        "telemetry.py",
    }


def test_the_benchmarks_are_one_package_beside_the_local_stack() -> None:
    """Every benchmark lives in `local_stack/bench/` (docs/benchmarks.md names its modules),
    so the local stack's root holds the stack itself: a new benchmark file at the root, or a
    package that `make bench` cannot import, fails here."""
    local_stack = SHARED.parent / "local_stack"
    assert sorted(p.name for p in local_stack.glob("bench*.py")) == []
    assert (local_stack / "bench" / "__main__.py").is_file()
    from local_stack.bench.__main__ import BENCHMARKS

    assert set(BENCHMARKS) >= {"coldstart", "bigday", "backlog", "frontdoor"}
