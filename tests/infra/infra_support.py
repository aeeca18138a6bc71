"""Offline readers for infra/: Bicep through tree-sitter, checkov as a subprocess.

No Bicep compiler exists here, so the tests read the Bicep syntax tree themselves:
`bicep_tree` parses a file, `syntax_errors` lists what the parser could not read, and
the `*_of` helpers turn declarations into plain Python values for cross-checks.

Neither tree-sitter-bicep 1.1 nor checkov's parser knows the `extension` statement
that the Microsoft Graph resources need. It lives in small modules of Graph resources
only (`EXTENSION_FILES`); `source_for_parsers` blanks exactly that one line in each (and
fails if it is missing), so that every other line is still checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tree_sitter
import tree_sitter_bicep

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
# Every module that needs the Microsoft Graph extension (each small, Graph resources only).
EXTENSION_FILES = (Path("modules/graph-permissions.bicep"), Path("modules/api-registration.bicep"))
EXTENSION_LINE = "extension microsoftGraphV1"
CHECKOV_CONFIG = Path("infra/.checkov.yaml")

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))
_ESCAPES = {"\\'": "'", "\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\$": "$"}


@dataclass(frozen=True)
class Expr:
    """A Bicep expression that is not a literal, kept as its source text."""

    text: str


def bicep_files(infra: Path = INFRA) -> list[Path]:
    """Every .bicep file under `infra`, sorted."""
    return sorted(infra.rglob("*.bicep"))


def source_for_parsers(path: Path, infra: Path = INFRA) -> str:
    """The file's text as the offline parsers can read it (see the module docstring)."""
    text = path.read_text(encoding="utf-8")
    if path.relative_to(infra) not in EXTENSION_FILES:
        return text
    lines = text.split("\n")
    hits = [i for i, line in enumerate(lines) if line.strip() == EXTENSION_LINE]
    if len(hits) != 1:
        raise AssertionError(f"{path}: expected exactly one line {EXTENSION_LINE!r}")
    lines[hits[0]] = ""
    return "\n".join(lines)


def parse(source: str) -> tree_sitter.Tree:
    """Parse Bicep source."""
    return _PARSER.parse(source.encode("utf-8"))


def bicep_tree(path: Path, infra: Path = INFRA) -> tree_sitter.Node:
    """The root node of a Bicep file under `infra`."""
    return parse(source_for_parsers(path, infra)).root_node


def syntax_errors(source: str) -> list[str]:
    """Every ERROR and MISSING node in the parse of `source`, with its position."""
    root = parse(source).root_node
    found: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_missing:
            found.append(f"line {node.start_point.row + 1}: missing {node.type!r}")
        elif node.is_error:
            found.append(f"line {node.start_point.row + 1}: cannot parse {_text(node)[:60]!r}")
        stack.extend(reversed(node.children))
    if root.has_error and not found:
        found.append("tree-sitter reports an error it does not locate")
    return found


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8")


