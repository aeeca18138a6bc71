"""The event outbox's words: the sinks every event goes to, and an event held on its way to
them (contract v1.2, "Events to every consumer"; the design is in docs/architecture.md,
"Events to two sinks").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.domain.events import Event


class Sink(StrEnum):
    """Where an event goes: the `user-onboard-events` queue, and the Event Grid topic."""

    QUEUE = "queue"
    TOPIC = "topic"


@dataclass(frozen=True)
class Held:
    """An event in the outbox: which sinks are known to have it, and the version the store
    gave the row (so that releasing it never forgets a newer hold of the same event)."""

    event: Event
    sent: frozenset[Sink]
    held_at: datetime
    version: str | None = None
    problem: str = ""

    @property
    def missing(self) -> tuple[Sink, ...]:
        """The sinks still to publish to, queue first."""
        return tuple(sink for sink in Sink if sink not in self.sent)
