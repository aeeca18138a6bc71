"""Every event to both sinks, at least once (contract v1.2, "Events to every consumer"): the
`user-onboard-events` queue, as before, and the Event Grid topic of
`EVENT_GRID_TOPIC_ENDPOINT`.

`FanOut` is the `EventSink` the use cases publish to when a topic is configured. Each
event is held in the outbox before anything is published, and released once both sinks
have it:

    hold ─► queue ─► topic ─► release
                       └─ refused or unanswered ─► keep(sent={queue}) ─► the sweep

- A crash anywhere between hold and release leaves the event held: the sweep (`drain`)
  publishes it to every sink the outbox does not know has it, once `grace` has passed (the
  time an invocation still running may need to finish it itself). Announcements too: the
  next check of a request may decide something else and never send them again.
- The queue keeps its semantics: a storage outage raises, and the host retries the message.
- The topic never raises: refused or unanswered, the event stays held with `sent={queue}`
  for the sweep. After an unanswered or unauthorised publish, this process stops trying
  the topic for `TOPIC_PAUSE`, so an outage does not cost every event the adapter's
  retries (up to 20 s); the sweep's drain is the probe that finds the topic back.
- Event Grid's own records (`events.topic_unavailable`, `events.topic_rejected`) are
  logged by the adapter, which has its answer (`shared/adapters/event_grid.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from shared.domain.errors import EventGridRejected, EventGridUnavailable, StorageUnavailable
from shared.domain.events import Event
from shared.domain.outbox import Held, Sink
from shared.service.ports import Clock, EventOutbox, EventSink

log = logging.getLogger("user_onboarding")

# How long a process leaves the topic alone after it did not answer (or refused the app's
# identity): the events wait in the outbox meanwhile, and the sweep tries them.
TOPIC_PAUSE: Final = timedelta(seconds=30)
# When the sweep tries again an event a sink refused as such (a 4xx: a bug, which the same
# bytes would meet again until the app is fixed and redeployed).
REFUSED_RETRY: Final = timedelta(hours=1)
DRAIN_PAGE: Final = 100  # held events read per query by the sweep


@dataclass(frozen=True)
class _Failure:
    why: str
    due_at: datetime
    topic_down: bool  # unanswered or unauthorised: the drain stops for this tick


@dataclass
class Drained:
    """What one sweep's drain did: events now on both sinks, events still held."""

    published: int = 0
    kept: int = 0


class FanOut:
    """The `EventSink` of the use cases with a topic: queue and topic through the outbox."""

    def __init__(
        self,
        queue: EventSink,
        topic: EventSink,
        outbox: EventOutbox,
        clock: Clock,
        *,
        grace: timedelta,
    ) -> None:
        self._queue = queue
        self._topic = topic
        self._outbox = outbox
        self._clock = clock
        self._grace = grace
        self._paused_until: float | None = None

    async def publish(self, event: Event) -> None:
        """Hold, queue, topic, release. Raises only what the queue or the outbox raise
        (StorageUnavailable, as the queue alone did); never an Event Grid failure."""
        now = self._clock.now()
        version = await self._outbox.hold(event, now, now + self._grace)
        await self._queue.publish(event)
        failure = await self._to_topic(event, probe=False)
        if failure is None:
            await self._outbox.release(event.id, version)
        else:
            await self._outbox.keep(event.id, frozenset({Sink.QUEUE}), failure.due_at, failure.why)

    async def drain(self, out_of_time: Callable[[], bool]) -> Drained:
        """Publish held events that are due to the sinks that lack them, a page at a time,
        until none is left, `out_of_time()`, or the topic does not answer."""
        drained = Drained()
        seen: set[str] = set()
        while not out_of_time():
            due = await self._outbox.due(self._clock.now(), DRAIN_PAGE)
            page = [held for held in due if held.event.id not in seen]
            if not page:
                break
            for held in page:
                if out_of_time():
                    return drained
                seen.add(held.event.id)
                if not await self._finish(held, drained):
                    return drained  # the topic is down: the next sweep tries again
        return drained

    async def _finish(self, held: Held, drained: Drained) -> bool:
        """One held event to the sinks it lacks; False when the topic did not answer."""
        event = held.event
        if Sink.QUEUE in held.missing:
            try:
                await self._queue.publish(event)
            except StorageUnavailable:
                raise
            except Exception as exc:  # the queue refused this event: a bug, kept for later
                log.exception("the events queue refused held event %s", event.id)
                due = self._clock.now() + REFUSED_RETRY
                await self._outbox.keep(event.id, held.sent, due, _text(exc))
                drained.kept += 1
                return True
        failure = await self._to_topic(event, probe=True) if Sink.TOPIC in held.missing else None
        if failure is None:
            await self._outbox.release(event.id, held.version)
            drained.published += 1
            return True
        sent = held.sent | {Sink.QUEUE}
        await self._outbox.keep(event.id, sent, failure.due_at, failure.why)
        drained.kept += 1
        return not failure.topic_down

    async def _to_topic(self, event: Event, *, probe: bool) -> _Failure | None:
        """Publish to the topic; what went wrong, or None. Never raises."""
        now = self._clock.now()
        paused = self._paused_until is not None and self._clock.monotonic() < self._paused_until
        if paused and not probe:
            return _Failure("not tried: the topic is paused after a failure", now, True)
        try:
            await self._topic.publish(event)
        except EventGridUnavailable as exc:
            self._pause(exc)
            return _Failure(_text(exc), now, True)
        except EventGridRejected as exc:
            return _Failure(_text(exc), now + REFUSED_RETRY, False)
        except Exception as exc:  # a bug on the way to Event Grid must not fail a request
            log.exception("publishing event %s to the Event Grid topic failed", event.id)
            return _Failure(_text(exc), now + REFUSED_RETRY, False)
        if self._paused_until is not None:
            log.warning("the Event Grid topic answers again: events go to it at once")
        self._paused_until = None
        return None

    def _pause(self, exc: EventGridUnavailable) -> None:
        if self._paused_until is None:
            log.warning(
                "the Event Grid topic is left alone for %ds (%s): events go to the queue "
                "and wait in the outbox for the sweep",
                TOPIC_PAUSE.total_seconds(),
                _text(exc),
            )
        self._paused_until = self._clock.monotonic() + TOPIC_PAUSE.total_seconds()


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:500]}"
