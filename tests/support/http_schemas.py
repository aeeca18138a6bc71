"""The JSON Schemas of the HTTP front door's answers (`schemas/http/`), and the check the
tests run on every answer they receive: by status, 202 `accepted`, 200 `status`, 400
`field-errors`, anything else `problem`."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "http"
CHECKED: Counter[str] = Counter()


@cache
def validators() -> dict[str, Draft202012Validator]:
    out = {}
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        out[path.name.removesuffix(".schema.json")] = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    return out


def schema_name(status: int) -> str:
    return {202: "accepted", 200: "status", 400: "field-errors"}.get(status, "problem")


def violations(status: int, body: Mapping[str, Any]) -> list[str]:
    """What is wrong with an answer's body by its status's schema; [] when it validates."""
    name = schema_name(status)
    CHECKED[name] += 1
    return [
        f"{status} ({name}): {'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:300]}"
        for e in validators()[name].iter_errors(body)
    ]


def assert_valid(status: int, body: Mapping[str, Any]) -> None:
    problems = violations(status, body)
    assert problems == [], problems
