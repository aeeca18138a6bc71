"""`make post HTTP=1`: a token from the local issuer for the sample HR system, then one
POST per request to the front door (here a stand-in that checks the token for real)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from local_stack import post
from local_stack.graph_emulator import Emulator, start_emulator
from local_stack.stack import sample_settings
from shared.adapters.access_tokens import AccessTokenError, AccessTokenValidator
from shared.settings import Settings

SAMPLES = Path(__file__).resolve().parents[2] / "local_stack" / "samples"
DIRECTORY = json.loads((SAMPLES / "directory.json").read_text(encoding="utf-8"))


@pytest.fixture
def issuer() -> Iterator[Emulator]:
    with start_emulator(SAMPLES / "directory.json") as emulator:
        yield emulator


class FrontDoor:
    """Records each request, checks its token with the app's validator, answers 202."""

    def __init__(self, validator: AccessTokenValidator, status: int = 202) -> None:
        self.validator = validator
        self.status = status
        self.seen: list[dict[str, Any]] = []
        door = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                try:
                    caller = door.validator.authenticate_blocking(self.headers["Authorization"])
                    roles = sorted(caller.roles)
                except AccessTokenError as error:
                    roles = [str(error.reason)]
                door.seen.append(
                    {
                        "path": self.path,
                        "body": body,
                        "roles": roles,
                        "type": self.headers["Content-Type"],
                    }
                )
                answer = json.dumps({"requestId": body["requestId"], "state": "queued"}).encode()
                self.send_response(door.status)
                self.send_header("Location", f"/api/onboarding-requests/{body['requestId']}")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def front_door(issuer: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[FrontDoor]:
    """The sample settings, their authority moved to this test's issuer."""
    monkeypatch.setenv("API_AUTHORITY", issuer.authority)
    settings = Settings.from_env({**sample_settings(), "API_AUTHORITY": issuer.authority})
    assert settings.api_auth is not None
    door = FrontDoor(AccessTokenValidator(settings.api_auth))
    yield door
    door.close()


def test_the_token_request_is_the_sample_hr_systems_for_the_sample_api() -> None:
    """Client credentials of `hr` from the sample directory, scope api://<audience>/.default."""
    settings = sample_settings()
    request = post.token_request(settings, DIRECTORY, "hr")
    tenant, audience = settings["API_TENANT_ID"], settings["API_AUDIENCE"]
    assert request.url == f"http://127.0.0.1:8765/{tenant}/oauth2/v2.0/token"
    assert request.scope == f"api://{audience}/.default"
    hr = next(c for c in DIRECTORY["identity"]["clients"] if c["name"] == "hr")
    assert (request.client_id, request.client_secret) == (hr["clientId"], hr["secret"])


def test_no_token_request_without_the_front_door_or_the_client() -> None:
    """An unset API_AUDIENCE or an unknown client name is said, not guessed."""
    with pytest.raises(LookupError, match="front door is off"):
        post.token_request({"API_TENANT_ID": "x"}, DIRECTORY, "hr")
    with pytest.raises(LookupError, match="no client 'payroll'"):
        post.token_request(sample_settings(), DIRECTORY, "payroll")


def test_each_request_is_posted_with_the_hr_token_and_its_answer_printed(
    front_door: FrontDoor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two requests, two POSTs to /api/onboarding-requests carrying a valid Submit token."""
    batch = [{"requestId": "HTTP-1", "employeeId": "1"}, {"requestId": "HTTP-2", "employeeId": "2"}]
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(batch), encoding="utf-8")

    code = post.main(["--http", "--host-url", front_door.url, str(path)])

    assert code == 0
    assert [(s["path"], s["body"], s["roles"]) for s in front_door.seen] == [
        ("/api/onboarding-requests", batch[0], ["Onboarding.Submit"]),
        ("/api/onboarding-requests", batch[1], ["Onboarding.Submit"]),
    ]
    assert {s["type"] for s in front_door.seen} == {"application/json"}
    printed = capsys.readouterr().out
    assert "HTTP-1: 202 Location: /api/onboarding-requests/HTTP-1" in printed
    assert '{"requestId": "HTTP-2", "state": "queued"}' in printed


def test_a_refused_request_makes_the_exit_code_1(
    front_door: FrontDoor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-2xx answer is printed and reported through the exit code."""
    front_door.status = 409
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"requestId": "HTTP-3"}), encoding="utf-8")

    assert post.main(["--http", "--host-url", front_door.url, str(path)]) == 1
    assert "HTTP-3: 409" in capsys.readouterr().out


def test_a_client_the_issuer_refuses_gets_no_token_and_posts_nothing(
    front_door: FrontDoor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong secret is Entra's AADSTS7000215, printed; nothing reaches the front door."""
    directory = json.loads(json.dumps(DIRECTORY))
    directory["identity"]["clients"][0]["secret"] = "not-the-secret"
    directory_file = tmp_path / "directory.json"
    directory_file.write_text(json.dumps(directory), encoding="utf-8")
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"requestId": "HTTP-4"}), encoding="utf-8")

    code = post.main(
        ["--http", "--host-url", front_door.url, "--directory", str(directory_file), str(path)]
    )

    assert code == 1
    assert front_door.seen == []
    assert "AADSTS7000215" in capsys.readouterr().err


def test_the_reporting_client_cannot_submit(front_door: FrontDoor, tmp_path: Path) -> None:
    """`--client reporting` gets a token with Onboarding.Read only (the app will say 403)."""
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"requestId": "HTTP-5"}), encoding="utf-8")
    post.main(["--http", "--client", "reporting", "--host-url", front_door.url, str(path)])
    assert front_door.seen[0]["roles"] == ["Onboarding.Read"]
