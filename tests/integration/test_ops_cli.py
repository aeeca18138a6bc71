"""The on-call tool's command line against Azurite: every subcommand takes its options
before or after it, and the storage it reads is the one named (or the environment's)."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.stack import LocalStack
from ops.__main__ import main as ops_main
from shared.bootstrap import build_service, policy_from
from shared.settings import Settings

pytestmark = pytest.mark.stack
SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One licensed request (CLI-1) and one waiting for sync (CLI-2)."""
    with LocalStack(tmp_path_factory.mktemp("ops-cli"), SAMPLES / "directory.json") as running:
        config = Settings.from_env({**running.app_environment(), "SYNC_TIMEOUT": "PT1H"})

        async def post() -> None:
            wired = build_service(config, policy=policy_from(config))
            try:
                for request_id, upn in (
                    ("CLI-1", "jane.doe@contoso.com"),
                    ("CLI-2", "never.synced@contoso.com"),
                ):
                    body = {"requestId": request_id, "userPrincipalName": upn}
                    body["licenses"] = [{"skuPartNumber": "ENTERPRISEPACK"}]
                    await wired.service.handle_request(json.dumps(body), f"m-{request_id}")
            finally:
                await wired.aclose()

        asyncio.run(post())
        yield running


def connection(stack: LocalStack) -> str:
    assert stack.azurite is not None
    return stack.azurite.connection_string


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = ops_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


COMMANDS = {
    "show": (["show", "CLI-1"], 0),
    "list": (["list", "pending", "--limit", "1"], 0),
    "replay": (["replay", "no-such-message"], 1),
    "schema": (["schema"], 0),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_options_work_before_or_after_the_subcommand(
    stack: LocalStack, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """`--json` and the place to read, before, after or around the subcommand: one answer."""
    args, expected_code = COMMANDS[command]
    place = ["--connection-string", connection(stack)]
    before = run(capsys, "--json", *place, *args)
    after = run(capsys, *args, "--json", *place)
    around = run(capsys, *place, *args, "--json")
    assert before == after == around
    code, out, _ = after
    assert code == expected_code
    answer = json.loads(out)
    if command == "show":
        assert (answer["requestId"], answer["state"]) == ("CLI-1", "licensed")
    elif command == "list":
        assert [r["requestId"] for r in answer["parked"]] == ["CLI-2"]
        assert answer["parkedTotal"] == 1
    elif command == "replay":
        assert answer["replays"][0]["result"] == "refused"
    else:
        assert answer["title"].startswith("user-onboard request")


def test_without_json_after_the_subcommand_the_answer_is_text(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The option after the subcommand is not silently dropped: text, then JSON."""
    code, text, _ = run(capsys, "show", "CLI-2", "--connection-string", connection(stack))
    assert code == 0
    assert text.startswith("request CLI-2: waiting")
    _, as_json, _ = run(capsys, "show", "CLI-2", "--connection-string", connection(stack), "--json")
    assert json.loads(as_json)["state"] == "waiting"


def test_the_environment_names_the_storage_when_no_option_does(
    stack: LocalStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """AzureWebJobsStorage is read, and the tool says on standard error which account."""
    monkeypatch.setenv("AzureWebJobsStorage", connection(stack))
    code, out, err = run(capsys, "show", "CLI-1", "--json")
    assert code == 0
    assert json.loads(out)["state"] == "licensed"
    assert "reading storage account devstoreaccount1 (AzureWebJobsStorage)" in err


def test_an_option_wins_over_the_environment(
    stack: LocalStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator who names a place gets that place, whatever the shell exports."""
    monkeypatch.setenv("AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=prod1")
    code, out, err = run(capsys, "--connection-string", connection(stack), "show", "CLI-1")
    assert (code, err) == (0, "")
    assert out.startswith("request CLI-1: licensed")


def test_a_connection_string_can_come_from_standard_input(
    stack: LocalStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--connection-string -` keeps the account key out of the shell history."""
    monkeypatch.setattr("sys.stdin", io.StringIO(connection(stack) + "\n"))
    code, out, _ = run(capsys, "show", "CLI-1", "--connection-string", "-")
    assert code == 0
    assert out.startswith("request CLI-1: licensed")


def test_storage_that_does_not_answer_is_exit_3_with_a_line_not_a_traceback(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """A connection string whose endpoints nobody listens on: a one-line reason."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = connection(stack).split("QueueEndpoint=")[0] + (
        f"QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    code, out, err = run(capsys, "list", "--connection-string", dead)
    assert (code, out) == (3, "")
    assert err.startswith("python -m ops: cannot read storage account devstoreaccount1: ")
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
