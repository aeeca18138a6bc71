"""Which storage account the on-call tool reads, and its bounded reads of the ledger.

The clients come from the app's own factories (`shared.adapters.storage.table_service`,
`shared.adapters.storage.queue_service`): a connection string, or an account's endpoints with the
operator's Entra sign-in (`DefaultAzureCredential`, `az login`). The tool never imports the
local stack: `--local` is the well-known development account of Azurite on the ports of
`make serve` (tests keep the two equal).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import QueueClient

from shared.adapters.ledger import DEAD_LETTERS, PARKED, TableLedger, ensure_table
from shared.adapters.storage import queue_service, table_service
from shared.domain.times import parse_time
from shared.names import QUEUE_REQUESTS, TABLE_REQUESTS
from shared.settings import StorageConnection

# Azurite's development account: name and key are public, documented by Microsoft
# (learn.microsoft.com/azure/storage/common/storage-use-azurite#well-known-storage-account-and-key).
_DEV_ACCOUNT: Final = "devstoreaccount1"
_DEV_KEY: Final = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
LOCAL_STACK_CONNECTION: Final = (
    "DefaultEndpointsProtocol=http;"
    f"AccountName={_DEV_ACCOUNT};AccountKey={_DEV_KEY};"
    f"QueueEndpoint=http://127.0.0.1:10001/{_DEV_ACCOUNT};"
    f"TableEndpoint=http://127.0.0.1:10002/{_DEV_ACCOUNT};"
)
# Storage account names: 3 to 24 lower-case letters and digits. Checked before a URL is
# built from one, so a typo or a crafted name never sends the operator's token elsewhere.
_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
PAGE: Final = 1000  # the most entities one Table query page returns


def account_connection(account: str) -> StorageConnection:
    """The endpoints of storage account `account` in Azure; ValueError for a bad name."""
    if not _ACCOUNT_NAME.fullmatch(account):
        raise ValueError(f"{account!r} is not a storage account name (3-24 a-z, 0-9)")
    return StorageConnection(
        queue_service_uri=f"https://{account}.queue.core.windows.net",
        table_service_uri=f"https://{account}.table.core.windows.net",
    )


@dataclass
class Store:
    """The ledger table and the intake queue of one storage account."""

    table: TableClient
    intake: QueueClient
    tables: TableServiceClient
    closers: list[Any] = field(default_factory=list)

    @classmethod
    def open(cls, connection: StorageConnection) -> Store:
        """Clients for `connection` (nothing is sent yet)."""
        tables = table_service(connection)
        queues = queue_service(connection)
        intake = queues.get_queue_client(QUEUE_REQUESTS)
        table = tables.get_table_client(TABLE_REQUESTS)
        return cls(table, intake, tables, [intake, queues, tables])

    @property
    def ledger(self) -> TableLedger:
        return TableLedger(self.table)

    def close(self) -> None:
        for client in self.closers:
            client.close()


def ensure_table_of(store: Store) -> None:
    """Create the ledger table of a local stack that has not run yet (never in Azure: a
    wrong account would get a table instead of an error)."""
    ensure_table(store.tables)


@dataclass(frozen=True)
class Page:
    """The first `limit` rows in order, and how many rows there were in all."""

    rows: list[dict[str, Any]]
    total: int


_PARKED_COLUMNS: Final = [
    "RequestId",
    "Status",
    "Deadline",
    "NextCheckAt",
    "NotBefore",
    "LastSeen",
]
_KEPT_COLUMNS: Final = [
    "Source",
    "MessageId",
    "Reason",
    "RequestId",
    "Status",
    "HoldUntil",
    "SetAsideAt",
]  # not the kept message's text (up to 32 KiB a row): a listing does not show it


def parked_page(table: TableClient, statuses: Iterable[str], limit: int) -> Page:
    """The parked requests with one of `statuses`, earliest deadline first: the `limit`
    first (0: all) and the count of all.

    The `~parked` index is one partition, keyed by requestId: neither a count nor another
    order is something the Table service answers, so every index row of those statuses is
    read (filtered by the service, a page of 1,000 at a time, only the listed columns) and
    only `limit` of them are kept: memory grows with the limit, not with the backlog."""
    names = sorted(set(statuses))
    if not names:
        return Page([], 0)
    # The SDK substitutes a parameter only when spaces surround it: "( ... )", not "(...)".
    either = " or ".join(f"Status eq @s{n}" for n in range(len(names)))
    rows = table.query_entities(
        f"PartitionKey eq @pk and ( {either} )",
        parameters={"pk": PARKED, **{f"s{n}": name for n, name in enumerate(names)}},
        select=_PARKED_COLUMNS,
        results_per_page=PAGE,
    )
    return _first(
        rows, limit, key=lambda row: (_moment(row.get("Deadline")), str(row.get("RequestId")))
    )


def kept_page(table: TableClient, wanted: Callable[[str], bool], limit: int) -> Page:
    """The kept messages whose status is `wanted`, oldest first: the `limit` first (0: all)
    and the count of all, without reading the messages' text."""
    rows = table.query_entities(
        "PartitionKey eq @pk",
        parameters={"pk": DEAD_LETTERS},
        select=_KEPT_COLUMNS,
        results_per_page=PAGE,
    )
    chosen = (row for row in rows if wanted(str(row.get("Status") or "kept")))
    return _first(
        chosen, limit, key=lambda row: (_moment(row.get("SetAsideAt")), str(row.get("MessageId")))
    )


def kept_of_request(table: TableClient, request_id: str) -> list[dict[str, Any]]:
    """The kept messages of one request (the service filters by `RequestId`)."""
    rows = table.query_entities(
        "PartitionKey eq @pk and RequestId eq @id",
        parameters={"pk": DEAD_LETTERS, "id": request_id},
        select=_KEPT_COLUMNS,
        results_per_page=PAGE,
    )
    return sorted((dict(row) for row in rows), key=lambda row: _moment(row.get("SetAsideAt")))


def _first(rows: Iterable[Any], limit: int, key: Callable[[dict[str, Any]], Any]) -> Page:
    total = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal total
        for row in rows:
            total += 1
            yield dict(row)

    first = heapq.nsmallest(limit, counted(), key=key) if limit else sorted(counted(), key=key)
    return Page(first, total)


_LAST: Final = datetime.max.replace(tzinfo=UTC)


def _moment(value: Any) -> datetime:
    """A stored time for ordering; a missing or unreadable one sorts last."""
    try:
        return parse_time(str(value))
    except ValueError:
        return _LAST
