"""The emulator's local Entra ID issuer: Entra's v2.0 endpoints, tokens and refusals."""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509

from local_stack.graph_emulator import DirectoryFormatError, Emulator, ManualClock, start_emulator

TENANT = "3f0c1a52-7d44-4a8e-9a4b-2b1f6c9e8d01"
OTHER_TENANT = "9b8e7d6c-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
API = "7a1d9c3e-2b4f-4c6a-8e0d-5f3b1a9c7e2d"
HR = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
HR_OID = "aa11bb22-cc33-4d44-8e55-ff6677889900"
NOROLE = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f60"
GUEST = "3e4f5a6b-7c8d-4e9f-8a1b-2c3d4e5f6071"
START = 1_800_000_000.0

IDENTITY: dict[str, Any] = {
    "tenantId": TENANT,
    "api": {"clientId": API, "appRoles": ["Onboarding.Submit", "Onboarding.Read"]},
    "clients": [
        {
            "name": "hr",
            "clientId": HR,
            "objectId": HR_OID,
            "secret": "hr-secret",
            "roles": ["Onboarding.Submit", "Onboarding.Read"],
        },
        {"name": "norole", "clientId": NOROLE, "secret": "norole-secret"},
        {
            "name": "guest",
            "clientId": GUEST,
            "secret": "guest-secret",
            "roles": ["Onboarding.Submit"],
            "tenantId": OTHER_TENANT,
        },
    ],
}


@pytest.fixture
def issuer() -> Iterator[Emulator]:
    with start_emulator({"identity": copy.deepcopy(IDENTITY)}, clock=ManualClock(START)) as em:
        yield em


@pytest.fixture
def http(issuer: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=issuer.authority, timeout=10) as client:
        yield client


def form(**changes: str | None) -> dict[str, str]:
    base = {
        "grant_type": "client_credentials",
        "client_id": HR,
        "client_secret": "hr-secret",
        "scope": f"api://{API}/.default",
    }
    merged = {**base, **changes}
    return {k: v for k, v in merged.items() if v is not None}


def token_of(http: httpx.Client, tenant: str = TENANT, **changes: str | None) -> httpx.Response:
    return http.post(f"/{tenant}/oauth2/v2.0/token", data=form(**changes))


def verified(http: httpx.Client, token: str, tenant: str = TENANT) -> dict[str, Any]:
    """The token's claims, checked against the issuer's published key (times not checked:
    the issuer runs on a manual clock)."""
    keys = http.get(f"/{tenant}/discovery/v2.0/keys").json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(jwt.PyJWK(k) for k in keys if k["kid"] == kid)
    return jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        audience=API,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )


def test_client_credentials_give_an_app_only_v2_token_with_entras_claims(
    issuer: Emulator, http: httpx.Client
) -> None:
    """The answer and every claim are what Entra issues an application for an API."""
    answer = token_of(http)

    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store, no-cache"
    body = answer.json()
    assert (body["token_type"], body["expires_in"], body["ext_expires_in"]) == (
        "Bearer",
        3599,
        3599,
    )
    header = jwt.get_unverified_header(body["access_token"])
    assert (header["alg"], header["typ"], header["kid"]) == (
        "RS256",
        "JWT",
        issuer.identity.signing_kid(),
    )
    claims = verified(http, body["access_token"])
    now = int(START)
    assert claims["aud"] == API
    assert claims["iss"] == f"{issuer.authority}/{TENANT}/v2.0"
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (now - 300, now - 300, now + 3599)
    assert (claims["azp"], claims["azpacr"], claims["idtyp"], claims["ver"]) == (
        HR,
        "1",
        "app",
        "2.0",
    )
    assert claims["oid"] == claims["sub"] == HR_OID
    assert claims["tid"] == TENANT
    assert claims["roles"] == ["Onboarding.Read", "Onboarding.Submit"]
    assert "scp" not in claims
    assert {"aio", "rh", "uti"} <= set(claims)


