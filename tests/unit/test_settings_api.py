"""The HTTP front door's settings: API_AUDIENCE, API_TENANT_ID and API_AUTHORITY."""

import json
from pathlib import Path

import pytest

from shared.domain.errors import SettingsError
from shared.settings import ApiAuthSettings, Settings

BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
AUDIENCE = "04B5F840-6455-49D1-B5E2-F7F15CE5B2F9"
TENANT = "200d1715-8843-42a8-92c2-6da554acc700"


def test_without_api_audience_the_front_door_is_off() -> None:
    """API_AUDIENCE unset: no token rules, and the other two are not even read."""
    config = Settings.from_env({**BASE, "API_TENANT_ID": "not-a-guid", "API_AUTHORITY": "ftp://x"})
    assert config.api_auth is None


def test_the_audience_and_tenant_give_entras_v2_endpoints() -> None:
    """GUIDs are lower-cased; the issuer and keys are Entra's v2 URLs of the tenant."""
    config = Settings.from_env({**BASE, "API_AUDIENCE": AUDIENCE, "API_TENANT_ID": TENANT})
    assert config.api_auth == ApiAuthSettings(AUDIENCE.lower(), TENANT)
    auth = config.api_auth
    assert auth.issuer == f"https://login.microsoftonline.com/{TENANT}/v2.0"
    assert auth.jwks_uri == f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"
    assert auth.token_endpoint == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"


@pytest.mark.parametrize(
    "authority",
    ["http://127.0.0.1:8765", "http://localhost:8765/", "https://login.microsoftonline.us"],
)
def test_a_loopback_http_or_any_https_authority_is_accepted(authority: str) -> None:
    """The local issuer speaks http on loopback; sovereign clouds have their own host."""
    env = {**BASE, "API_AUDIENCE": AUDIENCE, "API_TENANT_ID": TENANT, "API_AUTHORITY": authority}
    auth = Settings.from_env(env).api_auth
    assert auth is not None
    assert auth.authority == authority.rstrip("/")
    assert auth.issuer == f"{authority.rstrip('/')}/{TENANT}/v2.0"


@pytest.mark.parametrize(
    ("changes", "setting", "words"),
    [
        ({"API_AUDIENCE": f"api://{AUDIENCE}"}, "API_AUDIENCE", "a GUID"),
        ({"API_AUDIENCE": "user-onboarding"}, "API_AUDIENCE", "a GUID"),
        ({"API_TENANT_ID": ""}, "API_TENANT_ID", "is required"),
        ({"API_TENANT_ID": "contoso.onmicrosoft.com"}, "API_TENANT_ID", "a GUID"),
        ({"API_AUTHORITY": "http://login.example.com"}, "API_AUTHORITY", "loopback"),
        ({"API_AUTHORITY": "ftp://127.0.0.1"}, "API_AUTHORITY", "not an http(s) URL"),
        ({"API_AUTHORITY": f"https://login.microsoftonline.com/{TENANT}"}, "API_AUTHORITY", "only"),
        ({"API_AUTHORITY": "https://login.microsoftonline.com?x=1"}, "API_AUTHORITY", "only"),
    ],
)
def test_a_bad_front_door_setting_is_named(
    changes: dict[str, str], setting: str, words: str
) -> None:
    """Each malformed value stops the app at start, naming the setting."""
    env = {**BASE, "API_AUDIENCE": AUDIENCE, "API_TENANT_ID": TENANT, **changes}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.setting == setting
    assert words in str(caught.value)


def test_the_sample_settings_point_at_the_local_issuer() -> None:
    """local.settings.sample.json turns the front door on against make serve's emulator."""
    sample = json.loads((Path(__file__).parents[2] / "local.settings.sample.json").read_text())
    auth = Settings.from_env({**BASE, **sample["Values"]}).api_auth
    assert auth is not None
    assert auth.authority == "http://127.0.0.1:8765"
