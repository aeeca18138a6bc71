"""EVENT_GRID_TOPIC_ENDPOINT (contract v1.2): optional; an https topic endpoint, or http on
a loopback address only (the local stand-in); anything else stops the app naming it."""

import pytest

from shared.domain.errors import SettingsError
from shared.settings import Settings

BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def endpoint(value: str) -> str | None:
    return Settings.from_env({**BASE, "EVENT_GRID_TOPIC_ENDPOINT": value}).event_grid_topic_endpoint


def test_without_the_setting_events_go_to_the_queue_only() -> None:
    """Absent or blank: no topic."""
    assert Settings.from_env(BASE).event_grid_topic_endpoint is None
    assert endpoint("  ") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "https://onboarding.westeurope-1.eventgrid.azure.net/api/events",
            "https://onboarding.westeurope-1.eventgrid.azure.net/api/events",
        ),
        (
            "https://onboarding.westeurope-1.eventgrid.azure.net",
            "https://onboarding.westeurope-1.eventgrid.azure.net/api/events",
        ),
        (
            "https://onboarding.westeurope-1.eventgrid.azure.net/API/Events/",
            "https://onboarding.westeurope-1.eventgrid.azure.net/api/events",
        ),
        ("http://127.0.0.1:7071/api/events", "http://127.0.0.1:7071/api/events"),
        ("http://localhost:7071", "http://localhost:7071/api/events"),
        ("http://[::1]:7071/api/events", "http://[::1]:7071/api/events"),
    ],
    ids=["portal-endpoint", "bare-host", "case-and-slash", "loopback", "localhost", "ipv6"],
)
def test_a_topic_endpoint_is_taken_as_the_publish_url(value: str, expected: str) -> None:
    """The endpoint Azure shows (…/api/events); a bare host gets the path."""
    assert endpoint(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("http://onboarding.westeurope-1.eventgrid.azure.net/api/events", "loopback"),
        ("http://10.0.0.5/api/events", "loopback"),
        ("ftp://127.0.0.1/api/events", "not an http(s) URL"),
        ("onboarding.westeurope-1.eventgrid.azure.net", "not an http(s) URL"),
        ("https://topic.eventgrid.azure.net/api/events?api-version=2018-01-01", "query"),
        ("https://user:key@topic.eventgrid.azure.net/api/events", "credentials"),
        ("https://topic.eventgrid.azure.net/api/other", "ending in /api/events"),
    ],
    ids=["http-remote", "http-private", "ftp", "no-scheme", "query", "userinfo", "other-path"],
)
def test_a_bad_endpoint_stops_the_app_naming_the_setting(value: str, problem: str) -> None:
    """SettingsError: `app setting EVENT_GRID_TOPIC_ENDPOINT: <problem>`."""
    with pytest.raises(SettingsError, match=r"app setting EVENT_GRID_TOPIC_ENDPOINT: .*") as bad:
        endpoint(value)
    assert problem in str(bad.value)
