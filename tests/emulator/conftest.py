"""Fixtures of the Graph emulator plugin, imported explicitly.

The root conftest may also register `tests.support.graph` with `pytest_plugins`;
importing the same functions here is harmless (the nearer definition wins).
"""

from tests.support.graph import (
    graph_client,
    graph_clock,
    graph_directory,
    graph_emulator,
    pytest_configure,
)

__all__ = ["graph_client", "graph_clock", "graph_directory", "graph_emulator", "pytest_configure"]
