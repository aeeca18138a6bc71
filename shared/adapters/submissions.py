"""The `Submissions` port on the request ledger's table (`shared.adapters.ledger`): requests
posted over HTTP, and the queue message that takes each over.

A POST writes the request's partition the way a queue message's `open` does, in one
insert-if-absent (`create_entity`: 409 when the row exists): row `request` with `Status`
`queued`, no `Owner` yet, its `Fingerprint` and `SubmittedBy` (the caller's application
id). Whatever got there first, a queue message or another POST, stands.

The message the front door then puts on `user-onboard` must carry the request on, exactly
once however many copies arrive (a repeated POST re-sends one while the request is still
`queued`, in case a crash lost the first). Whoever inserts the partition's `carrier` row
first is that message: an insert is atomic, so two copies handled at once cannot both win,
and the winner's redelivery finds its own id there. Then the request row gets the winner
as its `Owner` and `received` as its status, as if that message had opened it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.ledger import REQUEST_ROW, RETRY_IDEMPOTENT, partition, record_of
from shared.adapters.storage import storage_call
from shared.domain.codes import RequestStatus
from shared.domain.records import RequestRecord
from shared.domain.times import format_time

CARRIER_ROW: Final = "carrier"


class TableSubmissions:
    """`shared.service.ports.Submissions` on the ledger's table client."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def submit(
        self, request_id: str, fingerprint: str, submitted_by: str, now: datetime
    ) -> RequestRecord | None:
        entity = {
            "PartitionKey": partition(request_id),
            "RowKey": REQUEST_ROW,
            "RequestId": request_id,
            "Owner": "",
            "ReceivedAt": format_time(now),
            "Status": str(RequestStatus.QUEUED),
            "Parked": False,
            "UpdatedAt": format_time(now),
            "Fingerprint": fingerprint,
            "SubmittedBy": submitted_by,
        }
        # Retried on a dropped connection: an insert that had landed answers 409 and is
        # read back as our own row (same fingerprint: the same request again).
        try:
            await storage_call(self._table.create_entity, entity, **RETRY_IDEMPOTENT)
            return None
        except ResourceExistsError:
            rows = await storage_call(self._partition, partition(request_id))
            record = record_of(request_id, rows)
            assert record is not None  # the row that was in the way
            return record

    def _partition(self, key: str) -> dict[str, dict[str, object]]:
        found = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": key})
        return {str(row["RowKey"]): dict(row) for row in found}

    async def take_over(self, request_id: str, message_id: str) -> bool:
        carrier = {
            "PartitionKey": partition(request_id),
            "RowKey": CARRIER_ROW,
            "MessageId": message_id,
        }
        try:
            await storage_call(self._table.create_entity, carrier, **RETRY_IDEMPOTENT)
        except ResourceExistsError:
            row = await storage_call(self._table.get_entity, partition(request_id), CARRIER_ROW)
            if str(row.get("MessageId", "")) != message_id:
                return False
        owner = {
            "PartitionKey": partition(request_id),
            "RowKey": REQUEST_ROW,
            "Owner": message_id,
            "Status": str(RequestStatus.RECEIVED),
        }
        await storage_call(
            self._table.upsert_entity, owner, mode=UpdateMode.MERGE, **RETRY_IDEMPOTENT
        )
        return True


__all__ = ["CARRIER_ROW", "TableSubmissions"]
