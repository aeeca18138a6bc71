"""Every Bicep file under infra/ parses, and the parse check catches broken files.

No Bicep compiler can run here; tree-sitter-bicep stands in for its syntax check.
It does not know the `extension` statement, so `infra_support.source_for_parsers`
blanks exactly that one line of the Graph-permissions module before parsing (and
fails if the line is not there); every other line of every file is parsed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from infra_support import (
    EXTENSION_FILES,
    EXTENSION_LINE,
    INFRA,
    bicep_files,
    bicep_tree,
    resources_of,
    source_for_parsers,
    syntax_errors,
)

MODULES = (
    "storage.bicep",
    "monitoring.bicep",
    "identity.bicep",
    "functionapp.bicep",
    "roles.bicep",
    "graph-permissions.bicep",
    "alerts.bicep",
    "eventgrid.bicep",
    "api-registration.bicep",
)


def test_infra_holds_main_bicep_and_its_modules() -> None:
    """The files the parse check covers are all there: nothing is skipped by absence."""
    found = {path.relative_to(INFRA).as_posix() for path in bicep_files()}
    assert {"main.bicep", *(f"modules/{name}" for name in MODULES)} <= found


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: path.relative_to(INFRA).as_posix())
def test_bicep_file_parses_without_errors(path: Path) -> None:
    """tree-sitter-bicep finds no ERROR or MISSING node in the file."""
    assert syntax_errors(source_for_parsers(path)) == []


def test_only_the_graph_modules_have_an_extension_statement() -> None:
    """The parsers' blind spot is confined to the Graph modules, one line each."""
    with_extension = [
        path.relative_to(INFRA)
        for path in bicep_files()
        if any(
            line.strip().startswith("extension ")
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert sorted(with_extension) == sorted(EXTENSION_FILES)


@pytest.mark.parametrize("module", EXTENSION_FILES, ids=lambda module: module.name)
def test_blanking_the_extension_line_changes_that_line_only(module: Path) -> None:
    """The text the parsers see differs from the file in the extension line alone."""
    path = INFRA / module
    original = path.read_text(encoding="utf-8").split("\n")
    blanked = source_for_parsers(path).split("\n")
    assert len(blanked) == len(original)
    changed = [(a, b) for a, b in zip(original, blanked, strict=True) if a != b]
    assert changed == [(EXTENSION_LINE, "")]


@pytest.mark.parametrize("module", EXTENSION_FILES, ids=lambda module: module.name)
def test_a_graph_module_without_its_extension_line_is_refused(tmp_path: Path, module: Path) -> None:
    """Losing the extension line fails the check instead of passing unnoticed."""
    copy = tmp_path / "infra"
    (copy / module).parent.mkdir(parents=True)
    text = (INFRA / module).read_text(encoding="utf-8")
    (copy / module).write_text(text.replace(EXTENSION_LINE, ""), encoding="utf-8")
    with pytest.raises(AssertionError, match="expected exactly one line"):
        source_for_parsers(copy / module, copy)


def test_the_graph_modules_hold_graph_resources_only() -> None:
    """What the parsers cannot check is kept small: Microsoft.Graph resources only."""
    for module in EXTENSION_FILES:
        types = {d.target.split("/")[0] for d in resources_of(bicep_tree(INFRA / module))}
        assert types == {"Microsoft.Graph"}, module


def _drop_last_brace(text: str) -> str:
    cut = text.rindex("}")
    return text[:cut] + text[cut + 1 :]


def _drop_first_brace(text: str) -> str:
    return text.replace("}\n", "\n", 1)


def _unterminate_a_string(text: str) -> str:
    return text.replace("'Standard_LRS'", "'Standard_LRS", 1)


def _drop_an_equals_sign(text: str) -> str:
    return text.replace(
        "resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' =",
        "resource storage 'Microsoft.Storage/storageAccounts@2023-05-01'",
        1,
    )


@pytest.mark.parametrize(
    "breakage",
    [_drop_last_brace, _drop_first_brace, _unterminate_a_string, _drop_an_equals_sign],
    ids=lambda breakage: breakage.__name__.lstrip("_"),
)
def test_a_broken_bicep_file_is_reported(tmp_path: Path, breakage: Callable[[str], str]) -> None:
    """A copy of storage.bicep broken in a small way yields at least one syntax error."""
    copy = tmp_path / "storage.bicep"
    shutil.copy(INFRA / "modules" / "storage.bicep", copy)
    text = copy.read_text(encoding="utf-8")
    broken = breakage(text)
    assert broken != text, "the breakage no longer applies to storage.bicep"
    assert syntax_errors(broken) != []
