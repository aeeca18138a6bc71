"""What the app's instances share about Graph's throttling budget: one small record, kept in
the storage account every instance already uses (docs/architecture.md, "One budget,
however many instances"). Times are seconds since the epoch (UTC), the one clock every
instance reads the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

CAUSE_CHARS: Final = 300  # Graph's words about the latest 429, kept short


@dataclass(frozen=True)
class PacingRecord:
    """The identity budget's schedule, as the app's instances agreed on it.

    `next_write` is the write budget's theoretical arrival time (the generic cell rate
    algorithm's TAT): write turns are handed out from it, one per interval. `writes_until`
    holds the writes after a 429 on a write (Graph's `Retry-After`); `paused_until` holds
    every call (reads too) after a 429 on a read: the resource-unit budget covers them
    all. `cause` is Graph's answer that set the latest pause, for the calls it holds back."""

    next_write: float = 0.0
    paused_until: float = 0.0
    cause: str = ""
    writes_until: float = 0.0


@dataclass(frozen=True)
class StoredPacing:
    """The record and the store's version of it (an ETag; None while nothing is stored)."""

    record: PacingRecord
    version: str | None