def _named(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    return [child for child in node.named_children if child.type != "comment"]


def value_of(node: tree_sitter.Node) -> Any:
    """A literal as a Python value (objects, arrays, strings, numbers, booleans, null).

    Anything else (references, calls, interpolated strings) comes back as `Expr`.
    """
    kind = node.type
    if kind == "object":
        return {
            key_of(prop): value_of(_named(prop)[1])
            for prop in _named(node)
            if prop.type == "object_property"
        }
    if kind == "array":
        return [value_of(item) for item in _named(node)]
    if kind == "string" and _text(node).startswith("'''"):
        # A multi-line string: verbatim (no escapes, no interpolation), and Bicep drops
        # the line break that directly follows the opening quotes.
        return re.sub(r"\A\r?\n", "", _text(node)[3:-3])
    if kind == "string" and all(
        part.type in ("string_content", "escape_sequence") for part in _named(node)
    ):
        return "".join(
            _ESCAPES.get(_text(part), _text(part))
            if part.type == "escape_sequence"
            else _text(part)
            for part in _named(node)
        )
    if kind == "boolean":
        return _text(node) == "true"
    if kind == "number":
        return int(_text(node))
    if kind == "null":
        return None
    return Expr(_text(node))


def key_of(prop: tree_sitter.Node) -> str:
    """The key of an object property, quoted or not; an interpolated key as its source."""
    key = _named(prop)[0]
    value = value_of(key) if key.type == "string" else _text(key)
    return value if isinstance(value, str) else _text(key)


@dataclass(frozen=True)
class Declaration:
    """A `resource` or `module` declaration: its symbolic name, type or path, and body."""

    name: str
    target: str
    body: dict[str, Any]
    existing: bool
    condition: str | None
    loop: str | None


def _declarations(root: tree_sitter.Node, kind: str) -> list[Declaration]:
    found = []
    for node in _named(root):
        if node.type != kind:
            continue
        parts = _named(node)
        name, target, body = _text(parts[0]), value_of(parts[1]), parts[-1]
        condition = loop = None
        if body.type == "if_statement":
            test, body = _named(body)[0], _named(body)[-1]
            if test.type == "parenthesized_expression":
                test = _named(test)[0]
            condition = _text(test)
        elif body.type == "for_statement":
            loop, body = _text(body), _named(body)[-1]
            if body.type == "if_statement":  # [for x in xs: if (test) {...}]
                test, body = _named(body)[0], _named(body)[-1]
                if test.type == "parenthesized_expression":
                    test = _named(test)[0]
                condition = _text(test)
        found.append(
            Declaration(
                name=name,
                target=target,
                body=value_of(body),
                existing=any(child.type == "existing" for child in node.children),
                condition=condition,
                loop=loop,
            )
        )
    return found


def resources_of(root: tree_sitter.Node) -> list[Declaration]:
    """The file's `resource` declarations; `target` is 'Type@apiVersion'."""
    return _declarations(root, "resource_declaration")


def modules_of(root: tree_sitter.Node) -> list[Declaration]:
    """The file's `module` declarations; `target` is the module's relative path."""
    return _declarations(root, "module_declaration")


@dataclass(frozen=True)
class Param:
    """A `param` declaration: its type and default (`has_default` tells None apart)."""

    type: str
    default: Any
    has_default: bool


def params_of(root: tree_sitter.Node) -> dict[str, Param]:
    """The file's `param` declarations by name."""
    found = {}
    for node in _named(root):
        if node.type == "parameter_declaration":
            parts = _named(node)
            default = parts[2] if len(parts) > 2 else None
            found[_text(parts[0])] = Param(
                type=_text(parts[1]),
                default=None if default is None else value_of(default),
                has_default=default is not None,
            )
    return found


def param_decorators_of(root: tree_sitter.Node) -> dict[str, dict[str, Any]]:
    """Each `param`'s decorators by name, with their first argument as `value_of` renders
    it (`@secure()` and other argument-less ones map to None)."""
    found: dict[str, dict[str, Any]] = {}
    pending: list[tree_sitter.Node] = []
    for node in _named(root):
        if node.type == "decorators":
            pending = [d for d in _named(node) if d.type == "decorator"]
            continue
        if node.type == "parameter_declaration":
            decorators = {}
            for decorator in pending:
                call = _named(decorator)[0]
                arguments = next(c for c in _named(call) if c.type == "arguments")
                values = _named(arguments)
                name = _text(_field(call, "function"))
                decorators[name] = value_of(values[0]) if values else None
            found[_text(_named(node)[0])] = decorators
        pending = []
    return found


def variable_nodes_of(root: tree_sitter.Node) -> dict[str, tree_sitter.Node]:
    """The file's `var` declarations by name, as syntax nodes (for `evaluate`)."""
    return {
        _text(_named(node)[0]): _named(node)[1]
        for node in _named(root)
        if node.type == "variable_declaration"
    }


def _union(*values: Any) -> Any:
    if all(isinstance(value, dict) for value in values):  # objects: later keys win
        return {key: item for value in values for key, item in value.items()}
    # Bicep's union of arrays keeps the first occurrence of each value, in order.
    return list(dict.fromkeys(item for array in values for item in array))


_FUNCTIONS: dict[str, Any] = {
    "empty": lambda value: value is None or len(value) == 0,
    "contains": lambda container, item: item in container,
    "concat": lambda *arrays: [item for array in arrays for item in array],
    "union": _union,
    "split": lambda text, separator: text.split(separator),
    "trim": lambda text: text.strip(),
    "filter": lambda array, keep: [item for item in array if keep(item)],
    "map": lambda array, function: [function(item) for item in array],
    "toObject": lambda array, key, value: {key(item): value(item) for item in array},
}
_OPERATORS: dict[str, Any] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "&&": lambda a, b: a and b,
    "||": lambda a, b: a or b,
    "??": lambda a, b: b if a is None else a,
}


