"""Timers, start-up refusals and shutdown of the development host."""

from __future__ import annotations

import itertools
import json
import signal
import textwrap
from pathlib import Path

import pytest
from devhost_stack import Stack, wait_for

pytestmark = pytest.mark.stack


def test_timer_fires_on_its_schedule_resolved_from_a_setting(stack: Stack) -> None:
    """A %SETTING% schedule of every second makes the timer fire repeatedly."""
    host = stack.start(TICK_SCHEDULE="*/1 * * * * *")
    ticks = stack.wait_count(stack.tick_queue, 2)
    assert host.stop() == 0

    assert all(json.loads(t)["past_due"] is False for t in ticks[:2])
    assert "tick: timerTrigger '*/1 * * * * *'" in host.stderr


def test_a_slow_timer_never_overlaps_and_missed_ticks_run_once_past_due(stack: Stack) -> None:
    """Ticks missed while the timer runs are coalesced into one past-due invocation."""
    host = stack.start(TICK_SCHEDULE="*/1 * * * * *", TICK_SLEEP="1.2")
    ticks = [json.loads(t) for t in stack.wait_count(stack.tick_queue, 2)]
    host.stop()

    for earlier, later in itertools.pairwise(ticks):
        assert later["start"] >= earlier["end"]
    assert [t["past_due"] for t in ticks[:2]] == [False, True]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_lets_the_running_invocation_finish_and_exits_cleanly(
    stack: Stack, signum: signal.Signals
) -> None:
    """SIGTERM or SIGINT stops polling, waits for the running message and exits 0."""
    stack.send(stack.input_queue, "sleep:1")
    host = stack.start()
    wait_for(lambda: any(r["stage"] == "started" for r in stack.records()), 20, "start")

    assert host.stop(signum) == 0

    assert [r["stage"] for r in stack.records()] == ["started", "done"]
    queue = stack.queue(stack.input_queue)
    assert queue.get_queue_properties().approximate_message_count == 0
    assert f"{signum.name} received: stopping" in host.stderr
    assert "[devhost] stopped" in host.stderr


def _write_app(folder: Path, source: str) -> Path:
    folder.mkdir()
    (folder / "function_app.py").write_text(textwrap.dedent(source), encoding="utf-8")
    (folder / "host.json").write_text('{"version": "2.0"}', encoding="utf-8")
    return folder


def test_an_output_binding_refuses_to_start_naming_the_function(
    stack: Stack, tmp_path: Path
) -> None:
    """An unsupported binding stops the host at start-up with a clear message."""
    app_dir = _write_app(
        tmp_path / "bad_app",
        """
        import azure.functions as func

        app = func.FunctionApp()

        @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
        @app.queue_output(arg_name="out", queue_name="out-q", connection="AzureWebJobsStorage")
        def forward(msg: func.QueueMessage, out: func.Out[str]) -> None:
            out.set(msg.get_body().decode())
        """,
    )
    host = stack.start_app(app_dir)

    assert host.wait() == 1
    assert "refusing to start" in host.stderr
    assert "function 'forward': binding 'out' of type 'queue'" in host.stderr


def test_an_unresolved_setting_refuses_to_start(stack: Stack, tmp_path: Path) -> None:
    """A %NAME% with no such setting is reported instead of polling a wrong queue."""
    app_dir = _write_app(
        tmp_path / "unresolved_app",
        """
        import azure.functions as func

        app = func.FunctionApp()

        @app.queue_trigger(arg_name="msg", queue_name="%NO_SUCH_QUEUE_SETTING%",
                           connection="AzureWebJobsStorage")
        def handle(msg: func.QueueMessage) -> None:
            pass
        """,
    )
    host = stack.start_app(app_dir)

    assert host.wait() == 1
    assert "'%NO_SUCH_QUEUE_SETTING%' does not resolve" in host.stderr


def test_an_app_that_fails_to_import_refuses_to_start_with_its_error(
    stack: Stack, tmp_path: Path
) -> None:
    """An exception while importing function_app.py is reported with its traceback."""
    app_dir = _write_app(
        tmp_path / "broken_app",
        """
        import os

        SETTING = os.environ["A_SETTING_NOBODY_SET"]
        """,
    )
    host = stack.start_app(app_dir)

    assert host.wait() == 1
    assert "function_app.py failed to import: KeyError: 'A_SETTING_NOBODY_SET'" in host.stderr
    assert "Traceback" in host.stderr
