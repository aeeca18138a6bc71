"""The app's token validator against the local Entra ID issuer: what gets in, and every
refusal an attacker would try, with its machine-readable reason."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from local_stack.entra_client import TokenRequest, fetch_token
from local_stack.graph_emulator import Emulator, start_emulator
from shared.adapters.access_tokens import (
    AccessTokenError,
    AccessTokenValidator,
    Caller,
    Refusal,
    SigningKeys,
    require_role,
)
from shared.settings import ApiAuthSettings

TENANT = "6b0f3c2e-1d4a-4f5b-9c8e-7a6d5b4c3e2f"
OTHER_TENANT = "0e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b"
API = "d4c3b2a1-0f9e-4d8c-8b7a-6f5e4d3c2b1a"
HR, READER, NOROLE, FOREIGN = (
    "11111111-aaaa-4bbb-8ccc-000000000001",
    "11111111-aaaa-4bbb-8ccc-000000000002",
    "11111111-aaaa-4bbb-8ccc-000000000003",
    "11111111-aaaa-4bbb-8ccc-000000000004",
)
SUBMIT, READ = "Onboarding.Submit", "Onboarding.Read"
IDENTITY: dict[str, Any] = {
    "tenantId": TENANT,
    "api": {"clientId": API, "appRoles": [SUBMIT, READ]},
    "clients": [
        {"name": "hr", "clientId": HR, "secret": "hr-secret", "roles": [SUBMIT]},
        {"name": "reader", "clientId": READER, "secret": "reader-secret", "roles": [READ]},
        {"name": "norole", "clientId": NOROLE, "secret": "norole-secret"},
        {
            "name": "foreign",
            "clientId": FOREIGN,
            "secret": "foreign-secret",
            "roles": [SUBMIT],
            "tenantId": OTHER_TENANT,
        },
    ],
}


class Ticker:
    """A monotonic clock the test moves (the validator's refetch interval)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Iterator[Emulator]:
    with start_emulator({"identity": copy.deepcopy(IDENTITY)}) as emulator:
        yield emulator


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def validator(issuer: Emulator, ticker: Ticker) -> AccessTokenValidator:
    settings = ApiAuthSettings(API, TENANT, issuer.authority)
    return AccessTokenValidator(
        settings, keys=SigningKeys(settings.jwks_uri, monotonic=ticker, refetch_interval=300)
    )


def token_for(issuer: Emulator, client: str) -> str:
    """A token from the issuer's token endpoint, as the client would get it."""
    registered = issuer.identity.client(client)
    return fetch_token(
        TokenRequest(
            issuer.authority,
            registered.tenant_id,
            registered.client_id,
            registered.secret,
            f"api://{API}/.default",
        )
    )


def refusal(validator: AccessTokenValidator, authorization: str | None) -> AccessTokenError:
    with pytest.raises(AccessTokenError) as caught:
        asyncio.run(validator.authenticate(authorization))
    return caught.value


def jwks_fetches(issuer: Emulator) -> int:
    return sum(e["path"].endswith("/discovery/v2.0/keys") for e in issuer.identity.requests())


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


# --------------------------------------------------------------------------- accepted


def test_a_token_from_the_issuer_with_the_role_gets_in(
    issuer: Emulator, validator: AccessTokenValidator
) -> None:
    """The HR system's client-credentials token yields its app id, object id and role."""
    caller = asyncio.run(validator.authenticate(f"Bearer {token_for(issuer, 'hr')}"))

    registered = issuer.identity.client("hr")
    assert caller == Caller(HR, registered.object_id, TENANT, frozenset({SUBMIT}))
    require_role(caller, {SUBMIT})


def test_the_scheme_is_case_insensitive_and_the_blocking_variant_agrees(
    issuer: Emulator, validator: AccessTokenValidator
) -> None:
    """`bearer` works (RFC 6750 schemes are case-insensitive); sync code gets the same caller."""
    token = token_for(issuer, "hr")
    assert validator.authenticate_blocking(f"bearer {token}").app_id == HR


def test_api_uri_audience_and_a_token_without_idtyp_are_accepted(
    issuer: Emulator, validator: AccessTokenValidator
) -> None:
    """aud `api://<client id>` names the same API; idtyp is optional in Entra (no scp = app)."""
    token = issuer.identity.mint("hr", claims={"aud": f"api://{API}", "idtyp": None})
    assert asyncio.run(validator.authenticate(f"Bearer {token}")).app_id == HR


def test_a_reader_holds_only_read_and_the_route_decides(
    issuer: Emulator, validator: AccessTokenValidator
) -> None:
    """The validator returns the roles; require_role refuses Submit, allows Read-or-Submit."""
    caller = asyncio.run(validator.authenticate(f"Bearer {token_for(issuer, 'reader')}"))

    assert caller.roles == frozenset({READ})
    require_role(caller, {READ, SUBMIT})
    with pytest.raises(AccessTokenError) as caught:
        require_role(caller, {SUBMIT})
    assert (caught.value.reason, caught.value.status) == (Refusal.MISSING_ROLE, 403)
    assert caught.value.www_authenticate() == (
        'Bearer error="insufficient_scope", error_description="missing_role"'
    )


def test_a_token_without_any_role_is_authenticated_but_has_no_right(
    issuer: Emulator, validator: AccessTokenValidator
) -> None:
    """An application with no role on the API is known, and refused by every route: 403."""
    caller = asyncio.run(validator.authenticate(f"Bearer {token_for(issuer, 'norole')}"))

    assert caller.roles == frozenset()
    with pytest.raises(AccessTokenError) as caught:
        require_role(caller, {READ, SUBMIT})
    assert caught.value.reason is Refusal.MISSING_ROLE
    assert caught.value.app_id == NOROLE


# --------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, Refusal.MISSING_TOKEN),
        ("", Refusal.MISSING_TOKEN),
        ("Basic aHI6aHItc2VjcmV0", Refusal.UNSUPPORTED_SCHEME),
        ("Token abc.def.ghi", Refusal.UNSUPPORTED_SCHEME),
        ("Bearer", Refusal.MALFORMED_TOKEN),
        ("Bearer garbage", Refusal.MALFORMED_TOKEN),
        ("Bearer a.b.c", Refusal.MALFORMED_TOKEN),
        ("Bearer " + "a" * 20000 + ".b.c", Refusal.MALFORMED_TOKEN),
        (f"Bearer {b64({'alg': 'RS256'})}.{b64({'x': 1})}.sig", Refusal.MALFORMED_TOKEN),
    ],
)
def test_requests_without_a_usable_token_are_401_with_their_reason(
    validator: AccessTokenValidator, authorization: str | None, reason: Refusal
) -> None:
    """No header, another scheme, or not a JWT (no kid) is refused before any key lookup."""
    error = refusal(validator, authorization)
    assert (error.reason, error.status) == (reason, 401)
    assert error.app_id is None