@pytest.mark.parametrize("resource", [API, f"api://{API}", f"API://{API.upper()}"])
def test_the_api_is_named_by_client_id_or_identifier_uri_and_aud_is_the_client_id(
    http: httpx.Client, resource: str
) -> None:
    """Whatever identifier the scope used, a v2 token's aud is the API's client id."""
    answer = token_of(http, scope=f"{resource}/.default")
    assert answer.status_code == 200
    assert verified(http, answer.json()["access_token"])["aud"] == API


def test_client_secret_basic_authenticates_like_the_form(http: httpx.Client) -> None:
    """The secret may come in an HTTP Basic header (client_secret_basic)."""
    answer = http.post(
        f"/{TENANT}/oauth2/v2.0/token",
        data=form(client_id=None, client_secret=None),
        auth=(HR, "hr-secret"),
    )
    assert answer.status_code == 200


def test_a_client_without_roles_gets_a_token_without_a_roles_claim(http: httpx.Client) -> None:
    """Entra omits `roles` when the application holds none on the API."""
    answer = token_of(http, client_id=NOROLE, client_secret="norole-secret")
    claims = verified(http, answer.json()["access_token"])
    assert "roles" not in claims
    assert claims["azp"] == NOROLE


@pytest.mark.parametrize(
    ("changes", "status", "error", "code"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"client_secret": None}, 401, "invalid_client", 7000218),
        ({"client_id": "00000000-0000-0000-0000-000000000001"}, 400, "unauthorized_client", 700016),
        ({"client_id": None}, 400, "invalid_request", 900144),
        ({"scope": None}, 400, "invalid_request", 900144),
        ({"grant_type": None}, 400, "invalid_request", 900144),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        ({"scope": f"api://{API}/Onboarding.Submit"}, 400, "invalid_scope", 1002012),
        ({"scope": f"api://{API}/.default openid"}, 400, "invalid_scope", 70011),
        ({"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_resource", 500011),
    ],
)
def test_token_requests_are_refused_with_entras_status_error_and_aadsts_code(
    http: httpx.Client, changes: dict[str, str | None], status: int, error: str, code: int
) -> None:
    """Each mistake an integrator makes gets the answer Entra gives it."""
    answer = token_of(http, **changes)

    assert answer.status_code == status
    body = answer.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "\r\nTrace ID: " in body["error_description"]
    assert body["error_uri"].endswith(f"/error?code={code}")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)


