"""`AzureWebJobs.<name>.Disabled`: the app setting that switches one function off."""

from __future__ import annotations

import pytest
from devhost_stack import Stack

from local_stack.devhost.config import disabled_functions

pytestmark = pytest.mark.stack


def test_true_or_1_disables_a_function_and_anything_else_does_not() -> None:
    """As in Azure: `true` (any case) or `1` disables; `false`, empty or absent do not."""
    environ = {
        "AzureWebJobs.a.Disabled": "True",
        "AzureWebJobs.b.Disabled": "1",
        "AzureWebJobs.c.Disabled": "false",
        "AzureWebJobs.d.Disabled": "",
    }
    assert disabled_functions(["a", "b", "c", "d", "e"], environ) == {"a", "b"}


def test_a_disabled_timer_never_fires_while_the_queue_trigger_runs(stack: Stack) -> None:
    """tick (every second) disabled: the host never schedules it, and says so at start."""
    stack.send(stack.input_queue, "hello")
    host = stack.run_until_idle(
        2.0, TICK_SCHEDULE="*/1 * * * * *", **{"AzureWebJobs.tick.Disabled": "true"}
    )
    assert [r["text"] for r in stack.records()] == ["hello"]
    assert stack.peek(stack.tick_queue) == []
    assert "tick: disabled (AzureWebJobs.tick.Disabled)" in host.stderr
    assert "tick: timerTrigger" not in host.stderr  # never scheduled