def evaluate(node: tree_sitter.Node, names: dict[str, Any]) -> Any:
    """The value of a Bicep expression, with `names` giving params and variables.

    Only what the tests need: literals, names, `!`, `==`, `!=`, `&&`, `||`, `??`,
    `c ? a : b`, parentheses, `x.y` and `x.?y`, lambdas, `[for x in xs: ...]`, and the
    functions in `_FUNCTIONS`. Anything else raises, so a Bicep change the evaluator does
    not follow fails the test instead of passing it.
    """
    kind = node.type
    if kind == "array":
        return [evaluate(item, names) for item in _named(node)]
    if kind == "object":
        return {
            key_of(prop): evaluate(_named(prop)[1], names)
            for prop in _named(node)
            if prop.type == "object_property"
        }
    if kind == "lambda_expression":
        parameter, body = _text(_named(node)[0]), _named(node)[-1]
        return _Lambda(parameter, lambda value: evaluate(body, {**names, parameter: value}))
    if kind == "member_expression":
        return _member(node, names)
    if kind == "for_statement":
        variable, iterable, body = _named(node)[0], _named(node)[1], _named(node)[-1]
        if variable.type != "identifier":
            raise NotImplementedError(f"loop variables {_text(variable)}")
        return [
            evaluate(body, {**names, _text(variable): item}) for item in evaluate(iterable, names)
        ]
    if kind in ("string", "boolean", "number", "null"):
        value = value_of(node)
        if isinstance(value, Expr):
            raise NotImplementedError(f"interpolated string: {value.text}")
        return value
    if kind == "identifier":
        return names[_text(node)]
    if kind == "parenthesized_expression":
        return evaluate(_named(node)[0], names)
    if kind == "unary_expression" and _text(node).startswith("!"):
        return not evaluate(_named(node)[0], names)
    if kind == "ternary_expression":
        condition = evaluate(_field(node, "condition"), names)
        return evaluate(_field(node, "consequence" if condition else "alternative"), names)
    if kind == "binary_expression":
        operator = next(_text(child) for child in node.children if not child.is_named)
        left = evaluate(_field(node, "left"), names)
        if isinstance(left, _Lambda):  # `x => x.a == b`, misread as `(x => x.a) == b`
            right_node = _field(node, "right")
            return _Lambda(
                left.parameter,
                lambda value: _OPERATORS[operator](
                    left(value), evaluate(right_node, {**names, left.parameter: value})
                ),
            )
        return _OPERATORS[operator](left, evaluate(_field(node, "right"), names))
    if kind == "call_expression":
        function = _FUNCTIONS[_text(_field(node, "function"))]
        arguments = next(child for child in _named(node) if child.type == "arguments")
        return function(*(evaluate(argument, names) for argument in _named(arguments)))
    raise NotImplementedError(f"{kind}: {_text(node)[:80]}")


@dataclass(frozen=True)
class _Lambda:
    """A Bicep lambda: its parameter's name, and the function it computes."""

    parameter: str
    function: Any

    def __call__(self, value: Any) -> Any:
        return self.function(value)


