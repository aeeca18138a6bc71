"""Fixtures for the development host tests: Azurite and one test's stack on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from devhost_stack import Stack

from local_stack.azurite import Azurite, start_azurite


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with start_azurite(tmp_path_factory.mktemp("azurite"), port=0) as running:
        yield running


@pytest.fixture
def stack(azurite: Azurite, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(azurite, tmp_path)
    try:
        yield running
    finally:
        running.close()
