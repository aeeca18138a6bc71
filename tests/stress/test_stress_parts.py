"""The short version of each stress part (`python -m local_stack.stress --short`): the real
app under the development host on the local stack, judged from the outside. The full
versions run with `make stress` (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_stack.stress.parts import PARTS, Options

pytestmark = pytest.mark.stack


@pytest.mark.parametrize("name", list(PARTS))
def test_the_short_part_passes_its_judge(name: str, tmp_path: Path) -> None:
    """One terminal id per request, nothing lost, seats = users licensed, nothing valid
    poisoned, every Graph value escaped, expected outcomes, empty queues, no host crash
    but the ones the part caused."""
    result = PARTS[name](Options(short=True, state_root=tmp_path))
    row = result.to_json()
    assert result.ok, (row["examples"], row["host_crash_examples"])
    assert row["messages_posted"] > 0
    assert row["terminal_events"] >= row["requests"]
