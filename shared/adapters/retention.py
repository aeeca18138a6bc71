"""`LEDGER_RETENTION` on the ledger's table (contract v1.2, guarantee 9): what the ledger
holds about a request is deleted that long after its terminal event, a bounded number of
index entries per sweep, without ever scanning the table.

**The index**, partition `~expiry`, one row per thing to delete. Its RowKey starts with a
time in a fixed-width UTC form (`2026-11-24T09:00:00.000000Z`), so the Table service's
RowKey order is time order and "everything before T" is one range query on one partition:

- `<time>|r|<request partition>`: a request, at the time of its terminal event (written
  before that event is published, so a request that is closed is always indexed). Its
  expiry deletes the rows its reference rows name, its `~parked` row, then its whole
  partition (whatever rows it holds), the `request` row last.
- `<time>|w|<partition>|<row key>`: one row, at its own time: a message set aside (every
  one: with `RequestId` when it names a request, whose expiry deletes it then, through its
  reference; the entry only covers a request that was never recorded), or another
  feature's row about no request.

**References**: a row about request X kept outside X's partition (a `~deadletter` row
naming X) is named by a row `~ref|<partition>|<row key>` in X's partition (columns
`RefPartition`, `RefRow`), written before the row itself, so a crash never leaves it
unreferenced. `shared.adapters.ledger.record_of` ignores these rows: a partition holding
only references is no request.

**For other features** that keep personal data in this table (an outbox, Teams data):
1. rows about one request in its partition (any RowKey but `request`, `terminal` and
   `~ref|...`) are deleted with it, nothing to do;
2. a row about a request elsewhere: write `reference(request_id, partition, row_key)`
   first, then the row;
3. a row about no request: write `row_entry(partition, row_key, at)`;
4. a row that may still be in use when its time comes: add a predicate to `IN_USE` for its
   partition (it is then looked at again one retention later instead of deleted).

**Rows written before the index existed** (closed requests, kept messages) are indexed by
`index_legacy`: a one-time scan, one page per sweep, of the `terminal` rows and the
`~deadletter` partition, whose progress (the service's continuation keys) is the row
`~legacy` of `~expiry` (after every time key, so never in an expiry range).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.ledger import (
    DEAD_LETTERS,
    PARKED,
    REQUEST_ROW,
    TERMINAL_ROW,
    dead_letter_key,
    partition,
)
from shared.adapters.storage import storage_call
from shared.domain.errors import StorageUnavailable
from shared.domain.records import Expired, SetAside, SetAsideStatus
from shared.domain.times import parse_time

log = logging.getLogger("user_onboarding")

EXPIRY: Final = "~expiry"
LEGACY_MARK: Final = "~legacy"
REF_PREFIX: Final = "~ref|"
TERMINAL_WORDS: Final = frozenset({"licensed", "failed", "rejected"})
_BATCH: Final = 100  # the most operations one table transaction takes


def index_time(moment: datetime) -> str:
    """A time as index keys hold it: fixed width, so text order is time order; to the
    millisecond, as events carry it, so an event read back from the ledger gives the
    same key as when it was decided."""
    moment = moment.astimezone(UTC)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def request_entry(request_id: str, terminal_at: datetime) -> dict[str, Any]:
    """The index entry of a decided request."""
    return {
        "PartitionKey": EXPIRY,
        "RowKey": f"{index_time(terminal_at)}|r|{partition(request_id)}",
        "Kind": "request",
        "RequestId": request_id,
    }


def row_entry(
    table_partition: str, row_key: str, at: datetime, request_id: str | None = None
) -> dict[str, Any]:
    """The index entry of one row, deleted a retention after `at` (unless in use, or
    unless `request_id` is still recorded: it then goes with that request)."""
    return {
        "PartitionKey": EXPIRY,
        "RowKey": f"{index_time(at)}|w|{table_partition}|{row_key}",
        "Kind": "row",
        "RefPartition": table_partition,
        "RefRow": row_key,
        "RequestId": request_id or "",
    }


def reference(request_id: str, table_partition: str, row_key: str) -> dict[str, Any]:
    """A row in the request's partition naming a row about it kept elsewhere."""
    return {
        "PartitionKey": partition(request_id),
        "RowKey": f"{REF_PREFIX}{table_partition}|{row_key}",
        "RefPartition": table_partition,
        "RefRow": row_key,
    }


def _dead_letter_in_use(row: Mapping[str, Any]) -> bool:
    """Held for a replay, being reported, or being replayed: its request needs it."""
    status = str(row.get("Status") or SetAsideStatus.KEPT)
    return status in (SetAsideStatus.HELD, SetAsideStatus.REPORTING, SetAsideStatus.REPLAYING)


# Per partition: whether a row whose time has come is still in use (then kept for now).
IN_USE: Final[dict[str, Callable[[Mapping[str, Any]], bool]]] = {
    DEAD_LETTERS: _dead_letter_in_use,
}


