"""Helpers for the development host tests: a devhost subprocess and one test's queues."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from local_stack.azurite import Azurite

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_APP = Path(__file__).parent / "fixture_app"
_names = itertools.count(1)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true; fail the test naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class DevHostProcess:
    """A ``python -m local_stack.devhost`` subprocess with its stderr in a file."""

    def __init__(self, args: list[str], env: dict[str, str], stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        with stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(  # noqa: S603 - our own module, no shell
                [sys.executable, "-m", "local_stack.devhost", *args],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the devhost did not exit within {timeout:g} s:\n{self.stderr}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        self.process.send_signal(signum)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Stack:
    """One test's view: its own queue names and app copy on the shared Azurite."""

    def __init__(self, azurite: Azurite, tmp_path: Path) -> None:
        self.azurite = azurite
        self.tmp_path = tmp_path
        self._clients: dict[str, QueueClient] = {}
        self._processes: list[DevHostProcess] = []
        self.app_dir = tmp_path / "app"
        shutil.copytree(FIXTURE_APP, self.app_dir, ignore=shutil.ignore_patterns("__pycache__"))
        n = next(_names)
        self.input_queue = f"devhost-t{n}-in"
        self.output_queue = f"devhost-t{n}-out"
        self.tick_queue = f"devhost-t{n}-ticks"
        self.poison_queue = f"{self.input_queue}-poison"
        for name in (self.output_queue, self.tick_queue):
            self.queue(name).create_queue()

    # -- storage -------------------------------------------------------------------------

    def queue(self, name: str) -> QueueClient:
        client = self._clients.get(name)
        if client is None:
            client = QueueClient.from_connection_string(self.azurite.connection_string, name)
            self._clients[name] = client
        return client

    def send(self, name: str, *texts: str) -> None:
        queue = self.queue(name)
        with contextlib.suppress(ResourceExistsError):
            queue.create_queue()
        for text in texts:
            queue.send_message(text)

    def peek(self, name: str) -> list[str]:
        try:
            return [m.content for m in self.queue(name).peek_messages(max_messages=32)]
        except ResourceNotFoundError:
            return []

    def wait_count(self, name: str, count: int, timeout: float = 20.0) -> list[str]:
        wait_for(lambda: len(self.peek(name)) >= count, timeout, f"{count} message(s) on {name}")
        return self.peek(name)

    def records(self, name: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.peek(name or self.output_queue)]

    # -- app and host ----------------------------------------------------------------------

    def set_queue_options(self, **options: object) -> None:
        path = self.app_dir / "host.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        data["extensions"]["queues"].update(options)
        path.write_text(json.dumps(data), encoding="utf-8")

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AzureWebJobs", "FIXTURE_", "TICK_", "INPUT_", "OUTPUT_"))
        }
        env.update(
            PYTHONDONTWRITEBYTECODE="1",
            AzureWebJobsStorage=self.azurite.connection_string,
            INPUT_QUEUE=self.input_queue,
            OUTPUT_QUEUE=self.output_queue,
            TICK_QUEUE=self.tick_queue,
        )
        env.update(overrides)
        return env

    def start(self, *args: str, **env: str) -> DevHostProcess:
        """Start the devhost on this test's copy of the fixture app."""
        return self.start_app(self.app_dir, *args, **env)

    def start_app(self, app_dir: Path, *args: str, **env: str) -> DevHostProcess:
        stderr_path = self.tmp_path / f"devhost-{len(self._processes)}.stderr"
        process = DevHostProcess(["--app-dir", str(app_dir), *args], self.env(**env), stderr_path)
        self._processes.append(process)
        return process

    def serve_http(self, *args: str, **env: str) -> tuple[DevHostProcess, str]:
        """Start the devhost and wait for its HTTP port: (process, `http://127.0.0.1:PORT`)."""
        ready = self.tmp_path / f"http-{len(self._processes)}.port"
        process = self.start("--http-ready-file", str(ready), *args, **env)

        def _ready() -> bool:
            if process.process.poll() is not None:
                pytest.fail(f"the devhost exited ({process.process.returncode}):\n{process.stderr}")
            return ready.exists()

        wait_for(_ready, 30.0, "the devhost's HTTP port file")
        return process, f"http://127.0.0.1:{int(ready.read_text(encoding='utf-8'))}"

    def run_until_idle(self, idle_seconds: float = 1.0, **env: str) -> DevHostProcess:
        process = self.start("--once-idle-seconds", str(idle_seconds), **env)
        code = process.wait()
        assert code == 0, process.stderr
        return process

    def close(self) -> None:
        for process in self._processes:
            process.kill()
        for client in self._clients.values():
            client.close()
