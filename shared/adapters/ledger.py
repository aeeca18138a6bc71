"""The `RequestLedger` port on Azure Table storage (azure-data-tables), in the same storage
account as the queues (`AzureWebJobsStorage`).

One partition per request (PartitionKey = the requestId, `/` written as `|` because table
keys cannot hold it):

- row `request`: who opened it (`Owner`, the queue message id of its first valid
  delivery; empty while a request posted over HTTP waits for its message, see
  `shared.adapters.submissions`), `ReceivedAt`, the request's `Fingerprint`, and the
  operators' view (`Status`, `Parked`, `Deadline`, `NextCheckAt`, `NotBefore`,
  `LastSeen`, `LastError`, `UserId`, `Sent_<event>`);
- row `terminal`: the decided terminal event (`Event`, its JSON), `DecidedBy`,
  `DecidedAt`. It is only ever *inserted*: the first decision wins, and an insert that
  finds one returns it, so a replay after a crash publishes the same outcome.

Messages the app could not handle are kept in the partition `~deadletter` (no requestId
starts with `~`), one row per source queue and message id, the text split over
`Content0`, `Content1`... (a table string holds at most 32K characters).

The partition `~parked` indexes the requests that are parked (row key: the requestId, with
their `Deadline`), so that "what is waiting, and the earliest deadline" is one partition
query rather than a scan of every request ever seen.

Rows are deleted `LEDGER_RETENTION` after a request's terminal event, by
`shared.adapters.retention` (which also writes the `~expiry` index and the `~ref|` rows of
a request's partition).

Like the queue adapter, every call goes through `shared.storage.storage_call`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError, UpdateMode

from shared.adapters.storage import storage_call
from shared.domain.codes import RequestStatus
from shared.domain.events import Event, carryable
from shared.domain.records import (
    Decided,
    MessageSource,
    ParkedOverview,
    Progress,
    RequestRecord,
    SetAside,
    SetAsideStatus,
)
from shared.domain.times import format_time, parse_time
from shared.names import TABLE_REQUESTS

REQUEST_ROW: Final = "request"
TERMINAL_ROW: Final = "terminal"
DEAD_LETTERS: Final = "~deadletter"
PARKED: Final = "~parked"
CONTENT_CHUNK: Final = 30_000  # characters per table string (at most 32,767 UTF-16 units)

# The tables SDK retries a connection error only for the methods azure-core deems
# idempotent (RetryPolicy: HEAD, GET, PUT, DELETE, OPTIONS, TRACE), never a POST (insert)
# or a PATCH (merge): a write sent on a pooled connection the server had just closed
# ("Connection aborted": RemoteDisconnected, ConnectionResetError; Azurite closes idle
# connections after Node's 5 s keep-alive timeout, Azure's front ends after theirs) raised
# at once and stopped a whole sweep (seen on 2026-12-07 in `make bench` forcedsync, on an
# insert, and in `make ops-demo`, on a merge). The ledger's single inserts and its merges
# are idempotent by design, so they may be retried: a merge writes the same values again;
# an insert that had landed answers 409 the second time and is read back as what it is
# (open: the same Owner, a redelivery of our own message; decide: the decision just
# written; set_aside: already there). Left with the SDK's default: the claim transaction
# (intake only, where the host redelivers the message after an error, and a claim that had
# landed is then found as the message's own) and the conditional status change of a kept
# message (an update that had landed would fail its If-Match the second time).
RETRY_IDEMPOTENT: Final = {
    "retry_on_methods": frozenset(
        {"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST", "PATCH"}
    )
}


def partition(request_id: str) -> str:
    """A requestId as a table key: `/`, which keys cannot hold, becomes `|` (not allowed
    in a requestId, so the mapping is one to one)."""
    return request_id.replace("/", "|")


def ensure_table(service: TableServiceClient) -> None:
    """Create the ledger table if missing (locally; Bicep creates it in Azure)."""
    service.create_table_if_not_exists(TABLE_REQUESTS)


class TableLedger:
    """`shared.ports.RequestLedger` on one Azure table."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def open(
        self, request_id: str, message_id: str, now: datetime, *, fingerprint: str | None = None
    ) -> RequestRecord | None:
        entity = {
            "PartitionKey": partition(request_id),
            "RowKey": REQUEST_ROW,
            "RequestId": request_id,
            "Owner": message_id,
            "ReceivedAt": format_time(now),
            "Status": "received",
            "Parked": False,
            "UpdatedAt": format_time(now),
            "Fingerprint": fingerprint or "",
        }
        try:
            await storage_call(self._table.create_entity, entity, **RETRY_IDEMPOTENT)
            return None
        except ResourceExistsError:
            record = await self.read(request_id)
            if record is None:  # expired (LEDGER_RETENTION) between the two calls
                return await self.open(request_id, message_id, now)
            return record

    async def read(self, request_id: str) -> RequestRecord | None:
        rows = await storage_call(self._partition, partition(request_id))
        return record_of(request_id, rows)

    def _partition(self, key: str) -> dict[str, dict[str, Any]]:
        found = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": key})
        return {str(row["RowKey"]): dict(row) for row in found}

    async def decide(self, request_id: str, decided: Decided) -> Decided:
        try:
            await storage_call(
                self._table.create_entity, _terminal_row(request_id, decided), **RETRY_IDEMPOTENT
            )
            return decided
        except ResourceExistsError:
            row = await storage_call(self._table.get_entity, partition(request_id), TERMINAL_ROW)
            return _decided_of(row)

    async def claim(self, request_id: str, decided: Decided, now: datetime) -> bool:
        request_row = {
            "PartitionKey": partition(request_id),
            "RowKey": REQUEST_ROW,
            "RequestId": request_id,
            "Owner": decided.by,
            "ReceivedAt": format_time(now),
            "Status": decided.event.type.rsplit(".", 1)[-1],
            "Parked": False,
            "UpdatedAt": format_time(now),
        }
        operations: list[Any] = [
            ("create", request_row),
            ("create", _terminal_row(request_id, decided)),
        ]
        try:
            await storage_call(self._table.submit_transaction, operations)
        except TableTransactionError as exc:
            if exc.status_code == 409:  # EntityAlreadyExists: the requestId is in use
                return False
            raise
        return True

    async def note(self, request_id: str, progress: Progress) -> None:
        entity: dict[str, Any] = {
            "PartitionKey": partition(request_id),
            "RowKey": REQUEST_ROW,
            "RequestId": request_id,
            "Status": progress.status,
            "Parked": progress.parked,
        }
        for name, moment in (
            ("Deadline", progress.deadline),
            ("NextCheckAt", progress.next_check_at),
            ("NotBefore", progress.not_before),
        ):
            if moment is not None:
                entity[name] = format_time(moment)
        if progress.last_seen is not None:
            entity["LastSeen"] = progress.last_seen
        entity["LastError"] = (
            json.dumps(carryable(progress.last_error)) if progress.last_error else ""
        )
        # Written every time: a request no longer blocked shows no stale reason.
        entity["Reason"] = json.dumps(carryable(progress.reason)) if progress.reason else ""
        if progress.user_id is not None:
            entity["UserId"] = progress.user_id
        for word, moment in progress.sent.items():
            entity[f"Sent_{word}"] = format_time(moment)
        await storage_call(
            self._table.upsert_entity, entity, mode=UpdateMode.MERGE, **RETRY_IDEMPOTENT
        )
        if progress.parked:
            index = {
                "PartitionKey": PARKED,
                "RowKey": partition(request_id),
                "RequestId": request_id,
                "Status": progress.status,
                "Deadline": _text_time(progress.deadline),
                "NextCheckAt": _text_time(progress.next_check_at),
                "NotBefore": _text_time(progress.not_before),
                "LastSeen": progress.last_seen or "",
            }
            await storage_call(self._table.upsert_entity, index, mode=UpdateMode.REPLACE)

    async def close(self, request_id: str, status: RequestStatus) -> None:
        row = {
            "PartitionKey": partition(request_id),
            "RowKey": REQUEST_ROW,
            "Status": status,
            "Parked": False,
        }
        await storage_call(
            self._table.upsert_entity, row, mode=UpdateMode.MERGE, **RETRY_IDEMPOTENT
        )
        with contextlib.suppress(ResourceNotFoundError):
            await storage_call(self._table.delete_entity, PARKED, partition(request_id))

    async def parked(self) -> ParkedOverview:
        rows = await storage_call(self._parked_deadlines)
        deadlines = [parse_time(str(d)) for d in rows if d]
        return ParkedOverview(len(rows), min(deadlines) if deadlines else None)

    def _parked_deadlines(self) -> list[str]:
        found = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": PARKED}, select=["Deadline"]
        )
        return [str(row.get("Deadline") or "") for row in found]

    async def set_aside(self, item: SetAside, now: datetime) -> None:
        content = carryable(item.content)
        entity: dict[str, Any] = {
            "PartitionKey": DEAD_LETTERS,
            "RowKey": dead_letter_key(item.source, item.message_id),
            "Source": item.source,
            "MessageId": item.message_id,
            "Reason": carryable(item.reason)[:CONTENT_CHUNK],
            "RequestId": item.request_id or "",
            "Status": item.status,
            "HoldUntil": format_time(item.hold_until) if item.hold_until else "",
            "SetAsideAt": format_time(now),
        }
        for n in range(0, max(1, len(content)), CONTENT_CHUNK):
            entity[f"Content{n // CONTENT_CHUNK}"] = content[n : n + CONTENT_CHUNK]
        with contextlib.suppress(ResourceExistsError):  # set aside already, by an earlier try
            await storage_call(self._table.create_entity, entity, **RETRY_IDEMPOTENT)

    async def set_aside_items(self, *, statuses: Sequence[SetAsideStatus] = ()) -> list[SetAside]:
        rows = await storage_call(self._dead_letters)
        items = [set_aside_of(row) for row in rows]
        return [i for i in items if not statuses or i.status in statuses]

    def _dead_letters(self) -> list[dict[str, Any]]:
        found = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": DEAD_LETTERS})
        return [dict(row) | {"_etag": row.metadata.get("etag")} for row in found]

    async def move(self, item: SetAside, status: SetAsideStatus) -> bool:
        entity = {
            "PartitionKey": DEAD_LETTERS,
            "RowKey": dead_letter_key(item.source, item.message_id),
            "Status": status,
        }
        condition: dict[str, Any] = {}
        if item.etag is not None:  # otherwise: whatever it is now
            condition = {"etag": item.etag, "match_condition": MatchConditions.IfNotModified}
        try:
            await storage_call(
                self._table.update_entity, entity, mode=UpdateMode.MERGE, **condition
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True


def dead_letter_key(source: str, message_id: str) -> str:
    return f"{source}-{message_id}".replace("/", "|")


def set_aside_of(row: Mapping[str, Any]) -> SetAside:
    """A `~deadletter` row as the SetAside it keeps."""
    return SetAside(
        source=MessageSource(str(row.get("Source") or MessageSource.POISON)),
        message_id=str(row.get("MessageId", "")),
        content=dead_letter_content(row),
        reason=str(row.get("Reason", "")),
        request_id=str(row.get("RequestId") or "") or None,
        status=SetAsideStatus(str(row.get("Status") or SetAsideStatus.KEPT)),
        hold_until=_time(row.get("HoldUntil")),
        set_aside_at=_time(row.get("SetAsideAt")),
        etag=row.get("_etag"),
    )


def record_of(request_id: str, rows: Mapping[str, Mapping[str, Any]]) -> RequestRecord | None:
    """A request's two rows as a RequestRecord (None when neither exists: other rows of
    its partition, such as the retention's references, are not a request)."""
    if REQUEST_ROW not in rows and TERMINAL_ROW not in rows:
        return None
    request = rows.get(REQUEST_ROW, {})
    terminal = rows.get(TERMINAL_ROW)
    decided = _decided_of(terminal) if terminal is not None else None
    received = request.get("ReceivedAt") or (terminal or {}).get("DecidedAt")
    last_error = request.get("LastError")
    progress = Progress(
        status=RequestStatus(str(request.get("Status") or RequestStatus.RECEIVED)),
        parked=bool(request.get("Parked")),
        deadline=_time(request.get("Deadline")),
        next_check_at=_time(request.get("NextCheckAt")),
        not_before=_time(request.get("NotBefore")),
        last_seen=request.get("LastSeen") or None,
        last_error=json.loads(last_error) if last_error else None,
        user_id=request.get("UserId") or None,
        reason=json.loads(request["Reason"]) if request.get("Reason") else None,
        sent={
            name.removeprefix("Sent_"): parse_time(str(value))
            for name, value in request.items()
            if name.startswith("Sent_")
        },
    )
    return RequestRecord(
        request_id=request_id,
        owner=str(request.get("Owner") or ""),
        received_at=parse_time(str(received)),
        progress=progress,
        decided=decided,
        fingerprint=request.get("Fingerprint") or None,
        submitted_by=request.get("SubmittedBy") or None,
    )


def dead_letter_content(row: Mapping[str, Any]) -> str:
    """The kept message text of a `~deadletter` row."""
    parts = sorted(
        (int(name.removeprefix("Content")), str(value))
        for name, value in row.items()
        if name.startswith("Content") and name.removeprefix("Content").isdigit()
    )
    return "".join(value for _, value in parts)


def _terminal_row(request_id: str, decided: Decided) -> dict[str, Any]:
    return {
        "PartitionKey": partition(request_id),
        "RowKey": TERMINAL_ROW,
        "Event": decided.event.serialize(),
        "DecidedBy": decided.by,
        "DecidedAt": format_time(decided.event.time),
    }


def _decided_of(row: Mapping[str, Any]) -> Decided:
    return Decided(Event.from_json(json.loads(str(row["Event"]))), str(row.get("DecidedBy", "")))


def _text_time(moment: datetime | None) -> str:
    return format_time(moment) if moment is not None else ""


def _time(value: Any) -> datetime | None:
    return parse_time(str(value)) if value else None


__all__ = [
    "DEAD_LETTERS",
    "TableLedger",
    "dead_letter_content",
    "dead_letter_key",
    "ensure_table",
    "partition",
    "record_of",
]
