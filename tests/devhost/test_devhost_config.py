"""What the development host reads from host.json, settings files and bindings."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from local_stack.devhost import HostOptions, QueuesOptions, load_host_options, parse_host_options
from local_stack.devhost.config import (
    DevHostError,
    apply_settings,
    find_settings_file,
    load_settings,
    parse_timespan,
    resolve_connection_string,
    resolve_setting_names,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_missing_queue_options_take_the_host_defaults() -> None:
    """Without extensions.queues the Functions host defaults apply."""
    options = parse_host_options({"version": "2.0"})
    assert options.queues == QueuesOptions(
        batch_size=16,
        new_batch_threshold=8,
        max_dequeue_count=5,
        visibility_timeout=timedelta(0),
        max_polling_interval=timedelta(minutes=1),
        message_encoding="base64",
    )
    assert options.queues.max_concurrency == 24
    assert options.function_timeout == timedelta(minutes=30)


def test_new_batch_threshold_defaults_to_half_the_batch_size() -> None:
    """newBatchThreshold follows batchSize when not given."""
    options = parse_host_options({"extensions": {"queues": {"batchSize": 5}}})
    assert options.queues.new_batch_threshold == 2


def test_the_projects_host_json_is_read_as_written() -> None:
    """The app's own host.json yields its queue settings and function timeout."""
    options = load_host_options(REPO_ROOT, environ={})
    assert options == HostOptions(
        queues=QueuesOptions(
            batch_size=16,
            new_batch_threshold=8,
            max_dequeue_count=5,
            visibility_timeout=timedelta(seconds=30),
            max_polling_interval=timedelta(seconds=10),
            message_encoding="none",
        ),
        function_timeout=timedelta(minutes=10),
    )


def test_app_settings_override_host_json_as_the_functions_host_does() -> None:
    """`AzureFunctionsJobHost__extensions__queues__maxPollingInterval` wins over host.json
    (the local stack polls every 2 s; production every 10 s)."""
    options = load_host_options(
        REPO_ROOT,
        environ={
            "AzureFunctionsJobHost__extensions__queues__maxPollingInterval": "00:00:02",
            "AzureFunctionsJobHost__Extensions__Queues__BatchSize": "4",
        },
    )
    assert options.queues.max_polling_interval == timedelta(seconds=2)
    assert options.queues.batch_size == 4


def test_function_timeout_minus_one_means_unbounded() -> None:
    """functionTimeout -1 disables the timeout."""
    assert parse_host_options({"functionTimeout": "-1"}).function_timeout is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:30", timedelta(seconds=30)),
        ("01:02:03", timedelta(hours=1, minutes=2, seconds=3)),
        ("00:00:00.500", timedelta(milliseconds=500)),
        ("1.00:00:00", timedelta(days=1)),
    ],
)
def test_timespans_parse_like_dotnet(text: str, expected: timedelta) -> None:
    """host.json TimeSpans accept hh:mm:ss, fractions and a day prefix."""
    assert parse_timespan(text, "x") == expected


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ({"batchSize": 33}, "batchSize must be between 1 and 32"),
        ({"batchSize": "16"}, "batchSize must be an integer"),
        ({"maxDequeueCount": 0}, "maxDequeueCount must be between"),
        ({"visibilityTimeout": 30}, "visibilityTimeout must be a TimeSpan"),
        ({"visibilityTimeout": "30s"}, "visibilityTimeout must be a TimeSpan"),
        ({"maxPollingInterval": "00:00:00.050"}, "at least 00:00:00.1"),
        ({"messageEncoding": "utf8"}, "'base64' or 'none'"),
    ],
)
def test_invalid_queue_options_are_refused(queues: dict[str, object], message: str) -> None:
    """A host.json value the host would reject stops the development host too."""
    with pytest.raises(DevHostError, match=message):
        parse_host_options({"extensions": {"queues": queues}})


def test_message_encoding_is_case_insensitive() -> None:
    """messageEncoding 'None' reads as none."""
    options = parse_host_options({"extensions": {"queues": {"messageEncoding": "None"}}})
    assert options.queues.message_encoding == "none"


def _write(path: Path, values: dict[str, object]) -> Path:
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    return path


def test_settings_file_preference_is_explicit_then_local_then_sample(tmp_path: Path) -> None:
    """--settings wins, then local.settings.json, then local.settings.sample.json."""
    assert find_settings_file(tmp_path) is None
    sample = _write(tmp_path / "local.settings.sample.json", {})
    assert find_settings_file(tmp_path) == sample
    local = _write(tmp_path / "local.settings.json", {})
    assert find_settings_file(tmp_path) == local
    explicit = _write(tmp_path / "other.json", {})
    assert find_settings_file(tmp_path, explicit) == explicit
    with pytest.raises(DevHostError, match="does not exist"):
        find_settings_file(tmp_path, tmp_path / "missing.json")


def test_settings_values_must_be_strings(tmp_path: Path) -> None:
    """A non-string value in Values is reported by name."""
    path = _write(tmp_path / "local.settings.json", {"BATCH": 3})
    with pytest.raises(DevHostError, match=r"Values\.BATCH must be a string"):
        load_settings(path)


def test_the_real_environment_wins_over_the_settings_file() -> None:
    """apply_settings fills only the names the environment does not already have."""
    environ = {"A": "from-env"}
    skipped = apply_settings({"A": "from-file", "B": "from-file"}, environ)
    assert environ == {"A": "from-env", "B": "from-file"}
    assert skipped == ["A"]


def test_setting_references_are_resolved_and_missing_ones_reported() -> None:
    """%NAME% is replaced by the setting; an unknown NAME is an error naming it."""
    assert resolve_setting_names("%Q%-x", {"Q": "user-onboard"}, "f") == "user-onboard-x"
    with pytest.raises(DevHostError, match="'%MISSING%' does not resolve"):
        resolve_setting_names("%MISSING%", {}, "function 'f'")


def test_connection_names_a_setting_holding_a_connection_string() -> None:
    """The connection setting's value is used, with AzureWebJobs<name> as a fallback."""
    assert resolve_connection_string("", {"AzureWebJobsStorage": "A"}, "f") == "A"
    assert resolve_connection_string("Other", {"AzureWebJobsOther": "B"}, "f") == "B"


def test_identity_based_connections_are_refused_clearly() -> None:
    """A __queueServiceUri connection is reported as unsupported, not silently ignored."""
    environ = {"AzureWebJobsStorage__queueServiceUri": "https://st.queue.core.windows.net"}
    with pytest.raises(DevHostError, match="identity-based"):
        resolve_connection_string("AzureWebJobsStorage", environ, "function 'f'")
