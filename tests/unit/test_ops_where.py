"""Where the on-call tool reads: exactly one place, named, never a silent default."""

from __future__ import annotations

import argparse

import pytest

from local_stack.azurite import connection_string_for
from local_stack.serve import AZURITE_PORT, AZURITE_TABLE_PORT
from ops.__main__ import main as ops_main
from ops.__main__ import where
from ops.store import LOCAL_STACK_CONNECTION, account_connection

CHOICES = ("--account", "--connection-string", "--local", "AzureWebJobsStorage")


def exit_code_and_error(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stopped:
        ops_main(list(args))
    return int(stopped.value.code or 0), capsys.readouterr().err


def options(**given: object) -> argparse.Namespace:
    values: dict[str, object] = {"account": None, "connection_string": None, "local": False}
    return argparse.Namespace(**(values | given))


@pytest.mark.parametrize("command", [["list"], ["show", "HR-1"], ["replay", "--all-held"]])
def test_without_a_place_the_tool_stops_and_names_the_choices(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """No option, no AzureWebJobsStorage: exit 2, nothing read, every choice named."""
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    code, error = exit_code_and_error(capsys, *command)
    assert code == 2
    assert all(choice in error for choice in CHOICES), error


@pytest.mark.parametrize(
    "args",
    [
        ["--local", "--account", "prod1", "list"],
        ["--local", "list", "--account", "prod1"],
        ["show", "HR-1", "--connection-string", "AccountName=x;", "--local"],
    ],
)
def test_two_places_are_refused_wherever_they_are_given(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    """Before and after the subcommand alike: the operator must mean one account."""
    code, error = exit_code_and_error(capsys, *args)
    assert code == 2
    assert "give one place to read" in error


@pytest.mark.parametrize("name", ["evil.example.com/x", "Prod1", "ab", "a" * 25, "x y"])
def test_an_account_name_that_is_not_one_is_refused_before_any_request(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """A crafted name must not send the operator's Entra token to another host."""
    code, error = exit_code_and_error(capsys, "--account", name, "list")
    assert code == 2
    assert "is not a storage account name" in error


def test_an_account_name_reads_that_account_in_azure() -> None:
    """Both endpoints of the account, over https, with the operator's sign-in."""
    connection = account_connection("stonboarding01")
    assert connection.queue_service_uri == "https://stonboarding01.queue.core.windows.net"
    assert connection.table_service_uri == "https://stonboarding01.table.core.windows.net"
    assert connection.connection_string is None


def test_local_is_the_local_stack_of_make_serve() -> None:
    """The tool's own constant is the connection string of `make serve`'s Azurite."""
    place = where(options(local=True), {})
    assert place.local
    assert place.connection.connection_string == LOCAL_STACK_CONNECTION
    assert connection_string_for(AZURITE_PORT, AZURITE_TABLE_PORT) == LOCAL_STACK_CONNECTION


def test_development_storage_in_the_environment_means_the_local_stack() -> None:
    """`UseDevelopmentStorage=true`, as in local.settings.json, is an explicit choice."""
    place = where(options(), {"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert place.local
    assert place.from_environment


def test_a_text_that_is_not_a_connection_string_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the option or in the environment, with the source named."""
    code, error = exit_code_and_error(capsys, "list", "--connection-string", "prod1")
    assert code == 2
    assert "--connection-string is not a storage connection string" in error
    monkeypatch.setenv("AzureWebJobsStorage", "prod1")
    code, error = exit_code_and_error(capsys, "list")
    assert code == 2
    assert "AzureWebJobsStorage is not a storage connection string" in error


@pytest.mark.parametrize("limit", ["-1", "ten", "1.5"])
def test_a_limit_must_be_a_whole_number(capsys: pytest.CaptureFixture[str], limit: str) -> None:
    """`--limit 0` means all; anything else that is not a count is refused."""
    code, error = exit_code_and_error(capsys, "--local", "list", "--limit", limit)
    assert code == 2
    assert "is not a whole number >= 0" in error


def test_the_schema_needs_no_storage(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`schema` prints the JSON Schema with no place given (ASCII, escapes for the rest)."""
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    assert ops_main(["schema"]) == 0
    out = capsys.readouterr().out
    assert out.isascii()
    assert '"$schema": "https://json-schema.org/draft/2020-12/schema"' in out