class Verdict(Enum):
    DELETE = "delete"
    KEEP = "keep"  # a later request under the same requestId, or one in progress
    UNPUBLISHED = "unpublished"  # decided, but the ledger does not show it published


def verdict(rows: Mapping[str, Mapping[str, Any]], before: datetime) -> Verdict:
    """Whether a request partition whose index entry is due may be deleted. Its rows are
    deleted `request` last, so a partition cut short by a crash (a closed `request` row
    without its `terminal` row, or references alone) is finished next time."""
    request, terminal = rows.get(REQUEST_ROW), rows.get(TERMINAL_ROW)
    status = str((request or {}).get("Status") or "")
    if terminal is None:
        return Verdict.DELETE if request is None or status in TERMINAL_WORDS else Verdict.KEEP
    if parse_time(str(terminal.get("DecidedAt"))) > before:
        return Verdict.KEEP  # its own, later entry will come
    word = str(json.loads(str(terminal["Event"])).get("type", "")).rsplit(".", 1)[-1]
    if status != word:
        # A crash between deciding and publishing, never replayed: deleting it would let
        # the request be decided again. Left for its replay, which indexes it again.
        return Verdict.UNPUBLISHED
    return Verdict.DELETE


class TableRetention:
    """`shared.service.ports.LedgerRetention` on the ledger's table."""

    def __init__(self, table: TableClient, *, concurrency: int = 8) -> None:
        self._table = table
        self._concurrency = concurrency
        self._legacy_done = False

    async def track_request(self, request_id: str, terminal_at: datetime) -> None:
        await self._put(request_entry(request_id, terminal_at))

    async def track_set_aside(self, item: SetAside, at: datetime) -> None:
        key = dead_letter_key(item.source, item.message_id)
        if item.request_id:
            await self._put(reference(item.request_id, DEAD_LETTERS, key))
        await self._put(row_entry(DEAD_LETTERS, key, at, item.request_id))

    async def _put(self, entity: dict[str, Any]) -> None:
        # Insert-or-replace is a PUT: retried by the SDK after a dropped connection.
        await storage_call(self._table.upsert_entity, entity, mode=UpdateMode.REPLACE)

    async def expire(self, before: datetime, now: datetime, limit: int) -> Expired:
        entries = await storage_call(self._due, index_time(before), limit)
        gate = asyncio.Semaphore(self._concurrency)

        async def one(entry: dict[str, Any]) -> Expired:
            async with gate:
                return await self._isolated(entry, before, now)

        done = await asyncio.gather(*(one(entry) for entry in entries))
        return sum(done, Expired())

    def _due(self, before: str, limit: int) -> list[dict[str, Any]]:
        found = self._table.query_entities(
            "PartitionKey eq @pk and RowKey lt @before",
            parameters={"pk": EXPIRY, "before": before},
            results_per_page=limit,
        )
        return [dict(row) for row in next(found.by_page(), [])][:limit]

    async def _isolated(self, entry: dict[str, Any], before: datetime, now: datetime) -> Expired:
        """One entry; a failure of its own is logged and the entry left for next time."""
        try:
            if entry.get("Kind") == "request":
                return await self._expire_request(entry, before)
            return await self._expire_row(entry, now)
        except StorageUnavailable:
            raise
        except Exception as exc:
            log.warning(
                "ledger retention: index entry %s not handled, left for the next sweep: %s",
                entry.get("RowKey"),
                type(exc).__name__,
            )
            return Expired(kept=1)

    async def _expire_request(self, entry: Mapping[str, Any], before: datetime) -> Expired:
        request_id = str(entry["RequestId"])
        rows = await storage_call(self._partition_rows, partition(request_id))
        judged = verdict(rows, before)
        if judged is not Verdict.DELETE:
            if judged is Verdict.UNPUBLISHED:
                log.warning(
                    "ledger retention: request %s was decided but never published; kept",
                    request_id,
                    extra={"requestId": request_id},
                )
            await self._delete(EXPIRY, str(entry["RowKey"]))
            return Expired(kept=1)
        targets = [
            (str(row["RefPartition"]), str(row["RefRow"]))
            for key, row in rows.items()
            if key.startswith(REF_PREFIX) and row.get("RefPartition") and row.get("RefRow")
        ]
        for target in [*targets, (PARKED, partition(request_id))]:
            await self._delete(*target)
        last = [key for key in (TERMINAL_ROW, REQUEST_ROW) if key in rows]
        for key in [k for k in rows if k not in last] + last:
            await self._delete(partition(request_id), key)
        await self._delete(EXPIRY, str(entry["RowKey"]))
        return Expired(requests=1 if rows else 0, rows=len(rows) + len(targets))

    async def _expire_row(self, entry: Mapping[str, Any], now: datetime) -> Expired:
        table_partition, row_key = str(entry["RefPartition"]), str(entry["RefRow"])
        request_id = str(entry.get("RequestId") or "") or None
        row = await storage_call(self._row, table_partition, row_key)
        if row is not None:
            if request_id is not None and await self._recorded(request_id):
                # Its request is recorded: it goes with it (a reference in the request's
                # partition names it, written before it), not by its own time.
                await self._delete(EXPIRY, str(entry["RowKey"]))
                return Expired()
            if IN_USE.get(table_partition, _never)(row):  # looked at again later
                await self._put(row_entry(table_partition, row_key, now, request_id))
                await self._delete(EXPIRY, str(entry["RowKey"]))
                return Expired(kept=1)
            await self._delete(table_partition, row_key)
            if request_id is not None:
                ref = reference(request_id, table_partition, row_key)
                await self._delete(ref["PartitionKey"], ref["RowKey"])
        await self._delete(EXPIRY, str(entry["RowKey"]))
        return Expired(rows=1 if row is not None else 0)

    async def _recorded(self, request_id: str) -> bool:
        rows = await storage_call(self._partition_rows, partition(request_id))
        return REQUEST_ROW in rows or TERMINAL_ROW in rows

    def _partition_rows(self, key: str) -> dict[str, dict[str, Any]]:
        found = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": key})
        return {str(row["RowKey"]): dict(row) for row in found}

    def _row(self, table_partition: str, row_key: str) -> dict[str, Any] | None:
        try:
            return dict(self._table.get_entity(table_partition, row_key))
        except ResourceNotFoundError:
            return None

    async def _delete(self, table_partition: str, row_key: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):  # gone already: what we wanted
            await storage_call(self._table.delete_entity, table_partition, row_key)

    async def index_legacy(self, limit: int) -> int | None:
        if self._legacy_done:
            return None
        count = await storage_call(self._index_legacy_page, limit)
        self._legacy_done = count is None
        return count

    def _index_legacy_page(self, limit: int) -> int | None:
        """One page of the one-time scan: index what it finds, then move the mark on."""
        mark = self._row(EXPIRY, LEGACY_MARK) or {}
        if mark.get("Done"):
            return None
        # The tables SDK's continuation token is a dict of the next keys (typed as text).
        token: Any = _token_of(mark)
        pages: Any = self._table.query_entities(
            "RowKey eq @terminal or PartitionKey eq @kept",
            parameters={"terminal": TERMINAL_ROW, "kept": DEAD_LETTERS},
            select=["PartitionKey", "RowKey", "DecidedAt", "RequestId", "SetAsideAt"],
            results_per_page=limit,
        ).by_page(continuation_token=token)
        rows = [dict(row) for row in next(pages, [])]
        entries, references = legacy_entries(rows)
        for start in range(0, len(entries), _BATCH):
            operations: list[Any] = [
                ("upsert", entity, {"mode": UpdateMode.REPLACE})
                for entity in entries[start : start + _BATCH]
            ]
            self._table.submit_transaction(operations)
        for entity in references:
            self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        token = pages.continuation_token
        self._table.upsert_entity(
            {
                "PartitionKey": EXPIRY,
                "RowKey": LEGACY_MARK,
                "Done": not token,
                "NextPartitionKey": (token or {}).get("PartitionKey") or "",
                "NextRowKey": (token or {}).get("RowKey") or "",
            },
            mode=UpdateMode.REPLACE,
        )
        return len(rows)