def _member(node: tree_sitter.Node, names: dict[str, Any]) -> Any:
    """`x.y` (a missing key raises, as in Bicep) and `x.?y` (a missing key is null)."""
    target, prop = _named(node)[0], _text(_named(node)[-1])
    safe = any(_text(child) == ".?" for child in node.children if not child.is_named)
    inner = evaluate(target, names)
    if isinstance(inner, _Lambda):
        # tree-sitter-bicep 1.1 reads `c => c.name` as `(c => c).name` (and `c => c.a == b`
        # as `((c => c).a) == b`): apply what follows to the lambda's result, as Bicep does.
        return _Lambda(inner.parameter, lambda value: _access(inner(value), prop, safe))
    return _access(inner, prop, safe)


def _access(value: Any, prop: str, safe: bool) -> Any:
    if safe:
        return None if value is None else value.get(prop)
    return value[prop]


def _field(node: tree_sitter.Node, name: str) -> tree_sitter.Node:
    child = node.child_by_field_name(name)
    assert child is not None, f"{node.type} has no {name}"
    return child


def variables_of(root: tree_sitter.Node) -> dict[str, Any]:
    """The file's `var` declarations by name, as `value_of` renders them."""
    return {
        _text(_named(node)[0]): value_of(_named(node)[1])
        for node in _named(root)
        if node.type == "variable_declaration"
    }


# --- checkov -------------------------------------------------------------------------


def checkov_executable() -> Path:
    """checkov from $CHECKOV (set by the Makefile), else the repo's .venv-checkov."""
    configured = os.environ.get("CHECKOV")
    path = Path(configured) if configured else REPO / ".venv-checkov" / "bin" / "checkov"
    if not path.is_file():
        raise AssertionError(
            f"checkov not found at {path}: run `make test` (it installs checkov into "
            ".venv-checkov from requirements-checkov.txt and sets CHECKOV)"
        )
    return path


def copy_infra_for_checkov(destination: Path) -> Path:
    """Copy infra/ to `destination`/infra, blanking the `extension` lines; return the copy."""
    copy = destination / "infra"
    shutil.copytree(INFRA, copy)
    for module in EXTENSION_FILES:
        extension_module = copy / module
        extension_module.write_text(source_for_parsers(extension_module, copy), encoding="utf-8")
    return copy


def run_checkov(workdir: Path) -> dict[str, Any]:
    """Run checkov with infra/.checkov.yaml on `workdir`/infra; return its JSON report."""
    completed = subprocess.run(  # noqa: S603 - fixed arguments, trusted executable
        [
            str(checkov_executable()),
            "--config-file",
            str(CHECKOV_CONFIG),
            "--directory",
            "infra",
            "--output",
            "json",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    # Exit code 1 only means "some check failed"; the report says which.
    assert completed.returncode in (0, 1), completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    if isinstance(report, list):  # one entry per framework when several ran
        (report,) = [entry for entry in report if entry.get("check_type") == "bicep"]
    assert isinstance(report, dict), completed.stdout[:500]
    return report


def results(report: dict[str, Any], outcome: str) -> list[tuple[str, str, str]]:
    """(check id, resource, file) of every `outcome` ('passed', 'failed', 'skipped') result."""
    return sorted(
        (item["check_id"], item["resource"], item["file_path"])
        for item in report.get("results", {}).get(f"{outcome}_checks", [])
    )


def config_skips(config_text: str) -> dict[str, str]:
    """Skipped check ids of the checkov config and the reason commented on each line."""
    skips = {}
    in_skip_list = False
    for line in config_text.splitlines():
        if re.match(r"^[\w-]+:", line):
            in_skip_list = line.startswith("skip-check:")
            continue
        match = re.match(r"^\s+-\s+(\S+)\s*(?:#\s*(.*))?$", line)
        if in_skip_list and match:
            skips[match.group(1)] = (match.group(2) or "").strip()
    return skips