def test_no_header_gets_a_bare_bearer_challenge(validator: AccessTokenValidator) -> None:
    """RFC 6750: without credentials, the challenge carries no error code."""
    assert refusal(validator, None).www_authenticate() == "Bearer"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": -3600, "iat": -7200, "nbf": -7200}, Refusal.EXPIRED),
        ({"nbf": 3600}, Refusal.NOT_YET_VALID),
        ({"iat": 3600}, Refusal.NOT_YET_VALID),
        ({"aud": "0a0a0a0a-0000-4000-8000-000000000000"}, Refusal.WRONG_AUDIENCE),
        ({"aud": "https://graph.microsoft.com"}, Refusal.WRONG_AUDIENCE),
        ({"aud": [API, "0a0a0a0a-0000-4000-8000-000000000000"]}, Refusal.WRONG_AUDIENCE),
        ({"iss": f"https://sts.windows.net/{TENANT}/"}, Refusal.WRONG_ISSUER),
        ({"iss": f"https://login.microsoftonline.com/{TENANT}/v2.0"}, Refusal.WRONG_ISSUER),
        ({"tid": OTHER_TENANT}, Refusal.WRONG_TENANT),
        ({"tid": None}, Refusal.MISSING_CLAIM),
        ({"exp": None}, Refusal.MISSING_CLAIM),
        ({"azp": None}, Refusal.MISSING_CLAIM),
        ({"roles": "Onboarding.Submit"}, Refusal.MALFORMED_TOKEN),
        ({"scp": "user_impersonation", "idtyp": None}, Refusal.DELEGATED_TOKEN),
        ({"idtyp": "user"}, Refusal.DELEGATED_TOKEN),
    ],
)
def test_signed_tokens_with_a_wrong_claim_are_refused_with_its_reason(
    issuer: Emulator, validator: AccessTokenValidator, claims: dict[str, Any], reason: Refusal
) -> None:
    """A correctly signed token still has to be current, for this API, tenant and issuer,
    and an application's."""
    now = int(time.time())
    changes = {
        name: now + value if name in ("exp", "iat", "nbf") and isinstance(value, int) else value
        for name, value in claims.items()
    }
    token = issuer.identity.mint("hr", claims=changes)

    error = refusal(validator, f"Bearer {token}")
    assert error.reason is reason
    assert error.status == (403 if reason is Refusal.DELEGATED_TOKEN else 401)


