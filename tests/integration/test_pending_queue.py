"""The pending queue adapter on Azurite: a start window weeks ahead is waited for in hops,
each one the longest hide the queue service accepts (7 days), and never longer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.queue import QueueClient, QueueServiceClient

from local_stack.azurite import Azurite, start_azurite
from shared.adapters.queues import StoragePendingQueue
from shared.decisions import MAX_HOP
from shared.domain.errors import LeaseLost


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with start_azurite(Path(tmp_path_factory.mktemp("pending"))) as running:
        yield running


@pytest.fixture
def queue(azurite: Azurite, request: pytest.FixtureRequest) -> Iterator[QueueClient]:
    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    name = "pending-" + request.node.name.replace("_", "-")[-40:].strip("-").lower()
    client = service.get_queue_client(name)
    client.create_queue()
    yield client
    client.delete_queue()


def test_a_hop_rewrites_the_state_and_hides_the_message_for_the_whole_hop(
    queue: QueueClient,
) -> None:
    pending = StoragePendingQueue(queue)

    async def hop() -> tuple[str, int]:
        await pending.park('{"hop": 0}', timedelta(0))
        (message,) = await pending.receive_due(10, timedelta(minutes=5))
        await pending.reschedule(message, '{"hop": 1}', MAX_HOP)
        return message.content, len(await pending.receive_due(10, timedelta(minutes=5)))

    first, due_after_hop = asyncio.run(hop())
    assert first == '{"hop": 0}'
    assert due_after_hop == 0  # hidden: the hop is the schedule
    assert queue.get_queue_properties().approximate_message_count == 1  # still there, once


def test_the_queue_service_refuses_a_hide_longer_than_seven_days(queue: QueueClient) -> None:
    """Why the workflow hops: MAX_HOP is accepted, a second more than 7 days is not."""
    pending = StoragePendingQueue(queue)
    asyncio.run(pending.park("{}", MAX_HOP))
    with pytest.raises(HttpResponseError) as refused:
        queue.send_message("{}", visibility_timeout=int(timedelta(days=7).total_seconds()) + 1)
    assert refused.value.status_code == 400


def test_a_message_another_receiver_took_or_deleted_is_lease_lost(queue: QueueClient) -> None:
    """What the queue service answers to a stale pop receipt (PopReceiptMismatch) or a
    deleted message (MessageNotFound) becomes LeaseLost, for an update and for a delete."""
    pending = StoragePendingQueue(queue)

    async def race() -> list[str]:
        await pending.park("{}", timedelta(0))
        (ours,) = await pending.receive_due(1, timedelta(seconds=1))
        await asyncio.sleep(1.5)  # our lease ends; another receiver takes the message
        (theirs,) = await pending.receive_due(1, timedelta(minutes=5))
        lost = []
        for attempt in (
            pending.reschedule(ours, "{}", timedelta(0)),
            pending.complete(ours),
        ):
            with pytest.raises(LeaseLost) as caught:
                await attempt
            lost.append(str(caught.value))
        await pending.complete(theirs)
        with pytest.raises(LeaseLost) as gone:
            await pending.complete(theirs)  # deleted already
        lost.append(str(gone.value))
        return lost

    stale_update, stale_delete, deleted = asyncio.run(race())
    assert stale_update.startswith("PopReceiptMismatch")
    assert stale_delete.startswith("PopReceiptMismatch")
    assert deleted.startswith("MessageNotFound")
