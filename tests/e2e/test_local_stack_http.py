"""LocalStack's HTTP side: the host's HTTP root, the app pointed at the emulator's issuer,
and tokens for the sample clients."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_stack.entra_client import TokenRequestError
from local_stack.stack import LocalStack
from shared.adapters.access_tokens import AccessTokenValidator, Caller
from shared.settings import Settings

pytestmark = pytest.mark.stack

SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"
DIRECTORY: dict[str, Any] = json.loads((SAMPLES / "directory.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("http-stack"), copy.deepcopy(DIRECTORY)) as running:
        running.start_host()
        yield running


def caller_of(stack: LocalStack, token: str) -> Caller:
    """Who the app would see, validating with the settings the app is given."""
    auth = Settings.from_env(stack.app_environment()).api_auth
    assert auth is not None
    return asyncio.run(AccessTokenValidator(auth).authenticate(f"Bearer {token}"))


def test_the_host_serves_http_on_the_url_the_stack_gives(stack: LocalStack) -> None:
    """http_url() waits for the host's port; the host answers there (404: no such route)."""
    answer = httpx.get(f"{stack.http_url()}/api/no-such-route", timeout=30)
    assert (answer.status_code, answer.content) == (404, b"")


def test_the_app_is_pointed_at_the_emulators_issuer(stack: LocalStack) -> None:
    """API_AUDIENCE, API_TENANT_ID and API_AUTHORITY name the directory's API and tenant."""
    assert stack.graph is not None
    identity = DIRECTORY["identity"]
    assert stack.api_settings() == {
        "API_AUDIENCE": identity["api"]["clientId"],
        "API_TENANT_ID": identity["tenantId"],
        "API_AUTHORITY": stack.graph.authority,
    }
    assert stack.app_environment()["API_AUTHORITY"] == stack.graph.authority


@pytest.mark.parametrize(
    ("client", "roles"),
    [("hr", {"Onboarding.Submit"}), ("reporting", {"Onboarding.Read"}), ("norole", set())],
)
def test_a_sample_clients_token_carries_its_roles(
    stack: LocalStack, client: str, roles: set[str]
) -> None:
    """stack.token(client) gets a real client-credentials token the app's validator accepts."""
    caller = caller_of(stack, stack.token(client))
    assert caller.roles == roles
    assert caller.app_id == next(
        c["clientId"] for c in DIRECTORY["identity"]["clients"] if c["name"] == client
    )


def test_a_token_for_another_resource_is_refused_by_the_issuer(stack: LocalStack) -> None:
    """The token endpoint's refusal comes back with Entra's code."""
    with pytest.raises(TokenRequestError) as caught:
        stack.token("hr", scope="https://graph.microsoft.com/.default")
    assert caught.value.body["error_codes"] == [500011]


def test_without_an_identity_section_the_front_door_is_off(tmp_path: Path) -> None:
    """No issuer in the directory: API_AUDIENCE is empty, the app reads no token rules."""
    directory = {k: v for k, v in copy.deepcopy(DIRECTORY).items() if k != "identity"}
    with LocalStack(tmp_path, directory) as bare:
        assert bare.api_settings() == {"API_AUDIENCE": ""}
        assert Settings.from_env(bare.app_environment()).api_auth is None
        with pytest.raises(LookupError):
            bare.token("hr")