def legacy_entries(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The index entries (and references) for rows written before the index existed: a
    `terminal` row by its decision time, a kept message by the time it was set aside."""
    entries: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    for row in rows:
        key, row_key = str(row["PartitionKey"]), str(row["RowKey"])
        if key == DEAD_LETTERS:
            request_id = str(row.get("RequestId") or "") or None
            at = _moment(row.get("SetAsideAt"))
            entries.append(row_entry(DEAD_LETTERS, row_key, at, request_id))
            if request_id is not None:
                references.append(reference(request_id, DEAD_LETTERS, row_key))
        elif row_key == TERMINAL_ROW and not key.startswith("~"):
            request_id = key.replace("|", "/")  # partition() in reverse: one to one
            entries.append(request_entry(request_id, _moment(row.get("DecidedAt"))))
    return entries, references


def _moment(value: Any) -> datetime:
    """A stored time; one missing or unreadable counts as long ago (it expires first)."""
    try:
        return parse_time(str(value))
    except ValueError:
        return datetime(2000, 1, 1, tzinfo=UTC)


def _token_of(mark: Mapping[str, Any]) -> dict[str, str] | None:
    if not mark.get("NextPartitionKey") and not mark.get("NextRowKey"):
        return None
    return {"PartitionKey": str(mark["NextPartitionKey"]), "RowKey": str(mark["NextRowKey"])}


def _never(row: Mapping[str, Any]) -> bool:
    return False


__all__ = [
    "EXPIRY",
    "IN_USE",
    "REF_PREFIX",
    "TableRetention",
    "index_time",
    "legacy_entries",
    "reference",
    "request_entry",
    "row_entry",
    "verdict",
]
