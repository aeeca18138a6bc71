"""The control API, time-driven sync, the request log, the CLI and the OpenAPI check itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_stack.graph_emulator import Emulator, ManualClock, ensure_loopback, start_emulator
from local_stack.graph_emulator.openapi_check import check_exchange
from tests.support.graph import (
    EXCHANGE_STANDARD_SKU,
    JANE_ID,
    SAMPLE_DIRECTORY,
    TEAMS_SKU,
    openapi_violations,
)

REPO = Path(__file__).resolve().parents[2]
SYNC_SELECT = {"$select": "id,onPremisesSyncEnabled,onPremisesLastSyncDateTime"}


def control(emulator: Emulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.control_url, timeout=5.0)


# ------------------------------------------------------------- appear / sync


def test_a_user_appears_only_after_its_delay(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """Before appearAfterSeconds the user is 404 and absent from filters."""
    assert graph_client.get("/users/pending@contoso.com").status_code == 404
    found = graph_client.get("/users", params={"$filter": "employeeId eq '000999'"})
    assert found.json()["value"] == []
    graph_clock.advance(30)
    assert graph_client.get("/users/pending@contoso.com").status_code == 200


def test_sync_flips_after_its_delay_and_fills_the_last_sync_time(
    graph_client: httpx.Client, graph_clock: ManualClock
) -> None:
    """onPremisesSyncEnabled is null until syncAfterSeconds, then true with a timestamp."""
    graph_clock.advance(30)
    before = graph_client.get("/users/pending@contoso.com", params=SYNC_SELECT).json()
    assert before["onPremisesSyncEnabled"] is None
    assert before["onPremisesLastSyncDateTime"] is None
    graph_clock.advance(30)
    after = graph_client.get("/users/pending@contoso.com", params=SYNC_SELECT).json()
    assert after["onPremisesSyncEnabled"] is True
    assert after["onPremisesLastSyncDateTime"].endswith("Z")


def test_the_control_api_adds_and_syncs_users(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """POST /users adds a hidden user; POST /users/{upn}/sync makes it exist, synced."""
    with control(graph_emulator) as api:
        added = api.post(
            "/users",
            json={"userPrincipalName": "new.hire@contoso.com", "appearAfterSeconds": 600},
        )
        assert added.status_code == 201
        assert added.json()["_emulator"]["visible"] is False
        assert graph_client.get("/users/new.hire@contoso.com").status_code == 404
        synced = api.post("/users/new.hire@contoso.com/sync")
        assert synced.json()["onPremisesSyncEnabled"] is True
        record = api.get(f"/users/{added.json()['id']}").json()
        assert record["_emulator"]["visible"] is True
    body = graph_client.get("/users/new.hire@contoso.com", params=SYNC_SELECT).json()
    assert body["onPremisesSyncEnabled"] is True


def test_the_control_api_refuses_bad_input(graph_emulator: Emulator) -> None:
    """Unknown users are 404, malformed users and faults are 400, no route is 404."""
    with control(graph_emulator) as api:
        assert api.get("/users/ghost@contoso.com").status_code == 404
        assert api.post("/users", json={"displayName": "no upn"}).status_code == 400
        assert (
            api.post("/users", json={"userPrincipalName": "jane.doe@contoso.com"}).status_code
            == 400
        )
        assert api.post("/faults", json={"path": "(", "status": 503}).status_code == 400
        assert api.post("/faults", json={"status": 200}).status_code == 400
        assert api.get("/nothing-here").status_code == 404


def test_the_control_api_sets_seats_and_throttling(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """PUT /skus/{part} changes seat counts; PUT /throttle changes the budget."""
    with control(graph_emulator) as api:
        sku = api.put("/skus/MCOEV", json={"enabled": 7, "consumedUnits": 6}).json()
        assert (sku["prepaidUnits"]["enabled"], sku["consumedUnits"]) == (7, 6)
        assert api.put("/skus/NOPE", json={"enabled": 1}).status_code == 404
        assert api.put("/throttle", json={"unitsPer10s": 3}).json()["unitsPer10s"] == 3
    assert graph_client.get("/subscribedSkus").status_code == 200
    assert graph_client.get("/subscribedSkus").status_code == 429


def test_the_control_api_manages_faults_and_the_log(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Faults are added and removed over HTTP; the log can be read and emptied."""
    with control(graph_emulator) as api:
        api.post("/faults", json={"method": "GET", "path": "^/subscribedSkus$", "status": 503})
        assert graph_client.get("/subscribedSkus").status_code == 503
        assert api.delete("/faults").status_code == 204
        assert graph_client.get("/subscribedSkus").status_code == 200
        assert [e["status"] for e in api.get("/requests").json()] == [503, 200]
        assert api.delete("/requests").status_code == 204
        assert api.get("/requests").json() == []


