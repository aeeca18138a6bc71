"""The `EventOutbox` port on Azure Table storage: the request ledger's table
(`onboardingrequests`, same storage account), partition `~outbox` (no requestId starts with
`~`), one row per event on its way to the events queue and the Event Grid topic
(`shared/service/outbox.py` says when rows are written and why).

A row: `EventId`, `RequestId` (its subject, for on-call), `Type`, the event's JSON split
over `Event0`, `Event1`... (a table string holds at most 32K characters; an event up to
48 KiB), `Sent` (the sinks known to have it, comma-separated: `""` or `queue`), `HeldAt`,
`DueAt` (a table datetime, so the sweep's query compares instants, not text), `Problem`
(why a sink did not take it, last time).

The row key is the event id with `/` written `|`, as the ledger's partition keys are (an
event id is `<requestId>:<word>` or `message:<queue message id>:rejected`); any other
character a key cannot hold is written `~XX`. Neither `|` nor `~` can be in an event id.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.ledger import CONTENT_CHUNK, RETRY_IDEMPOTENT
from shared.adapters.storage import storage_call
from shared.domain.events import Event
from shared.domain.outbox import Held, Sink

OUTBOX: Final = "~outbox"
PROBLEM_CHARS: Final = 1_000
log = logging.getLogger("user_onboarding")


def row_key(event_id: str) -> str:
    """An event id as a table key (module docstring)."""
    out = []
    for char in event_id.replace("/", "|"):
        forbidden = char in "\\#?~" or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F
        out.append(f"~{ord(char):02X}" if forbidden else char)
    return "".join(out)


class TableOutbox:
    """`shared.service.ports.EventOutbox` on the ledger's table."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def hold(self, event: Event, now: datetime, due_at: datetime) -> str | None:
        text = event.serialize()
        entity: dict[str, Any] = {
            "PartitionKey": OUTBOX,
            "RowKey": row_key(event.id),
            "EventId": event.id,
            "RequestId": event.subject or "",
            "Type": str(event.type),
            "Sent": "",
            "HeldAt": now,
            "DueAt": due_at,
            "Problem": "",
        }
        for n in range(0, max(1, len(text)), CONTENT_CHUNK):
            entity[f"Event{n // CONTENT_CHUNK}"] = text[n : n + CONTENT_CHUNK]
        # Replace, not merge: a second hold of the same event (a redelivery) starts over,
        # with no chunk or sink left from the first.
        written = await storage_call(self._table.upsert_entity, entity, mode=UpdateMode.REPLACE)
        return _etag(written)

    async def keep(
        self, event_id: str, sent: frozenset[Sink], due_at: datetime, problem: str
    ) -> None:
        entity = {
            "PartitionKey": OUTBOX,
            "RowKey": row_key(event_id),
            "Sent": ",".join(sorted(sent)),
            "DueAt": due_at,
            "Problem": problem[:PROBLEM_CHARS],
        }
        # An update, not an upsert: a row released meanwhile stays released.
        with contextlib.suppress(ResourceNotFoundError):
            await storage_call(
                self._table.update_entity, entity, mode=UpdateMode.MERGE, **RETRY_IDEMPOTENT
            )

    async def release(self, event_id: str, version: str | None) -> None:
        condition: dict[str, Any] = {}
        if version is not None:
            condition = {"etag": version, "match_condition": MatchConditions.IfNotModified}
        # A 404 is no error to the SDK's delete; a 412 means it was held again since.
        with contextlib.suppress(ResourceModifiedError):
            await storage_call(self._table.delete_entity, OUTBOX, row_key(event_id), **condition)

    async def due(self, now: datetime, limit: int) -> list[Held]:
        return await storage_call(self._due, now, limit)

    def _due(self, now: datetime, limit: int) -> list[Held]:
        found = self._table.query_entities(
            "PartitionKey eq @pk and DueAt le @now",
            parameters={"pk": OUTBOX, "now": now},
            results_per_page=min(limit, 1000),
        )
        out: list[Held] = []
        for held in _readable(found):
            out.append(held)
            if len(out) >= limit:
                break
        return out


def _readable(rows: Any) -> Iterator[Held]:
    """The rows as Held events; one that cannot be read is logged and left where it is."""
    for row in rows:
        try:
            yield held_of(row)
        except (KeyError, TypeError, ValueError) as exc:
            log.error(
                "outbox row %s cannot be read (%s): left in the table for on-call",
                row.get("RowKey"),
                exc,
                extra={"eventId": row.get("EventId")},
            )


def held_of(row: Mapping[str, Any]) -> Held:
    """An `~outbox` row as the Held event it keeps."""
    parts = sorted(
        (int(name.removeprefix("Event")), str(value))
        for name, value in row.items()
        if name.startswith("Event") and name.removeprefix("Event").isdigit()
    )
    event = Event.from_json(json.loads("".join(value for _, value in parts)))
    sent = frozenset(Sink(name) for name in str(row.get("Sent") or "").split(",") if name)
    held_at = row["HeldAt"]
    if not isinstance(held_at, datetime):
        raise TypeError(f"HeldAt is not a datetime: {held_at!r}")
    metadata = getattr(row, "metadata", None) or {}
    return Held(event, sent, held_at, metadata.get("etag"), str(row.get("Problem") or ""))


def _etag(metadata: Mapping[str, Any] | None) -> str | None:
    value = (metadata or {}).get("etag")
    return str(value) if value else None


__all__ = ["OUTBOX", "TableOutbox", "held_of", "row_key"]
