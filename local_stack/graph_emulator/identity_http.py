"""Entra ID's v2.0 endpoints at Entra's paths, and the issuer's control API.

`route` answers, or returns None for a path that is not the issuer's:

- `POST /{tenant}/oauth2/v2.0/token`: the client credentials grant (`client_id` and
  `client_secret` in the form body, or HTTP Basic; `scope=<API client id or Application
  ID URI>/.default`). Refusals carry Entra's status, OAuth `error`, AADSTS code and
  message (learn.microsoft.com "Microsoft Entra authentication and authorization error
  codes"; the message texts as Entra returns them in public issue reports): unknown
  tenant 400 `invalid_request` 90002, GET 400 `invalid_request` 900561, a missing
  parameter 400 `invalid_request` 900144, a repeated one 400 `invalid_request` 9000411,
  another grant 400 `unsupported_grant_type` 70003, unknown client 400
  `unauthorized_client` 700016, no secret 401 `invalid_client` 7000218, a wrong secret 401
  `invalid_client` 7000215, a scope without `/.default` 400 `invalid_scope` 1002012,
  several scopes 400 `invalid_scope` 70011, an unknown resource 400 `invalid_resource`
  500011. The body is Entra's: `error`, `error_description` ("AADSTSn: ... Trace ID ...
  Correlation ID ... Timestamp ..."), `error_codes`, `timestamp`, `trace_id`,
  `correlation_id` (the `client-request-id` header when it is a GUID) and `error_uri`.
- `GET /{tenant}/discovery/v2.0/keys`: the JWKS (every published key).
- `GET /{tenant}/v2.0/.well-known/openid-configuration`: the v2 metadata document.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from .errors import DirectoryFormatError
from .identity import Client, IdentityIssuer

Reply = tuple[int, Any, dict[str, str]]
CONTROL_PATH = "/_emulator/identity"
TOKEN_HEADERS = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
_ENTRA_PATH = re.compile(
    r"/(?P<tenant>[^/]+)/(?:(?P<token>oauth2/v2\.0/token)|(?P<keys>discovery/v2\.0/keys)"
    r"|(?P<config>v2\.0/\.well-known/openid-configuration))/?"
)
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_CONSENT_HINT = (
    "This can happen if the application has not been installed by the administrator of the "
    "tenant or consented to by any user in the tenant."
)


class EntraError(Exception):
    """A refusal of Entra's token service: HTTP status, OAuth error, AADSTS code, text."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description

    def body(self, base_url: str, correlation_id: str) -> dict[str, Any]:
        timestamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.description}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{base_url}/error?code={self.code}",
        }


def route(
    issuer: IdentityIssuer, method: str, path: str, headers: Mapping[str, str], raw: bytes
) -> Reply | None:
    """Answer an issuer path (Entra's or the control API's); None for any other path."""
    if path == CONTROL_PATH or path.startswith(CONTROL_PATH + "/"):
        segments = [unquote(s) for s in path[len(CONTROL_PATH) :].split("/") if s]
        return control(issuer, method, segments, raw)
    match = _ENTRA_PATH.fullmatch(path)
    if match is None:
        return None
    tenant = unquote(match["tenant"]).lower()
    given = headers.get("client-request-id", "")
    correlation = given.lower() if _GUID.fullmatch(given) else str(uuid.uuid4())
    try:
        if tenant not in issuer.tenants():
            raise EntraError(
                400,
                "invalid_request" if match["token"] else "invalid_tenant",
                90002,
                _tenant_not_found(tenant),
            )
        client_id: str | None = None
        if match["token"]:
            body, client_id = token(issuer, method, tenant, headers, raw)
        elif match["keys"]:
            body = issuer.jwks(tenant)
        else:
            body = openid_configuration(issuer, tenant)
    except EntraError as error:
        issuer.record({"method": method, "path": path, "status": error.status, "code": error.code})
        return error.status, error.body(issuer.base_url, correlation), dict(TOKEN_HEADERS)
    status = 200
    issuer.record({"method": method, "path": path, "status": status, "clientId": client_id})
    extra = {"client-request-id": correlation, **TOKEN_HEADERS}
    if match["keys"]:
        extra = {"Cache-Control": "max-age=86400, private"}
    return status, body, extra


def _tenant_not_found(tenant: str) -> str:
    return (
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, this "
        "may happen if there are no active subscriptions for the tenant."
    )


