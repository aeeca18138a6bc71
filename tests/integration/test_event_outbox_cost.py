"""What the Event Grid topic costs in storage, through the app's own wiring
(`bootstrap.build_service` from settings, on Azurite, the Graph emulator and the Event Grid
stand-in): two table calls per event (hold, release), one outbox query per sweep, and no
other change. The figures in docs/benchmarks.md come from the same code
(`python -m local_stack.bench.outbox`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.bench.outbox import KINDS, NO_THROTTLE, measure
from local_stack.stack import LocalStack

pytestmark = pytest.mark.stack

SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"
EVENTS = {"licensed": 1, "waiting → licensed": 2, "rejected": 1}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    directory = json.loads((SAMPLES / "directory.json").read_text())
    directory["users"] = []
    directory["skus"] = [dict(sku, enabled=1_000) for sku in directory["skus"]]
    state = tmp_path_factory.mktemp("outbox-cost")
    with LocalStack(state, directory, event_grid=True, emulator_options=NO_THROTTLE) as running:
        yield running


def test_the_topic_costs_two_table_calls_per_event_and_nothing_else(stack: LocalStack) -> None:
    """Same outcomes; per request, +2 table calls per event, the same queue calls; the
    topic takes every event once; a sweep tick pays one outbox query."""
    results = measure(stack, 3)
    without, with_topic = results["queue only"], results["queue + topic"]
    assert without["outcomes"] == with_topic["outcomes"]
    assert set(without["outcomes"]) == {
        "licensed: licensed",
        "waiting: waiting",
        "sweep: licensed",
        "rejected: rejected",
    }
    for kind in KINDS:
        before, after = without["per request"][kind], with_topic["per request"][kind]
        assert after["table"] == before["table"] + 2 * EVENTS[kind], kind
        assert after["events queue"] == before["events queue"] == EVENTS[kind], kind
        assert after.get("other queues", 0) == before.get("other queues", 0), kind
    assert without["topic publishes"] == 0
    assert with_topic["topic publishes"] == 3 * sum(EVENTS.values())
    assert with_topic["empty sweep"]["table"] == without["empty sweep"]["table"] + 1