def test_a_token_from_another_tenant_of_the_issuer_is_wrong_tenant(
    issuer: Emulator, validator: AccessTokenValidator
) -> None:
    """A multi-tenant registration's token from another tenant (its own iss and tid, same
    signing keys, our API as aud) does not get in."""
    error = refusal(validator, f"Bearer {token_for(issuer, 'foreign')}")
    assert (error.reason, error.status, error.app_id) == (Refusal.WRONG_TENANT, 401, FOREIGN)


def test_a_tampered_payload_under_the_original_signature_is_invalid(
    issuer: Emulator, validator: AccessTokenValidator
) -> None:
    """Granting oneself a role by editing the payload breaks the signature."""
    header, payload, signature = parts(token_for(issuer, "norole"))
    forged = f"{b64(header)}.{b64({**payload, 'roles': [SUBMIT]})}.{signature}"
    error = refusal(validator, f"Bearer {forged}")
    assert (error.reason, error.app_id) == (Refusal.INVALID_SIGNATURE, None)


def test_a_token_signed_by_another_key_under_the_issuers_kid_is_invalid(
    issuer: Emulator, validator: AccessTokenValidator
) -> None:
    """An attacker's own RSA key cannot pass for the tenant's key by borrowing its kid."""
    _, payload, _ = parts(token_for(issuer, "hr"))
    own_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        payload, own_key, algorithm="RS256", headers={"kid": issuer.identity.signing_kid()}
    )
    assert refusal(validator, f"Bearer {forged}").reason is Refusal.INVALID_SIGNATURE


def test_alg_none_is_refused_as_an_unsupported_algorithm(
    issuer: Emulator, validator: AccessTokenValidator
) -> None:
    """An unsigned token (`alg: none`, empty signature) never gets in."""
    header, payload, _ = parts(token_for(issuer, "hr"))
    for alg in ("none", "None", "NONE"):
        unsigned = f"{b64({**header, 'alg': alg})}.{b64(payload)}."
        assert refusal(validator, f"Bearer {unsigned}").reason is Refusal.UNSUPPORTED_ALGORITHM


def test_hs256_signed_with_the_issuers_public_key_is_refused(
    issuer: Emulator, validator: AccessTokenValidator
) -> None:
    """Algorithm confusion: an HMAC keyed with the published public key is not accepted."""
    header, payload, _ = parts(token_for(issuer, "hr"))
    signing_input = f"{b64({**header, 'alg': 'HS256'})}.{b64(payload)}"
    mac = hmac.new(issuer.identity.public_pem(), signing_input.encode(), hashlib.sha256)
    forged = f"{signing_input}.{b64(mac.digest())}"
    assert refusal(validator, f"Bearer {forged}").reason is Refusal.UNSUPPORTED_ALGORITHM
    relabelled = f"{b64(header)}.{b64(payload)}.{b64(mac.digest())}"
    assert refusal(validator, f"Bearer {relabelled}").reason is Refusal.INVALID_SIGNATURE


def test_a_kid_the_tenant_never_published_is_unknown_key(
    issuer: Emulator, validator: AccessTokenValidator
) -> None:
    """A made-up kid finds no key: refused, whatever the signature."""
    token = issuer.identity.mint("hr", header={"kid": "made-up-kid"})
    assert refusal(validator, f"Bearer {token}").reason is Refusal.UNKNOWN_KEY


# --------------------------------------------------------------------------- keys


