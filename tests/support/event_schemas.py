"""Pytest plugin: every event the tests see is checked against its JSON Schema in
`schemas/events/` (contract v1.2), so the schemas and the app cannot drift apart.

Checked: each event a unit test hands to `FakeEventSink.publish` (as its serialized JSON,
the bytes a queue gets), and each event the local stack reads back from
`user-onboard-events` (`LocalStack.drain_events`: the end-to-end, stress and benchmark
tests) or from an Event Grid consumer's queue (`LocalStack.consumer_events`). An event
that does not validate fails its test at teardown, quoting the schema's complaints. The
terminal summary says how many events of each type were checked.

Register with `pytest_plugins = ["tests.support.event_schemas"]` in the root conftest.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from local_stack.stack import LocalStack
from shared.domain.events import Event
from tests.fakes import FakeEventSink

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "events"
CHECKED: Counter[str] = Counter()


@cache
def validators() -> dict[str, Draft202012Validator]:
    """The schema of each event type, by `type` (its file name)."""
    out = {}
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        out[path.name.removesuffix(".schema.json")] = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    return out


def violations(document: Mapping[str, Any]) -> list[str]:
    """What is wrong with `document` by its type's schema; [] when it validates."""
    event_type = document.get("type")
    validator = validators().get(str(event_type))
    if validator is None:
        return [f"{document.get('id')}: no schema for type {event_type!r}"]
    return [
        f"{document.get('id')}: {'/'.join(map(str, error.absolute_path)) or '(event)'}: "
        f"{error.message[:300]}"
        for error in validator.iter_errors(document)
    ]


@pytest.fixture(autouse=True)
def _events_match_their_schemas(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    seen: list[dict[str, Any]] = []
    publish = FakeEventSink.publish
    drain = LocalStack.drain_events
    consume = LocalStack.consumer_events

    async def checked_publish(self: FakeEventSink, event: Event) -> None:
        seen.append(json.loads(event.serialize()))
        await publish(self, event)

    def checked_drain(self: LocalStack) -> list[dict[str, Any]]:
        events = drain(self)
        seen.extend(events)
        return events

    def checked_consume(self: LocalStack, subscription: str) -> list[dict[str, Any]]:
        events = consume(self, subscription)
        seen.extend(events)
        return events

    monkeypatch.setattr(FakeEventSink, "publish", checked_publish)
    monkeypatch.setattr(LocalStack, "drain_events", checked_drain)
    monkeypatch.setattr(LocalStack, "consumer_events", checked_consume)
    yield
    problems = [problem for document in seen for problem in violations(document)]
    CHECKED.update(str(document.get("type")) for document in seen)
    if problems:
        shown = "\n".join(problems[:20])
        pytest.fail(
            f"{len(problems)} schema violation(s) in the events of this test "
            f"(schemas/events/):\n{shown}",
            pytrace=False,
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CHECKED:
        counts = ", ".join(f"{t} {n}" for t, n in sorted(CHECKED.items()))
        terminalreporter.write_line(
            f"event schemas: {sum(CHECKED.values())} events checked ({counts})"
        )