def test_reset_restores_the_directory_and_can_load_a_new_one(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """POST /reset undoes changes; with a body it replaces the tenant."""
    graph_client.patch("/users/alice@contoso.com", json={"usageLocation": "GB"})
    with control(graph_emulator) as api:
        assert api.post("/reset").status_code == 204
        assert api.get("/users/alice@contoso.com").json()["usageLocation"] == "US"
        tenant = {"users": [{"userPrincipalName": "solo@contoso.com"}]}
        assert api.post("/reset", json=tenant).status_code == 204
    assert graph_client.get(f"/users/{JANE_ID}").status_code == 404
    assert graph_client.get("/users/solo@contoso.com").status_code == 200


def test_the_clock_can_be_advanced_over_http(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """POST /clock/advance moves a manual clock, e.g. for a subprocess emulator."""
    with control(graph_emulator) as api:
        assert api.post("/clock/advance", json={"seconds": 60}).status_code == 200
    assert graph_client.get("/users/pending@contoso.com").status_code == 200


# ---------------------------------------------------------------- request log


def test_the_log_records_raw_paths_bodies_and_answers(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Entries keep the path undecoded, the parsed body and the response, not the token."""
    graph_client.post(
        "/users/o%27brien%40contoso.com/assignLicense",
        json={"addLicenses": [{"skuId": TEAMS_SKU, "disabledPlans": []}], "removeLicenses": []},
    )
    (entry,) = graph_emulator.requests()
    assert entry["method"] == "POST"
    assert entry["path"] == "/v1.0/users/o%27brien%40contoso.com/assignLicense"
    assert entry["body"]["removeLicenses"] == []
    assert entry["status"] == 200
    assert entry["responseBody"]["userPrincipalName"] == "o'brien@contoso.com"
    assert entry["headers"]["authorization"] is True
    assert "local-graph-emulator-token" not in str(entry)
    assert entry["batchItem"] is False
    assert entry["time"].endswith("Z")


# -------------------------------------------------------------- concurrency


def test_concurrent_assignments_never_oversell_seats(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Twelve users racing for two seats: exactly two win, consumedUnits ends at the limit."""
    upns = [f"racer{i}@contoso.com" for i in range(12)]
    for upn in upns:
        graph_emulator.add_user({"userPrincipalName": upn, "usageLocation": "FR"})
    body = {
        "addLicenses": [{"skuId": EXCHANGE_STANDARD_SKU, "disabledPlans": []}],
        "removeLicenses": [],
    }

    def race(upn: str) -> int:
        return graph_client.post(f"/users/{upn}/assignLicense", json=body).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(race, upns))
    assert sorted(statuses) == [200] * 2 + [400] * 10
    sku = next(
        s for s in graph_emulator.directory.subscribed_skus() if s["skuId"] == EXCHANGE_STANDARD_SKU
    )
    assert sku["consumedUnits"] == 2


# ---------------------------------------------------------------- bind, CLI


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])  # noqa: S104
def test_the_emulator_refuses_non_loopback_hosts(host: str) -> None:
    """It must never listen on a network interface."""
    with pytest.raises(ValueError, match="refusing to bind"):
        ensure_loopback(host)
    with pytest.raises(ValueError, match="refusing to bind"):
        start_emulator({}, host=host)


def test_a_directory_file_can_be_loaded_by_path(tmp_path: Path) -> None:
    """start_emulator accepts a JSON file path; ids are generated when omitted."""
    path = tmp_path / "directory.json"
    path.write_text('{"users": [{"userPrincipalName": "file@contoso.com"}]}', encoding="utf-8")
    with start_emulator(path) as emulator:
        assert emulator.user_record("file@contoso.com")["id"]