def test_a_key_rotation_is_picked_up_with_one_refetch_and_no_fetch_storm(
    issuer: Emulator, validator: AccessTokenValidator, ticker: Ticker
) -> None:
    """A new kid refetches the JWKS once; within the interval unknown kids fetch nothing;
    after it, the next unknown kid may refetch again."""
    asyncio.run(validator.authenticate(f"Bearer {token_for(issuer, 'hr')}"))
    assert jwks_fetches(issuer) == 1

    ticker.now += 301
    issuer.identity.rotate_key()
    assert asyncio.run(validator.authenticate(f"Bearer {token_for(issuer, 'hr')}")).app_id == HR
    assert jwks_fetches(issuer) == 2

    issuer.identity.rotate_key()
    newest = token_for(issuer, "hr")
    for _ in range(20):
        assert refusal(validator, f"Bearer {newest}").reason is Refusal.UNKNOWN_KEY
        made_up = issuer.identity.mint("hr", header={"kid": f"kid-{_}"})
        assert refusal(validator, f"Bearer {made_up}").reason is Refusal.UNKNOWN_KEY
    assert jwks_fetches(issuer) == 2

    ticker.now += 300
    assert asyncio.run(validator.authenticate(f"Bearer {newest}")).app_id == HR
    assert jwks_fetches(issuer) == 3


def test_concurrent_requests_for_a_new_key_cause_one_fetch(
    issuer: Emulator, validator: AccessTokenValidator
) -> None:
    """Twenty requests arriving together with an uncached kid fetch the JWKS once."""
    token = token_for(issuer, "hr")

    async def all_at_once() -> list[Caller]:
        return await asyncio.gather(*(validator.authenticate(f"Bearer {token}") for _ in range(20)))

    assert {c.app_id for c in asyncio.run(all_at_once())} == {HR}
    assert jwks_fetches(issuer) == 1


def test_keys_are_refreshed_daily_and_known_keys_outlive_a_jwks_outage(
    issuer: Emulator, ticker: Ticker
) -> None:
    """A day-old set is fetched again; if the JWKS is then unreachable, known keys still
    verify (an outage of the keys endpoint does not lock callers out)."""
    settings = ApiAuthSettings(API, TENANT, issuer.authority)
    keys = SigningKeys(settings.jwks_uri, monotonic=ticker, max_age=3600)
    validator = AccessTokenValidator(settings, keys=keys)
    token = token_for(issuer, "hr")
    asyncio.run(validator.authenticate(f"Bearer {token}"))
    ticker.now += 3600
    asyncio.run(validator.authenticate(f"Bearer {token}"))
    assert jwks_fetches(issuer) == 2

    issuer.stop()
    ticker.now += 3600
    assert asyncio.run(validator.authenticate(f"Bearer {token}")).app_id == HR
    assert keys.fetches == 3


def test_keys_that_cannot_be_fetched_are_keys_unavailable_503() -> None:
    """With the issuer unreachable, nothing gets in and the reason says why (503)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    validator = AccessTokenValidator(ApiAuthSettings(API, TENANT, f"http://127.0.0.1:{port}"))
    with start_emulator({"identity": copy.deepcopy(IDENTITY)}) as other:
        token = other.identity.mint("hr")
    error = refusal(validator, f"Bearer {token}")
    assert (error.reason, error.status, error.www_authenticate()) == (
        Refusal.KEYS_UNAVAILABLE,
        503,
        None,
    )


# --------------------------------------------------------------------------- logs


def test_refusals_log_the_reason_and_a_verified_app_id_never_the_token(
    issuer: Emulator, validator: AccessTokenValidator, caplog: pytest.LogCaptureFixture
) -> None:
    """The log names the reason and, once the signature held, the caller's app id."""
    caplog.set_level(logging.INFO, logger="shared.adapters.access_tokens")
    foreign = token_for(issuer, "foreign")
    forged_azp = issuer.identity.mint("hr", header={"kid": "made-up"}, claims={"azp": NOROLE})
    refusal(validator, f"Bearer {foreign}")
    refusal(validator, f"Bearer {forged_azp}")

    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        f"access token refused: reason=wrong_tenant app={FOREIGN}",
        "access token refused: reason=unknown_key app=unverified",
    ]
    for token in (foreign, forged_azp):
        assert all(part not in caplog.text for part in token.split("."))
