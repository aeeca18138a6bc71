"""The pending queue message's format: what a parked request carries to its next check."""

from __future__ import annotations

import pytest

from shared.domain.errors import GraphCall, GraphErrorKind
from shared.domain.pending import from_message, to_message
from shared.domain.state import LastError
from tests.unit.test_workflow import graph_error, state


def test_pending_state_round_trips_through_its_queue_message() -> None:
    """Everything the next check needs survives serialization."""
    original = state(
        checks=3,
        last_seen="synced",
        seen_synced=True,
        usage_location_written=True,
        awaiting_sync_sent=True,
        last_error=LastError.of(graph_error(GraphErrorKind.NOT_FOUND, GraphCall.ASSIGN_LICENSE)),
    )
    assert from_message(to_message(original)) == original


@pytest.mark.parametrize(
    "text", ["", "[]", '{"v": 2}', '{"v": 1, "request": {"requestId": "x"}}', "not json"]
)
def test_anything_else_on_the_pending_queue_is_not_a_state(text: str) -> None:
    """A ValueError the sweep turns into a rejected event."""
    with pytest.raises(ValueError, match=r"pending state|not a pending"):
        from_message(text)
