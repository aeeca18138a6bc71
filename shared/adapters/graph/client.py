"""An HTTP client and a request adapter for Graph: the app's managed identity
(azure-identity) in Azure, the fixed development token for a loopback emulator."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    AuthenticationProvider,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory

from shared.settings import LOCAL_GRAPH_TOKEN

GRAPH_SCOPE: Final = "https://graph.microsoft.com/.default"


class _FixedToken(AccessTokenProvider):  # type: ignore[misc]  # kiota is untyped here
    """The local emulator's development token, only ever sent to loopback hosts."""

    def __init__(self, host: str) -> None:
        self._hosts = AllowedHostsValidator([host])

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        return LOCAL_GRAPH_TOKEN

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._hosts


def build_adapter(
    base_url: str,
    *,
    local: bool,
    client_id: str | None = None,
    http: httpx.AsyncClient,
) -> GraphRequestAdapter:
    """A request adapter for `base_url`."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    auth: AuthenticationProvider
    if local:
        auth = BaseBearerTokenAuthenticationProvider(_FixedToken(parts.hostname))
    else:
        from azure.identity import DefaultAzureCredential

        # The sync credential: azure-identity's async one would need aiohttp. Tokens are
        # cached by the credential, so the blocking call is rare.
        credential = DefaultAzureCredential(managed_identity_client_id=client_id)
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=[GRAPH_SCOPE], allowed_hosts=[parts.hostname]
        )
    # The SDK's own retries sleep as long as Retry-After says (up to 3 minutes): turned
    # off here; GraphSender retries briefly itself and leaves long waits to the queue.
    client = GraphClientFactory.create_with_default_middleware(
        client=http,
        options={RetryHandlerOption.get_key(): RetryHandlerOption(should_retry=False)},
    )
    adapter = GraphRequestAdapter(auth, client=client)
    adapter.base_url = base_url
    return adapter
