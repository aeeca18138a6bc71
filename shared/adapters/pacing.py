"""`shared.service.ports.PacingStore` on Azure Table storage: one entity in the ledger's
table (`onboardingrequests`, partition `~pacing`, row `graph`: the identity budget),
replaced only if its ETag is unchanged (`If-Match`), created only if absent.

Why a table entity: the storage account is what every instance already has, an entity is
one small request to read or to write, and an ETag-conditional write makes a change
atomic without a lock that a dead process could leave held (a blob lease would make every
other instance wait for the lease to run out). The entity holds no personal data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.storage import storage_call
from shared.domain.pacing import PacingRecord, StoredPacing

PACING: Final = "~pacing"  # no requestId starts with `~`
IDENTITY_BUDGET: Final = "graph"


class TablePacingStore:
    """The shared pacing record, one table entity."""

    def __init__(self, table: TableClient, row: str = IDENTITY_BUDGET) -> None:
        self._table = table
        self._row = row

    async def load(self) -> StoredPacing:
        try:
            entity = await storage_call(self._table.get_entity, PACING, self._row)
        except ResourceNotFoundError:
            return StoredPacing(PacingRecord(), None)
        return StoredPacing(record_of(entity), str(entity.metadata["etag"]))

    async def save(self, record: PacingRecord, version: str | None) -> str | None:
        entity = {
            "PartitionKey": PACING,
            "RowKey": self._row,
            "NextWrite": float(record.next_write),
            "PausedUntil": float(record.paused_until),
            "WritesUntil": float(record.writes_until),
            "Cause": record.cause,
        }
        # A write whose answer was lost (and that the SDK sends again) fails its condition
        # the second time, as if another instance had written: that costs a re-read and
        # the turns it took, nothing more.
        try:
            if version is None:
                written = await storage_call(self._table.create_entity, entity)
            else:
                written = await storage_call(
                    self._table.update_entity,
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=version,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError):
            return None
        return str(written["etag"])


def record_of(entity: Mapping[str, Any]) -> PacingRecord:
    """The record an entity holds; anything unreadable counts as nothing known."""
    return PacingRecord(
        next_write=_seconds(entity.get("NextWrite")),
        paused_until=_seconds(entity.get("PausedUntil")),
        cause=str(entity.get("Cause") or ""),
        writes_until=_seconds(entity.get("WritesUntil")),
    )


def _seconds(value: Any) -> float:
    try:
        seconds = float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return seconds if math.isfinite(seconds) else 0.0
