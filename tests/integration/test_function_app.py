"""function_app.py: the bindings it declares match the contract, and its entry points
work when called with real azure.functions objects."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from local_stack.stack import REPO, LocalStack
from shared import bootstrap

SAMPLES = REPO / "local_stack" / "samples"


@pytest.fixture(scope="module")
def functions() -> dict[str, Any]:
    """get_functions() may be called once per app object: read the bindings once."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def bindings(function: Any) -> list[dict[str, Any]]:
    return list(json.loads(function.get_function_json())["bindings"])


def test_the_queue_trigger_is_bound_to_user_onboard_on_the_functions_storage(
    functions: dict[str, Any],
) -> None:
    """queueName and connection as the contract and Bicep have them."""
    (trigger,) = bindings(functions["user_onboard"])
    assert trigger["type"] == "queueTrigger"
    assert trigger["queueName"] == "user-onboard"
    assert trigger["connection"] == "AzureWebJobsStorage"
    assert trigger["direction"] == "IN"


def test_the_sweep_runs_on_the_sweep_schedule_setting_and_not_at_every_cold_start(
    functions: dict[str, Any],
) -> None:
    """%SWEEP_SCHEDULE% is resolved by the host; runOnStartup stays off in production."""
    (trigger,) = bindings(functions["sweep"])
    assert trigger["type"] == "timerTrigger"
    assert trigger["schedule"] == "%SWEEP_SCHEDULE%"
    assert trigger.get("runOnStartup", False) is False
    assert trigger["useMonitor"] is True


def test_these_are_the_only_functions(functions: dict[str, Any]) -> None:
    """No output bindings besides the HTTP answers: the app writes its queues itself,
    after Graph, in order."""
    assert set(functions) == {"user_onboard", "sweep", "submit_request", "request_status"}
    assert all(len(bindings(functions[name])) == 1 for name in ("user_onboard", "sweep"))


@pytest.mark.parametrize(
    ("name", "route", "method"),
    [
        ("submit_request", "onboarding-requests", "POST"),
        ("request_status", "onboarding-requests/{requestId}", "GET"),
    ],
)
def test_the_http_routes_are_the_contracts_and_the_app_checks_callers_itself(
    functions: dict[str, Any], name: str, route: str, method: str
) -> None:
    """One method per route; anonymous to the host (no function key as the only guard):
    the app validates each Entra ID token and role."""
    trigger, answer = bindings(functions[name])
    assert trigger["type"] == "httpTrigger"
    assert (trigger["route"], trigger["methods"]) == (route, [method])
    assert trigger["authLevel"] == "ANONYMOUS"
    assert (answer["type"], answer["direction"]) == ("http", "OUT")


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with LocalStack(tmp_path, SAMPLES / "directory.json") as stack:
        for name, value in stack.app_environment().items():
            monkeypatch.setenv(name, value)
        asyncio.run(bootstrap.aclose())
        yield stack
        asyncio.run(bootstrap.aclose())


def test_the_entry_points_run_with_real_binding_objects(
    functions: dict[str, Any], local: LocalStack
) -> None:
    """A func.QueueMessage in, a licensed event out; a TimerRequest runs the sweep."""
    onboard = functions["user_onboard"].get_user_function()
    sweep = functions["sweep"].get_user_function()
    body = {
        "requestId": "FA-1",
        "userPrincipalName": "jane.doe@contoso.com",
        "licenses": [{"skuPartNumber": "MCOEV"}, {"skuPartNumber": "ENTERPRISEPACK"}],
    }
    local.queue("user-onboard-poison").send_message("poisoned text")

    async def invoke() -> None:
        try:
            await onboard(func.QueueMessage(id="qm-1", body=json.dumps(body).encode()))
            await sweep(TimerRequest(past_due=False))
        finally:
            await bootstrap.aclose()

    asyncio.run(invoke())
    events = {e["id"]: e for e in local.drain_events()}
    assert set(events) == {"FA-1:licensed", f"message:{_poison_id(events)}:rejected"}
    assert local.count("user-onboard-poison") == 0


def _poison_id(events: dict[str, Any]) -> str:
    (rejected,) = [e for e in events.values() if e["type"].endswith("rejected")]
    return str(rejected["data"]["queueMessageId"])


def test_a_malformed_setting_stops_the_app_at_start_up_naming_it() -> None:
    """Indexing fails (the functions never load) with the setting's name in the error."""
    result = subprocess.run(
        [sys.executable, "-c", "import function_app"],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "SYNC_TIMEOUT": "one day",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "app setting SYNC_TIMEOUT" in result.stderr


def test_a_worker_that_only_imports_the_app_does_not_load_the_token_library() -> None:
    """PyJWT and its crypto are imported at the first HTTP call, not at every cold start."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, function_app; from shared import bootstrap; bootstrap.front_door(); "
            "print('jwt' in sys.modules)",
        ],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            # Identity-based storage: the clients are built without a call (nothing to create).
            "AzureWebJobsStorage__queueServiceUri": "https://account.queue.core.windows.net",
            "AzureWebJobsStorage__tableServiceUri": "https://account.table.core.windows.net",
            "API_AUDIENCE": "04b5f840-6455-49d1-b5e2-f7f15ce5b2f9",
            "API_TENANT_ID": "200d1715-8843-42a8-92c2-6da554acc700",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "False"), result.stderr
