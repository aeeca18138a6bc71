"""A client-credentials token request, as an HR system makes it to Microsoft Entra ID.

Standard library only, because MSAL and azure-identity accept only https authorities and
the local issuer (the Graph emulator) speaks http on 127.0.0.1. The request is the one
they send: `POST <authority>/<tenant>/oauth2/v2.0/token` with `grant_type`,
`client_id`, `client_secret` and `scope=<API>/.default` in a form body.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode


class TokenRequestError(Exception):
    """The token service refused: its status and Entra's error body (`error`,
    `error_codes`, `error_description`)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        description = str(body.get("error_description", "")).split("\r\n", 1)[0]
        super().__init__(f"{status} {body.get('error', '?')}: {description}")


@dataclass(frozen=True)
class TokenRequest:
    """Everything a client needs to ask for an app-only token for the API."""

    authority: str  # e.g. http://127.0.0.1:8765 (API_AUTHORITY)
    tenant_id: str
    client_id: str
    client_secret: str
    scope: str  # e.g. api://<API client id>/.default

    @property
    def url(self) -> str:
        return f"{self.authority.rstrip('/')}/{self.tenant_id}/oauth2/v2.0/token"

    def form(self) -> bytes:
        return urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "scope": self.scope,
            }
        ).encode("ascii")


def fetch_token(request: TokenRequest, timeout: float = 10.0) -> str:
    """The access token, or TokenRequestError with the service's answer."""
    http_request = urllib.request.Request(  # noqa: S310 - the authority comes from our settings
        request.url,
        data=request.form(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(http_request, timeout=timeout) as answer:  # noqa: S310
            body: dict[str, Any] = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        try:
            refusal = json.loads(error.read())
        except ValueError:
            refusal = {}
        raise TokenRequestError(error.code, refusal if isinstance(refusal, dict) else {}) from None
    return str(body["access_token"])
