"""App settings: defaults, and a clear error naming any bad one."""

from datetime import timedelta

import pytest

from shared.domain.errors import SettingsError
from shared.settings import Settings, parse_duration

BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_defaults_follow_the_contract() -> None:
    """Only the storage connection is required."""
    config = Settings.from_env(BASE)
    assert config.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert not config.graph_is_local
    assert config.sweep_schedule == "0 */5 * * * *"
    assert config.sync_timeout == timedelta(hours=24)
    assert config.recheck_initial_delay == timedelta(minutes=5)
    assert config.recheck_max_delay == timedelta(minutes=30)
    assert config.set_usage_location is True
    assert config.default_licenses is None
    assert config.default_usage_location is None


def test_identity_based_storage_is_accepted() -> None:
    """`AzureWebJobsStorage__queueServiceUri` with a managed identity, as Bicep sets it."""
    config = Settings.from_env(
        {
            "AzureWebJobsStorage__queueServiceUri": "https://st1.queue.core.windows.net",
            "AzureWebJobsStorage__tableServiceUri": "https://st1.table.core.windows.net",
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": "cid",
        }
    )
    assert config.storage.queue_service_uri == "https://st1.queue.core.windows.net"
    assert config.storage.table_service_uri == "https://st1.table.core.windows.net"
    assert config.storage.client_id == "cid"


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({}, "AzureWebJobsStorage"),
        ({**BASE, "SYNC_TIMEOUT": "24h"}, "SYNC_TIMEOUT"),
        ({**BASE, "SYNC_TIMEOUT": "PT0S"}, "SYNC_TIMEOUT"),
        ({**BASE, "RECHECK_INITIAL_DELAY": "PT1H"}, "RECHECK_MAX_DELAY"),
        ({**BASE, "RECHECK_MAX_DELAY": "P8D"}, "RECHECK_MAX_DELAY"),
        ({**BASE, "GRAPH_BASE_URL": "http://graph.example.com/v1.0"}, "GRAPH_BASE_URL"),
        ({**BASE, "GRAPH_BASE_URL": "ftp://127.0.0.1"}, "GRAPH_BASE_URL"),
        ({**BASE, "SWEEP_SCHEDULE": "*/5 * * * *"}, "SWEEP_SCHEDULE"),
        ({**BASE, "DEFAULT_USAGE_LOCATION": "France"}, "DEFAULT_USAGE_LOCATION"),
        ({**BASE, "SET_USAGE_LOCATION": "maybe"}, "SET_USAGE_LOCATION"),
        ({**BASE, "DEFAULT_LICENSES": "MCOEV,MCOEV"}, "DEFAULT_LICENSES"),
        (
            {"AzureWebJobsStorage__queueServiceUri": "http://st1.queue.core.windows.net"},
            "AzureWebJobsStorage__queueServiceUri",
        ),
        (
            {"AzureWebJobsStorage__queueServiceUri": "https://st1.queue.core.windows.net"},
            "AzureWebJobsStorage__tableServiceUri",
        ),
    ],
)
def test_a_malformed_setting_fails_naming_it(env: dict[str, str], setting: str) -> None:
    """The error message starts with the setting's name."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.setting == setting
    assert setting in str(caught.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765/v1.0", "http://localhost:1/v1.0", "http://[::1]:5/v1.0"]
)
def test_plain_http_is_allowed_for_loopback_only_and_marks_the_graph_as_local(url: str) -> None:
    """The local emulator gets the fixed development token, never a real credential."""
    config = Settings.from_env({**BASE, "GRAPH_BASE_URL": url + "/"})
    assert config.graph_is_local
    assert config.graph_base_url == url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT24H", timedelta(hours=24)),
        ("PT5M", timedelta(minutes=5)),
        ("P1DT30M", timedelta(days=1, minutes=30)),
        ("PT2.5S", timedelta(seconds=2.5)),
    ],
)
def test_iso_8601_durations_parse(text: str, expected: timedelta) -> None:
    """Days, hours, minutes and (fractional) seconds."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P", "PT", "5M", "PT5", "P1Y"])
def test_malformed_durations_are_refused(text: str) -> None:
    """Years and months are ambiguous lengths: not accepted."""
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_duration(text)
