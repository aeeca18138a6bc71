"""Who may publish to the stand-in's topic: the credentials Event Grid takes, checked.

Event Grid takes an access key (`aeg-sas-key`), a shared access signature (`aeg-sas-token`,
or `Authorization: SharedAccessSignature ...`) signed with a key, or a Microsoft Entra
token (`Authorization: Bearer`), learn.microsoft.com "Authenticate publishing clients".
Locally there is no Entra, so the bearer token is one fixed development token; the key is
the fixed development key the app sends to a loopback endpoint (azure-core refuses bearer
tokens over plain http, so the app's adapter uses the key header there). A SAS is checked
as Event Grid checks it: the HMAC-SHA256 of `r=<resource>&e=<expiry>` with the key, the
resource being this topic's endpoint, the expiry in the future (the format of
azure-eventgrid's `generate_sas`).

`local_auth=False` models a topic deployed with `disableLocalAuth: true` (this app's
Bicep): keys and signatures are refused, only tokens are taken.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import unquote

from shared.settings import LOCAL_EVENT_GRID_KEY

from .wire import Reply, error

DEFAULT_KEY: Final = LOCAL_EVENT_GRID_KEY
DEFAULT_TOKEN: Final = "local-event-grid-token"  # noqa: S105 - a fixed development token
MISSING: Final = (
    "Request must contain one of the following authorization signature: aeg-sas-token, aeg-sas-key."
)


@dataclass(frozen=True)
class Credentials:
    key: str = DEFAULT_KEY
    token: str = DEFAULT_TOKEN
    local_auth: bool = True


def authenticate(
    headers: Mapping[str, str],
    credentials: Credentials,
    endpoint: str,
    request_id: str,
    now: datetime | None = None,
) -> str | Reply:
    """The kind of credential that was accepted ("key", "sas" or "bearer"), or Event Grid's
    401. `headers` have lower-case names; `endpoint` is this topic's publish URL."""
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].upper()
    key = headers.get("aeg-sas-key")
    sas = headers.get("aeg-sas-token")
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "sharedaccesssignature" and sas is None:
        sas = value.strip()
    if key is not None or sas is not None:
        if not credentials.local_auth:
            return _unauthorized(
                f"Local authentication (access keys and SAS tokens) is disabled for {host}; "
                "publish with a Microsoft Entra token.",
                request_id,
            )
        if key is not None:
            return (
                "key"
                if hmac.compare_digest(key.strip(), credentials.key)
                else _bad_key(host, request_id)
            )
        assert sas is not None
        problem = _sas_problem(sas, credentials.key, endpoint, now or datetime.now(UTC))
        return (
            "sas"
            if problem is None
            else _unauthorized(
                f"The request authorization key is not authorized for {host}. This is due to the "
                f"reason: {problem}",
                request_id,
            )
        )
    if scheme.lower() == "bearer":
        if hmac.compare_digest(value.strip(), credentials.token):
            return "bearer"
        return _unauthorized("Unable to read access token.", request_id)
    if authorization:
        return _unauthorized(
            "Request has an unsupported Authorization scheme (must be SharedAccessSignature "
            "or Bearer).",
            request_id,
        )
    return _unauthorized(MISSING, request_id)


def _unauthorized(message: str, request_id: str) -> Reply:
    return error(401, "Unauthorized", message, request_id)


def _bad_key(host: str, request_id: str) -> Reply:
    return _unauthorized(
        f"The request authorization key is not authorized for {host}. This is due to the "
        "reason: The specified key is not the topic's key.",
        request_id,
    )


def _sas_problem(token: str, key: str, endpoint: str, now: datetime) -> str | None:
    """Why the signature does not let its bearer publish here, or None."""
    unsigned, found, signature = token.partition("&s=")
    fields = dict(part.partition("=")[::2] for part in unsigned.split("&"))
    if not found or "r" not in fields or "e" not in fields:
        return "The SAS token is not of the form r=<resource>&e=<expiry>&s=<signature>."
    try:
        digest = hmac.new(base64.b64decode(key), unsigned.encode("ascii"), hashlib.sha256).digest()
    except (binascii.Error, UnicodeEncodeError):
        return "The SAS token is not of the form r=<resource>&e=<expiry>&s=<signature>."
    if not hmac.compare_digest(base64.b64encode(digest).decode(), unquote(signature)):
        return "The SAS token's signature does not match the topic's key."
    resource = unquote(fields["r"]).split("?", 1)[0].rstrip("/")
    if resource.lower() != endpoint.rstrip("/").lower():
        return f"The SAS token was made for {resource}, not for this topic."
    try:
        expiry = datetime.fromisoformat(unquote(fields["e"]))
    except ValueError:
        return "The SAS token's expiry is not a date."
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    if expiry <= now:
        return "The SAS token has expired."
    return None