def test_the_shipped_sample_directory_loads() -> None:
    """The sample tenant the run scripts use is a valid directory file."""
    sample = REPO / "local_stack" / "graph_emulator" / "sample_directory.json"
    with start_emulator(sample) as emulator:
        assert emulator.user_record("jane.doe@contoso.com")["usageLocation"] == "FR"


def test_the_cli_prints_its_url_writes_the_ready_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`python -m local_stack.graph_emulator` is what the run scripts start."""
    directory = tmp_path / "directory.json"
    directory.write_text('{"users": [{"userPrincipalName": "cli@contoso.com"}]}', encoding="utf-8")
    ready = tmp_path / "port"
    command = [sys.executable, "-m", "local_stack.graph_emulator", "--directory", str(directory)]
    command += ["--port", "0", "--ready-file", str(ready), "--token", "t0k"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(  # noqa: S603 - fixed argv, our own module
        command, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            port = int(ready.read_text(encoding="utf-8"))
            assert line == f"graph-emulator listening on http://127.0.0.1:{port}/v1.0"
            response = httpx.get(
                f"http://127.0.0.1:{port}/v1.0/users/cli@contoso.com",
                headers={"Authorization": "Bearer t0k"},
            )
            assert response.status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close() if process.stdout else None


# ------------------------------------------------------------ the OpenAPI check


def test_the_openapi_check_accepts_graphs_own_shapes() -> None:
    """A real-shaped user, error and PATCH pass."""
    user: dict[str, Any] = {
        "@odata.context": "x",
        "id": JANE_ID,
        "assignedLicenses": [],
        "usageLocation": None,
    }
    error = {"error": {"code": "X", "message": "y", "innerError": {"date": "2024-02-14T11:10:50"}}}
    assert check_exchange("GET", f"/v1.0/users/{JANE_ID}?$select=id", 200, user) == []
    assert check_exchange("GET", "/v1.0/users('a''b@c.com')", 404, error) == []
    assert check_exchange("PATCH", "/users/x", 204, None, {"usageLocation": "FR"}) == []


@pytest.mark.parametrize(
    ("exchange", "expected"),
    [
        (("GET", "/users/x", 200, {"id": 5}), "at id: 5 is not of type 'string'"),
        (("GET", "/users/x", 404, {"error": {"message": "m"}}), "'code' is a required property"),
        (("PATCH", "/users/x", 204, {"id": "x"}), "has no body in the excerpt"),
        (("POST", "/users/x/assignLicense", 400, None, {"addLicenses": []}), "'removeLicenses'"),
        (("GET", "/users/x?$select=givenName", 200, {"id": "x"}), "givenName"),
        (("GET", "/groups", 200, {}), "no such operation"),
        (("POST", "/$batch", 200, {"responses": [{"id": "1"}]}, {"requests": []}), "'status'"),
    ],
)
def test_the_openapi_check_reports_violations(exchange: tuple[Any, ...], expected: str) -> None:
    """Wrong types, missing fields, unexpected bodies and unknown operations are reported."""
    problems = check_exchange(*exchange)
    assert any(expected in p for p in problems), problems


def test_the_openapi_check_follows_batch_items() -> None:
    """A $batch item's body is checked against the item's own operation."""
    request = {"requests": [{"id": "1", "method": "GET", "url": "/users/x"}]}
    response = {"responses": [{"id": "1", "status": 200, "body": {"id": 7}}]}
    problems = check_exchange("POST", "/v1.0/$batch", 200, response, request)
    assert problems == [
        "$batch item 1: GET /users/x -> 200 response: at id: 7 is not of type 'string'"
    ]


def test_the_fixture_check_flags_an_app_that_omits_remove_licenses() -> None:
    """The teardown check catches msgraph-sdk's missing removeLicenses in a request log."""
    with start_emulator(SAMPLE_DIRECTORY) as emulator:
        headers = {"Authorization": f"Bearer {emulator.token}"}
        with httpx.Client(base_url=emulator.base_url, headers=headers) as client:
            client.post(
                f"/users/{JANE_ID}/assignLicense",
                json={"addLicenses": [{"skuId": TEAMS_SKU, "disabledPlans": []}]},
            )
        log = emulator.requests()
    violations = openapi_violations(log)
    assert len(violations) == 1
    assert "'removeLicenses' is a required property" in violations[0]
    assert openapi_violations(log, check_requests=False) == []
