"""The Azurite launcher of the local stack."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from azure.storage.queue import QueueServiceClient

from local_stack.azurite import Azurite, AzuriteError, start_azurite

pytestmark = pytest.mark.stack


def test_the_connection_string_reaches_azurite(azurite: Azurite) -> None:
    """The handle's connection string works with the storage SDK on 127.0.0.1."""
    assert azurite.queue_endpoint == f"http://127.0.0.1:{azurite.queue_port}/devstoreaccount1"
    with QueueServiceClient.from_connection_string(azurite.connection_string) as service:
        queue = service.get_queue_client("azurite-launcher-check")
        queue.create_queue()
        queue.send_message("ping")
        assert [m.content for m in queue.peek_messages()] == ["ping"]


def test_a_port_in_use_is_reported_before_starting(tmp_path: Path) -> None:
    """Asking for a port something else holds fails clearly instead of hanging."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(AzuriteError, match="already in use"):
            start_azurite(tmp_path, port=port)
