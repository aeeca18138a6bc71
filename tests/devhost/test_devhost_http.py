"""The development host serves the app's HTTP triggers as `func start` does."""

from __future__ import annotations

import base64
import json
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from devhost_stack import DevHostProcess, Stack, wait_for

from local_stack.azurite import Azurite


@pytest.fixture(scope="module")
def served(
    azurite: Azurite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DevHostProcess, httpx.Client]]:
    """The fixture app behind its HTTP port, and a client on it (one host for the module's
    tests that change nothing but what they call)."""
    shared = Stack(azurite, tmp_path_factory.mktemp("http"))
    try:
        process, base_url = shared.serve_http()
        with httpx.Client(base_url=base_url, timeout=30) as client:
            yield process, client
    finally:
        shared.close()


def _raw(base_url: str, request: bytes) -> bytes:
    """Send bytes as they are (what an HTTP client would not send) and read the answer."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_routed_function_receives_the_whole_request(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """Method, absolute URL, headers, repeated query values, route values and body arrive."""
    _, client = served
    answer = client.post(
        "/api/items/42/extra?status=201&header=yes&x=1&x=2",
        content=b"\x00binary body\xff",
        headers={"X-Custom": "hello", "Content-Type": "application/octet-stream"},
    )

    assert answer.status_code == 201
    assert answer.headers["x-echo"] == "yes"
    assert answer.headers["content-type"] == "application/json"
    seen = answer.json()
    assert seen["method"] == "POST"
    base = str(client.base_url).rstrip("/")
    assert seen["url"] == f"{base}/api/items/42/extra?status=201&header=yes&x=1&x=2"
    assert seen["headers"]["x-custom"] == "hello"
    assert seen["params"] == {"status": "201", "header": "yes", "x": "1,2"}
    assert seen["route_params"] == {"id": "42", "tail": "extra"}
    assert base64.b64decode(seen["body_b64"]) == b"\x00binary body\xff"
    assert seen["function"] == "echo"


def test_an_optional_route_value_may_be_absent(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """`{tail?}` left out is simply not among the route values."""
    _, client = served
    seen = client.get("/api/items/7").json()
    assert seen["route_params"] == {"id": "7"}


def test_a_value_breaking_its_constraint_matches_no_route(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """`{id:int}` does not match `abc`: 404 with an empty body, nothing invoked."""
    process, client = served
    before = process.stderr.count("echo ok")
    answer = client.get("/api/items/abc")
    assert (answer.status_code, answer.content) == (404, b"")
    assert process.stderr.count("echo ok") == before


def test_a_literal_route_wins_over_a_parameter_declared_before_it(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """`sync/special` beats `sync/{name}` by precedence; other names go to the parameter."""
    _, client = served
    assert client.get("/api/sync/special").json() == {"function": "special"}
    assert client.get("/api/SYNC/other").json()["route_params"] == {"name": "other"}


def test_one_route_with_two_functions_dispatches_by_method(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """GET and POST on `things` reach their own functions; DELETE is 404, as the host says."""
    _, client = served
    assert client.get("/api/things").text == "things_get"
    posted = client.post("/api/things")
    assert (posted.status_code, posted.text) == (201, "things_post")
    refused = client.delete("/api/things")
    assert (refused.status_code, refused.content) == (404, b"")
    assert client.head("/api/things").status_code == 404


def test_unknown_paths_and_paths_without_the_prefix_are_404(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """Nothing outside the routes answers but an empty 404."""
    _, client = served
    for path in ("/api/nowhere", "/items/1", "/", "/api"):
        answer = client.get(path)
        assert (answer.status_code, answer.content) == (404, b""), path


def test_a_function_level_route_answers_without_a_key(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """Access keys are not enforced locally, as with Core Tools."""
    _, client = served
    answer = client.get("/api/keyed")
    assert (answer.status_code, answer.text) == (200, "no key was needed")


def test_a_sync_function_runs_in_the_hosts_thread_pool(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """A def function is called on a worker thread, not on the event loop."""
    _, client = served
    seen = client.put("/api/sync/anyone", content=b"x").json()
    assert seen["thread"].startswith("devhost-function")
    assert seen["method"] == "PUT"


def test_a_returned_string_is_a_plain_text_200(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """A str return value becomes the body, text/plain in UTF-8."""
    _, client = served
    answer = client.get("/api/text")
    assert (answer.status_code, answer.text) == (200, "plain text")
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"


def test_a_function_that_raises_is_a_logged_empty_500(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """The exception is logged with its traceback; the caller gets an empty 500."""
    process, client = served
    answer = client.get("/api/boom")
    assert (answer.status_code, answer.content) == (500, b"")
    wait_for(lambda: "fixture HTTP failure" in process.stderr, 10, "the failure in the log")
    assert "boom failed" in process.stderr
    assert "Traceback" in process.stderr


def test_a_function_returning_none_is_a_500(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """None is no HTTP response (the Python worker cannot encode it)."""
    process, client = served
    assert client.get("/api/nothing").status_code == 500
    wait_for(lambda: "must return azure.functions.HttpResponse" in process.stderr, 10, "the log")


def test_a_body_over_100_mb_is_refused_unread_with_413(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """A declared length above the host's 104,857,600 bytes is 413 before any invocation."""
    process, client = served
    before = process.stderr.count("echo ok")
    answer = _raw(
        str(client.base_url).rstrip("/"),
        b"POST /api/items/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 104857601\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert process.stderr.count("echo ok") == before


def test_a_url_over_4_kb_is_refused_with_414(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """The host's URL limit is 4,096 characters."""
    _, client = served
    answer = client.get("/api/items/1?pad=" + "a" * 4100)
    assert answer.status_code == 414


def test_a_chunked_body_is_read_whole(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """Transfer-Encoding: chunked bodies reach the function reassembled."""
    _, client = served
    answer = _raw(
        str(client.base_url).rstrip("/"),
        b"POST /api/items/5 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert base64.b64decode(body["body_b64"]) == b"hello world"


def test_requests_are_served_concurrently(
    served: tuple[DevHostProcess, httpx.Client],
) -> None:
    """Five requests are inside one function at the same time (it waits for all five)."""
    _, client = served
    results: list[httpx.Response] = []

    def call() -> None:
        with httpx.Client(base_url=client.base_url, timeout=30) as own:
            results.append(own.get("/api/gather/5"))

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=40)
    assert [r.status_code for r in results] == [200] * 5
    assert {r.text for r in results} == {"5 inside at once"}


def test_queue_and_timer_triggers_keep_working_beside_http(stack: Stack) -> None:
    """A queue message is processed while HTTP requests are answered."""
    process, base_url = stack.serve_http()
    stack.send(stack.input_queue, "next to http")
    with httpx.Client(base_url=base_url, timeout=30) as client:
        assert client.get("/api/text").text == "plain text"
    records = stack.wait_count(stack.output_queue, 1)
    assert json.loads(records[0])["text"] == "next to http"
    assert process.stop() == 0


def test_the_route_prefix_comes_from_host_json_and_its_override(stack: Stack) -> None:
    """extensions.http.routePrefix moves every route; the app-setting override wins."""
    path = stack.app_dir / "host.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["extensions"]["http"] = {"routePrefix": "v1"}
    path.write_text(json.dumps(data), encoding="utf-8")
    _, base_url = stack.serve_http()
    with httpx.Client(base_url=base_url, timeout=30) as client:
        assert client.get("/v1/text").status_code == 200
        assert client.get("/api/text").status_code == 404
    _, bare_url = stack.serve_http(AzureFunctionsJobHost__extensions__http__routePrefix="")
    with httpx.Client(base_url=bare_url, timeout=30) as client:
        assert client.get("/text").text == "plain text"


def test_http_port_binds_the_port_asked_for(stack: Stack) -> None:
    """--http-port N listens on 127.0.0.1:N (and writes N to the ready file)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _, base_url = stack.serve_http("--http-port", str(port))
    assert base_url == f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base_url}/api/text", timeout=30).text == "plain text"


def test_a_stop_signal_lets_a_running_request_finish_then_closes_the_port(stack: Stack) -> None:
    """SIGTERM: the request in flight gets its answer, the host exits 0, the port closes."""
    process, base_url = stack.serve_http()
    answers: list[httpx.Response] = []
    caller = threading.Thread(
        target=lambda: answers.append(httpx.get(f"{base_url}/api/sleep/1.5", timeout=30))
    )
    caller.start()
    wait_for(lambda: "sleepy started" in process.stderr, 20, "the request to start")
    process.process.send_signal(signal.SIGTERM)
    caller.join(timeout=30)

    assert [(a.status_code, a.text) for a in answers] == [(200, "slept")]
    assert process.wait() == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/api/text", timeout=5)


def test_an_unknown_route_constraint_refuses_to_start(stack: Stack, tmp_path: Path) -> None:
    """A constraint ASP.NET does not know stops the host at start, naming the function."""
    folder = tmp_path / "bad_route"
    folder.mkdir()
    (folder / "host.json").write_text('{"version": "2.0"}', encoding="utf-8")
    (folder / "function_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n"
        "@app.route(route='x/{id:nosuch}')\n"
        "def odd(req: func.HttpRequest) -> func.HttpResponse:\n"
        "    return func.HttpResponse('never')\n",
        encoding="utf-8",
    )
    host = stack.start_app(folder)
    assert host.wait() == 1
    assert "function 'odd': unknown route constraint 'nosuch'" in host.stderr