def token(
    issuer: IdentityIssuer, method: str, tenant: str, headers: Mapping[str, str], raw: bytes
) -> tuple[dict[str, Any], str]:
    """The client credentials grant: the answer and the client's id; EntraError for every
    refusal."""
    if method != "POST":
        raise EntraError(
            400,
            "invalid_request",
            900561,
            f"The endpoint only accepts POST, OPTIONS requests. Received a {method} request.",
        )
    form = _form(raw)
    grant = _required(form, "grant_type")
    if grant != "client_credentials":
        raise EntraError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )
    basic_id, basic_secret = _basic(headers.get("authorization", ""))
    client_id = form.get("client_id") or basic_id
    if not client_id:
        raise _missing("client_id")
    scope = _required(form, "scope")
    client = _client(issuer, client_id, tenant)
    secret = form.get("client_secret") or basic_secret
    if not secret:
        raise EntraError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: "
            "'client_assertion' or 'client_secret'.",
        )
    if secret != client.secret:
        raise EntraError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the "
            "request is the client secret value, not the client secret ID, for a "
            f"secret added to app '{client.client_id}'.",
        )
    _check_scope(issuer, scope, tenant)
    assert issuer.config is not None
    lifetime = issuer.config.lifetime
    answer = {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": issuer.sign(issuer.claims_for(client, tenant)),
    }
    return answer, client.client_id


def _form(raw: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        pairs = []
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise EntraError(
                400,
                "invalid_request",
                9000411,
                f"The request is not properly formatted. The parameter '{name}' is duplicated.",
            )
        form[name] = value
    return form


def _missing(name: str) -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise _missing(name)
    return value


def _basic(authorization: str) -> tuple[str, str]:
    """client_secret_basic: `Authorization: Basic base64(id:secret)`."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)


def _client(issuer: IdentityIssuer, client_id: str, tenant: str) -> Client:
    try:
        client = issuer.client(client_id.lower())
    except KeyError:
        client = None
    if client is None or client.client_id != client_id.lower() or client.tenant_id != tenant:
        raise EntraError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the "
            f"directory '{tenant}'. {_CONSENT_HINT} You may have sent your "
            "authentication request to the wrong tenant.",
        )
    return client


def _check_scope(issuer: IdentityIssuer, scope: str, tenant: str) -> None:
    scopes = scope.split()
    if len(scopes) != 1:
        raise EntraError(
            400,
            "invalid_scope",
            70011,
            "The provided request must include a 'scope' input parameter. The "
            "provided value for the input parameter 'scope' is not valid. The "
            f"scope {scope} is not valid.",
        )
    if not scope.endswith("/.default"):
        raise EntraError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential "
            "flows must have a scope value with /.default suffixed to the resource "
            "identifier (application ID URI).",
        )
    resource = scope[: -len("/.default")]
    assert issuer.config is not None
    names = {issuer.config.api_client_id, *(u.lower() for u in issuer.config.identifier_uris)}
    if resource.lower() not in names:
        raise EntraError(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {resource} was not found in the tenant "
            f"named {tenant}. {_CONSENT_HINT} You might have sent your "
            "authentication request to the wrong tenant.",
        )


def openid_configuration(issuer: IdentityIssuer, tenant: str) -> dict[str, Any]:
    """The v2.0 metadata document, with Entra's fields (only the token and keys endpoints
    are served here)."""
    base = f"{issuer.base_url}/{tenant}"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer.issuer(tenant),
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "cloud_instance_name",
            "cloud_instance_host_name",
            "cloud_graph_host_name",
            "msgraph_host",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "kerberos_endpoint": f"{base}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


# --------------------------------------------------------------------------- control API


def control(issuer: IdentityIssuer, method: str, segments: list[str], raw: bytes) -> Reply:
    """`/_emulator/identity[...]`: GET the configuration, POST clients, rotate keys, mint
    tokens for tests, read or clear the issuer's request log."""
    try:
        body: Any = json.loads(raw) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return 400, {"error": "the body is not valid JSON"}, {}
    shape = (method, "/".join(segments))
    try:
        if shape == ("GET", ""):
            return 200, issuer.describe(), {}
        if shape == ("POST", "clients"):
            return 201, issuer.add_client(_object(body)), {}
        if shape == ("POST", "keys/rotate"):
            retire = bool(_object(body).get("retirePrevious", False))
            return 200, issuer.rotate_key(retire_previous=retire), {}
        if shape == ("POST", "tokens"):
            return 200, _mint(issuer, _object(body)), {}
        if shape == ("GET", "requests"):
            return 200, issuer.requests(), {}
        if shape == ("DELETE", "requests"):
            issuer.clear_requests()
            return 204, None, {}
    except DirectoryFormatError as error:
        return 400, {"error": str(error)}, {}
    except KeyError as error:
        return 404, {"error": f"no client {error.args[0]}"}, {}
    return 404, {"error": f"no identity control route {method} /{'/'.join(segments)}"}, {}


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise DirectoryFormatError("a JSON object body is required")
    return body


def _mint(issuer: IdentityIssuer, spec: dict[str, Any]) -> dict[str, Any]:
    claims, header = spec.get("claims", {}), spec.get("header", {})
    if not isinstance(claims, dict) or not isinstance(header, dict):
        raise DirectoryFormatError("claims and header must be objects")
    tenant = spec.get("tenantId")
    access_token = issuer.mint(
        str(spec.get("client", "")),
        claims=claims,
        header=header,
        tenant_id=str(tenant).lower() if tenant else None,
    )
    return {"access_token": access_token}
