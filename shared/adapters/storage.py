"""Calls to the storage account (queues and tables), made in one way: the synchronous SDK
in a worker thread (so the event loop keeps serving Graph calls), and an outage
translated into `StorageUnavailable` here and nowhere else.

An outage is what says nothing about the message at hand: no connection, a timeout, a 5xx,
or the account throttling us (503 ServerBusy, 429). A 4xx is about the message or entity
(too large, a stale pop receipt, an entity that exists) and stays the SDK's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from shared.domain.errors import StorageUnavailable
from shared.settings import StorageConnection

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

T = TypeVar("T")
Service = TypeVar("Service", QueueServiceClient, TableServiceClient)


def queue_service(connection: StorageConnection) -> QueueServiceClient:
    """A client for the queues of the Functions storage account (AzureWebJobsStorage)."""
    return _service(QueueServiceClient, connection, connection.queue_service_uri)


def table_service(connection: StorageConnection) -> TableServiceClient:
    """A client for the tables of the Functions storage account (AzureWebJobsStorage)."""
    return _service(TableServiceClient, connection, connection.table_service_uri)


def _service(kind: type[Service], connection: StorageConnection, uri: str | None) -> Service:
    """A connection string (keys, or the local emulator), else the identity-based URI."""
    if connection.connection_string is not None:
        return kind.from_connection_string(connection.connection_string)
    assert uri is not None
    return kind(uri, credential=identity_credential(connection))


def is_outage(error: BaseException) -> bool:
    if isinstance(error, ServiceRequestError | ServiceResponseError | ConnectionError):
        return True
    if isinstance(error, HttpResponseError):
        status = error.status_code
        return status is None or status >= 500 or status in (408, 429)
    return False


def identity_credential(connection: StorageConnection) -> TokenCredential:
    """The credential of an identity-based connection (`AzureWebJobsStorage__credential`
    `managedidentity` with `__clientId`, as the Functions host reads it; otherwise
    `DefaultAzureCredential`, e.g. the operator's own sign-in for `python -m ops`)."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if connection.credential == "managedidentity":
        return ManagedIdentityCredential(client_id=connection.client_id)
    return DefaultAzureCredential()


async def storage_call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one storage SDK call in a thread; StorageUnavailable when storage is out."""
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except Exception as exc:
        if is_outage(exc):
            raise StorageUnavailable(f"{type(exc).__name__}: {str(exc)[:300]}") from exc
        raise