def test_a_repeated_parameter_and_a_get_are_refused(http: httpx.Client) -> None:
    """Entra refuses a duplicated form parameter (9000411) and a GET (900561)."""
    duplicated = http.post(
        f"/{TENANT}/oauth2/v2.0/token",
        content=f"client_id={HR}&client_id={HR}&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert duplicated.json()["error_codes"] == [9000411]
    fetched = http.get(f"/{TENANT}/oauth2/v2.0/token")
    assert (fetched.status_code, fetched.json()["error_codes"]) == (400, [900561])


def test_the_correlation_id_echoes_a_client_request_id(http: httpx.Client) -> None:
    """A GUID in `client-request-id` comes back as the error's correlation_id."""
    correlation = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
    answer = http.post(
        f"/{TENANT}/oauth2/v2.0/token",
        data=form(client_secret="wrong"),
        headers={"client-request-id": correlation},
    )
    assert answer.json()["correlation_id"] == correlation


@pytest.mark.parametrize(
    ("method", "path", "error"),
    [
        ("POST", "oauth2/v2.0/token", "invalid_request"),
        ("GET", "discovery/v2.0/keys", "invalid_tenant"),
        ("GET", "v2.0/.well-known/openid-configuration", "invalid_tenant"),
    ],
)
def test_an_unknown_tenant_is_aadsts90002_on_every_endpoint(
    http: httpx.Client, method: str, path: str, error: str
) -> None:
    """A tenant the issuer does not know answers 400 `Tenant '...' not found`."""
    answer = http.request(method, f"/{OTHER_TENANT.replace('9b', '00')}/{path}", data=form())
    assert answer.status_code == 400
    assert answer.json()["error"] == error
    assert answer.json()["error_codes"] == [90002]


def test_the_metadata_document_points_at_the_served_endpoints(
    issuer: Emulator, http: httpx.Client
) -> None:
    """issuer, token_endpoint and jwks_uri are Entra's v2 paths under the issuer base."""
    config = http.get(f"/{TENANT}/v2.0/.well-known/openid-configuration").json()
    base = f"{issuer.authority}/{TENANT}"
    assert config["issuer"] == f"{base}/v2.0"
    assert config["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert config["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "client_secret_basic" in config["token_endpoint_auth_methods_supported"]
    assert httpx.get(config["jwks_uri"]).status_code == 200


def test_a_published_key_is_named_by_its_certificates_thumbprint(
    issuer: Emulator, http: httpx.Client
) -> None:
    """kid = x5t = base64url(SHA-1 of the x5c certificate), whose key is n and e."""
    answer = http.get(f"/{TENANT}/discovery/v2.0/keys")
    (key,) = answer.json()["keys"]
    certificate = base64.b64decode(key["x5c"][0])
    digest = hashlib.sha1(certificate).digest()  # noqa: S324 - x5t is a SHA-1 thumbprint
    thumbprint = base64.urlsafe_b64encode(digest).rstrip(b"=")
    assert key["kid"] == key["x5t"] == thumbprint.decode()
    numbers = x509.load_der_x509_certificate(certificate).public_key().public_numbers()
    assert jwt.PyJWK(key).key.public_numbers() == numbers
    assert (key["kty"], key["use"], key["issuer"]) == (
        "RSA",
        "sig",
        f"{issuer.authority}/{TENANT}/v2.0",
    )
    assert "max-age" in answer.headers["cache-control"]


def test_a_rotated_key_signs_new_tokens_and_the_old_one_stays_until_retired(
    issuer: Emulator, http: httpx.Client
) -> None:
    """After a rotation both keys are published; retiring leaves only the newest."""
    old = issuer.identity.signing_kid()
    rotated = http.post("/_emulator/identity/keys/rotate", json={}).json()
    assert rotated["published"] == [rotated["kid"], old]
    token = token_of(http).json()["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == rotated["kid"]
    verified(http, token)
    retired = http.post("/_emulator/identity/keys/rotate", json={"retirePrevious": True}).json()
    kids = [k["kid"] for k in http.get(f"/{TENANT}/discovery/v2.0/keys").json()["keys"]]
    assert kids == [retired["kid"]]


def test_a_client_of_another_tenant_gets_tokens_from_its_own_tenant_only(
    issuer: Emulator, http: httpx.Client
) -> None:
    """A multi-tenant registration: its token names its tenant in iss and tid."""
    secret = {"client_id": GUEST, "client_secret": "guest-secret"}
    claims = verified(
        http, token_of(http, OTHER_TENANT, **secret).json()["access_token"], OTHER_TENANT
    )
    assert (claims["tid"], claims["iss"]) == (
        OTHER_TENANT,
        f"{issuer.authority}/{OTHER_TENANT}/v2.0",
    )
    assert token_of(http, TENANT, **secret).json()["error_codes"] == [700016]


def test_clients_added_through_the_control_api_get_tokens(http: httpx.Client) -> None:
    """POST /_emulator/identity/clients registers a client; undeclared roles are refused."""
    new = "4f5a6b7c-8d9e-4f0a-8b1c-2d3e4f5a6b7c"
    added = http.post(
        "/_emulator/identity/clients",
        json={
            "name": "late",
            "clientId": new,
            "secret": "late-secret",
            "roles": ["Onboarding.Read"],
        },
    )
    assert added.status_code == 201
    assert "secret" not in added.json()
    answer = token_of(http, client_id=new, client_secret="late-secret")
    assert verified(http, answer.json()["access_token"])["roles"] == ["Onboarding.Read"]
    refused = http.post(
        "/_emulator/identity/clients",
        json={
            "clientId": "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
            "secret": "x",
            "roles": ["Admin"],
        },
    )
    assert refused.status_code == 400
    assert "does not declare" in refused.json()["error"]


def test_the_configuration_is_shown_without_secrets(issuer: Emulator, http: httpx.Client) -> None:
    """GET /_emulator/identity describes tenant, API, clients and keys, never a secret."""
    shown = http.get("/_emulator/identity").json()
    assert shown["issuer"] == f"{issuer.authority}/{TENANT}/v2.0"
    assert shown["api"]["identifierUris"] == [f"api://{API}"]
    assert [c["name"] for c in shown["clients"]] == ["hr", "norole", "guest"]
    assert "secret" not in str(shown)


def test_minted_tokens_change_only_the_claims_asked_for(http: httpx.Client) -> None:
    """POST /_emulator/identity/tokens: claims replaced, null removes one, same key."""
    minted = http.post(
        "/_emulator/identity/tokens",
        json={"client": "hr", "claims": {"scp": "user_impersonation", "idtyp": None}},
    ).json()["access_token"]
    claims = verified(http, minted)
    assert claims["scp"] == "user_impersonation"
    assert "idtyp" not in claims
    assert claims["azp"] == HR


def test_the_issuer_logs_its_requests(http: httpx.Client) -> None:
    """Each endpoint call is logged with its status and client id or AADSTS code."""
    token_of(http)
    token_of(http, client_secret="wrong")
    http.get(f"/{TENANT}/discovery/v2.0/keys")
    log = http.get("/_emulator/identity/requests").json()
    assert [(e["status"], e.get("clientId"), e.get("code")) for e in log] == [
        (200, HR, None),
        (401, None, 7000215),
        (200, None, None),
    ]
    assert http.delete("/_emulator/identity/requests").status_code == 204
    assert http.get("/_emulator/identity/requests").json() == []


def test_reset_reloads_the_identity_section_and_keeps_the_keys(
    issuer: Emulator, http: httpx.Client
) -> None:
    """Clients added since the start are gone after a reset; tokens still verify."""
    kid = issuer.identity.signing_kid()
    issuer.identity.add_client(
        {"name": "temp", "clientId": GUEST.replace("3e", "4e"), "secret": "s"}
    )
    assert http.post("/_emulator/reset").status_code == 204
    with pytest.raises(KeyError):
        issuer.identity.client("temp")
    assert issuer.identity.signing_kid() == kid


def test_without_an_identity_section_no_tenant_exists() -> None:
    """A directory without `identity` issues nothing (AADSTS90002)."""
    with start_emulator({}) as em:
        answer = httpx.post(f"{em.authority}/{TENANT}/oauth2/v2.0/token", data=form())
    assert answer.json()["error_codes"] == [90002]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tenantId": "contoso.onmicrosoft.com"}, "tenantId must be a GUID"),
        (
            {
                "api": {"clientId": API},
                "clients": [{"clientId": HR, "secret": "s", "roles": ["X"]}],
            },
            "does not declare",
        ),
        ({"clients": [IDENTITY["clients"][0], IDENTITY["clients"][0]]}, "declared twice"),
        ({"surprise": 1}, "unknown keys"),
        ({"tokenLifetimeSeconds": 5}, "tokenLifetimeSeconds"),
    ],
)
def test_a_malformed_identity_section_is_refused_at_start(
    change: dict[str, Any], message: str
) -> None:
    """The emulator does not start on an identity section it cannot honour."""
    with pytest.raises(DirectoryFormatError, match=message):
        start_emulator({"identity": {**copy.deepcopy(IDENTITY), **change}})
