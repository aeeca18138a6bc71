"""What an attacker would send to the HTTP front door, over real HTTP through the
development host: each gets its 401 or 403 with a machine-readable reason, and nothing it
sent reaches the queue, the ledger, the events or the logs beyond a record of the refusal.

This stack carries nothing else, so "nothing queued" is checked on the queue itself (its
count holds messages being handled too) and "nothing handled" on the ledger."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from azure.data.tables import TableServiceClient
from cryptography.hazmat.primitives.asymmetric import rsa

from local_stack.stack import LocalStack
from shared.names import TABLE_REQUESTS
from tests.integration.test_access_tokens import b64, parts
from tests.support.http_schemas import assert_valid

pytestmark = pytest.mark.stack

SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"
ROUTE = "/api/onboarding-requests"
OTHER_TENANT = "0e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    directory = json.loads((SAMPLES / "directory.json").read_text(encoding="utf-8"))
    with LocalStack(tmp_path_factory.mktemp("front-door-refusals"), directory) as running:
        running.start_host()
        yield running


@pytest.fixture(scope="module")
def http(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.http_url(), timeout=30) as client:
        yield client


def _minted(**claims: Any) -> Callable[[LocalStack], str]:
    def token(stack: LocalStack) -> str:
        now = int(time.time())
        moments = {"exp", "iat", "nbf"}
        assert stack.graph is not None
        changed = {k: now + v if k in moments else v for k, v in claims.items()}
        return stack.graph.identity.mint("hr", claims=changed)

    return token


def _tampered(stack: LocalStack) -> str:
    """The no-role client's real token, granted Submit by editing the payload."""
    header, payload, signature = parts(stack.token("norole"))
    return f"{b64(header)}.{b64({**payload, 'roles': ['Onboarding.Submit']})}.{signature}"


def _own_key(stack: LocalStack) -> str:
    """The HR client's claims, signed with the attacker's key under the tenant's kid."""
    assert stack.graph is not None
    _, payload, _ = parts(stack.token("hr"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(
        payload, key, algorithm="RS256", headers={"kid": stack.graph.identity.signing_kid()}
    )


def _unsigned(stack: LocalStack) -> str:
    header, payload, _ = parts(stack.token("hr"))
    return f"{b64({**header, 'alg': 'none'})}.{b64(payload)}."


def _hs256(stack: LocalStack) -> str:
    """Algorithm confusion: HMAC keyed with the issuer's published public key."""
    assert stack.graph is not None
    header, payload, _ = parts(stack.token("hr"))
    signing_input = f"{b64({**header, 'alg': 'HS256'})}.{b64(payload)}"
    mac = hmac.new(stack.graph.identity.public_pem(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{b64(mac.digest())}"


def _client(name: str) -> Callable[[LocalStack], str]:
    return lambda stack: stack.token(name)


def _wrong_issuer(stack: LocalStack) -> str:
    tenant = stack.api_settings()["API_TENANT_ID"]
    return _minted(iss=f"https://sts.windows.net/{tenant}/")(stack)


# (case, token maker (None: no Authorization header), status, code)
CASES: list[tuple[str, Callable[[LocalStack], str] | None, int, str]] = [
    ("no token", None, 401, "missing_token"),
    ("expired", _minted(exp=-3600, iat=-7200, nbf=-7200), 401, "expired"),
    ("wrong audience", _minted(aud="0a0a0a0a-0000-4000-8000-000000000000"), 401, "wrong_audience"),
    ("wrong issuer (v1)", _wrong_issuer, 401, "wrong_issuer"),
    ("another tenant", _minted(tid=OTHER_TENANT), 401, "wrong_tenant"),
    ("payload edited", _tampered, 401, "invalid_signature"),
    ("signed by another key", _own_key, 401, "invalid_signature"),
    ("alg none", _unsigned, 401, "unsupported_algorithm"),
    ("HS256 with the public key", _hs256, 401, "unsupported_algorithm"),
    ("a user's token", _minted(scp="user_impersonation", idtyp=None), 403, "delegated_token"),
    ("no role", _client("norole"), 403, "missing_role"),
    ("Read only", _client("reporting"), 403, "missing_role"),
]


def ledger_rows(stack: LocalStack, request_id: str) -> list[dict[str, Any]]:
    assert stack.azurite is not None
    with TableServiceClient.from_connection_string(stack.azurite.connection_string) as tables:
        found = tables.get_table_client(TABLE_REQUESTS).query_entities(
            "PartitionKey eq @pk", parameters={"pk": request_id}
        )
        return [dict(row) for row in found]


@pytest.mark.parametrize(
    ("case", "token", "status", "code"), CASES, ids=[case[0] for case in CASES]
)
def test_a_refused_post_gets_its_reason_and_leaves_nothing_behind_but_the_refusal(
    stack: LocalStack,
    http: httpx.Client,
    case: str,
    token: Callable[[LocalStack], str] | None,
    status: int,
    code: str,
) -> None:
    """401 or 403 with the reason and an RFC 6750 challenge; no message on user-onboard,
    no ledger row, no event; the log has the refusal and nothing of the body or token."""
    n = CASES.index(next(c for c in CASES if c[0] == case))
    request_id, upn = f"REFUSED-{n:02d}", f"refused.person{n:02d}@contoso.com"
    body = {
        "requestId": request_id,
        "userPrincipalName": upn,
        "licenses": [{"skuPartNumber": "MCOEV"}],
    }
    headers = {"Content-Type": "application/json"}
    credential = token(stack) if token else None
    if credential:
        headers["Authorization"] = f"Bearer {credential}"

    answer = http.post(ROUTE, content=json.dumps(body).encode(), headers=headers)

    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert_valid(answer.status_code, answer.json())
    challenge = answer.headers["WWW-Authenticate"]
    if code == "missing_token":
        assert challenge == "Bearer"
    else:
        expected = "insufficient_scope" if status == 403 else "invalid_token"
        assert challenge == f'Bearer error="{expected}", error_description="{code}"'
    assert stack.count("user-onboard") == 0
    assert ledger_rows(stack, request_id) == []
    assert stack.drain_events() == []
    log = stack.host_log()
    assert f"front door submit: {status} {code}" in log
    for secret in (request_id, upn, *(credential.split(".") if credential else [])):
        assert not secret or secret not in log
