"""$batch, throttling and injected faults: the transient trouble the app must survive."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from local_stack.graph_emulator import Emulator, ManualClock
from tests.support.graph import JANE_ID, JANE_UPN, TEAMS_SKU


def get_item(item_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "method": "GET", "url": url, **extra}


def batch(client: httpx.Client, items: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/$batch", json={"requests": items})


def by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in response.json()["responses"]}


# -------------------------------------------------------------------- $batch


def test_a_batch_answers_each_item_like_the_single_call(graph_client: httpx.Client) -> None:
    """Items with and without a leading slash, reads and writes, each get their own status."""
    response = batch(
        graph_client,
        [
            get_item("1", f"/users/{JANE_ID}?$select=id,usageLocation"),
            get_item("2", "users/nobody@contoso.com"),
            {
                "id": "3",
                "method": "PATCH",
                "url": "/users/alice@contoso.com",
                "headers": {"Content-Type": "application/json"},
                "body": {"usageLocation": "GB"},
            },
        ],
    )
    assert response.status_code == 200
    items = by_id(response)
    assert items["1"]["status"] == 200
    assert items["1"]["body"]["usageLocation"] == "FR"
    assert set(items["1"]["body"]) == {"@odata.context", "id", "usageLocation"}
    assert items["2"]["status"] == 404
    assert items["2"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert items["3"]["status"] == 204
    assert "body" not in items["3"]


@pytest.mark.graph_invalid_requests
def test_a_batch_takes_twenty_items_and_refuses_twenty_one(graph_client: httpx.Client) -> None:
    """Graph's batch limit is 20 requests; more fails the whole batch with 400."""
    items = [get_item(str(i), f"/users/{JANE_ID}?$select=id") for i in range(21)]
    ok = batch(graph_client, items[:20])
    assert ok.status_code == 200
    assert [r["status"] for r in ok.json()["responses"]] == [200] * 20
    refused = batch(graph_client, items)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "BadRequest"
    assert "20" in refused.json()["error"]["message"]


def test_an_item_whose_dependency_failed_is_424_and_never_runs(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """dependsOn on a failed item yields 424 without executing the dependent write."""
    response = batch(
        graph_client,
        [
            get_item("lookup", "/users/ghost@contoso.com?$select=id"),
            {
                "id": "write",
                "method": "PATCH",
                "url": "/users/alice@contoso.com",
                "dependsOn": ["lookup"],
                "headers": {"Content-Type": "application/json"},
                "body": {"usageLocation": "GB"},
            },
        ],
    )
    items = by_id(response)
    assert items["lookup"]["status"] == 404
    assert items["write"]["status"] == 424
    assert items["write"]["body"]["error"]["code"] == "FailedDependency"
    assert graph_emulator.user_record("alice@contoso.com")["usageLocation"] == "US"


def test_dependencies_run_first_whatever_the_item_order(graph_client: httpx.Client) -> None:
    """An item listed first but depending on a later one runs after it."""
    response = batch(
        graph_client,
        [
            get_item("read", "/users/alice@contoso.com?$select=usageLocation", dependsOn=["write"]),
            {
                "id": "write",
                "method": "PATCH",
                "url": "/users/alice@contoso.com",
                "headers": {"Content-Type": "application/json"},
                "body": {"usageLocation": "GB"},
            },
        ],
    )
    assert by_id(response)["read"]["body"]["usageLocation"] == "GB"
    assert sorted(r["id"] for r in response.json()["responses"]) == ["read", "write"]


@pytest.mark.graph_invalid_requests
@pytest.mark.parametrize(
    "requests",
    [
        [get_item("1", "/users/x"), get_item("1", "/users/y")],
        [get_item("1", "/users/x", dependsOn=["9"])],
        [get_item("1", "/users/x", dependsOn=["2"]), get_item("2", "/users/y", dependsOn=["1"])],
        [{"id": "1", "method": "PATCH", "url": "/users/x", "body": {"usageLocation": "FR"}}],
        [{"id": "1", "url": "/users/x"}],
    ],
)
def test_a_malformed_batch_is_refused_whole(
    graph_client: httpx.Client, requests: list[dict[str, Any]]
) -> None:
    """Duplicate ids, unknown or circular dependsOn, a body without Content-Type: 400."""
    response = batch(graph_client, requests)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


def test_batch_items_are_logged_on_their_own(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """The log holds each item, flagged batchItem, then the outer $batch."""
    graph_emulator.clear_requests()
    batch(graph_client, [get_item("1", f"/users/{JANE_ID}?$select=id")])
    log = graph_emulator.requests()
    assert [(e["method"], e["path"], e["batchItem"]) for e in log] == [
        ("GET", f"/v1.0/users/{JANE_ID}", True),
        ("POST", "/v1.0/$batch", False),
    ]
    assert log[0]["query"] == "$select=id"
    assert log[0]["headers"]["authorization"] is True


# ---------------------------------------------------------------- throttling


def test_over_budget_calls_get_429_with_retry_after(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """Budget 4 units: two unselected user queries (2 each) pass, the third is 429 until the end."""
    graph_emulator.set_throttle(units_per_10s=4)
    query = {"$filter": "employeeId eq '000123'"}
    assert graph_client.get("/users", params=query).status_code == 200
    assert graph_client.get("/users", params=query).status_code == 200
    graph_clock.advance(3)
    throttled = graph_client.get("/users", params=query)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    graph_clock.advance(7)
    assert graph_client.get("/users", params=query).status_code == 200


def test_select_makes_a_user_read_cheaper(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """With $select a user query costs 1 unit instead of 2."""
    graph_emulator.set_throttle(units_per_10s=4)
    query = {"$filter": "employeeId eq '000123'", "$select": "id"}
    statuses = [graph_client.get("/users", params=query).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


def test_subscribed_skus_cost_three_units(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """subscribedSkus is the expensive read."""
    graph_emulator.set_throttle(units_per_10s=5)
    assert graph_client.get("/subscribedSkus").status_code == 200
    assert graph_client.get("/subscribedSkus").status_code == 429


def test_writes_have_their_own_150_second_budget(
    graph_client: httpx.Client, graph_emulator: Emulator, graph_clock: ManualClock
) -> None:
    """Writes are also limited per 150 s, whatever the resource units left."""
    graph_emulator.set_throttle(units_per_10s=0, writes_per_150s=2)
    patch = {"usageLocation": "FR"}
    assert graph_client.patch("/users/alice@contoso.com", json=patch).status_code == 204
    assert graph_client.patch("/users/alice@contoso.com", json=patch).status_code == 204
    graph_clock.advance(50)
    refused = graph_client.patch("/users/alice@contoso.com", json=patch)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "100"


def test_batch_items_are_throttled_one_by_one(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Within one batch, items over budget are 429 (with Retry-After) while others succeed."""
    graph_emulator.set_throttle(units_per_10s=2)
    response = batch(
        graph_client, [get_item(str(i), f"/users/{JANE_ID}?$select=id") for i in range(3)]
    )
    assert response.status_code == 200
    items = by_id(response)
    assert [items[str(i)]["status"] for i in range(3)] == [200, 200, 429]
    assert items["2"]["headers"]["Retry-After"] == "10"


# -------------------------------------------------------------------- faults


def test_a_503_fault_fires_count_times_then_stops(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """rate 1 and count 2: exactly the next two matching calls fail."""
    graph_emulator.add_fault(path="^/users/", status=503, retryAfter=2, rate=1, count=2)
    statuses = [graph_client.get(f"/users/{JANE_ID}").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert graph_client.get("/subscribedSkus").status_code == 200


def test_a_fault_answers_with_graphs_error_and_retry_after(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """An injected 429 looks like Graph's: error body plus Retry-After."""
    graph_emulator.add_fault(method="POST", path="assignLicense$", status=429, retryAfter=3)
    response = graph_client.post(
        f"/users/{JANE_ID}/assignLicense",
        json={"addLicenses": [{"skuId": TEAMS_SKU, "disabledPlans": []}], "removeLicenses": []},
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["error"]["code"] == "TooManyRequests"
    assert graph_client.get(f"/users/{JANE_ID}").status_code == 200


def test_a_fault_with_a_rate_fires_only_sometimes(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """rate 0.5 fails some calls and lets others through."""
    graph_emulator.add_fault(path=".*", status=504, rate=0.5)
    statuses = {graph_client.get(f"/users/{JANE_ID}").status_code for _ in range(30)}
    assert statuses == {200, 504}


def test_a_fault_can_hit_one_batch_item(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """Faults are matched per item: one item 503, the other 200."""
    graph_emulator.add_fault(path="alice", status=503)
    response = batch(
        graph_client,
        [get_item("a", "/users/alice@contoso.com?$select=id"), get_item("j", f"/users/{JANE_UPN}")],
    )
    assert {k: v["status"] for k, v in by_id(response).items()} == {"a": 503, "j": 200}


def test_a_delay_fault_slows_the_answer(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """delayMs holds the response back without changing it."""
    graph_emulator.add_fault(path="^/subscribedSkus", delayMs=300, count=1)
    started = time.monotonic()
    assert graph_client.get("/subscribedSkus").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_a_delay_longer_than_the_client_timeout_is_a_timeout(
    graph_emulator: Emulator,
) -> None:
    """A slow Graph surfaces as the client's own timeout."""
    graph_emulator.add_fault(path="^/subscribedSkus", delayMs=400, count=1)
    headers = {"Authorization": f"Bearer {graph_emulator.token}"}
    with (
        httpx.Client(base_url=graph_emulator.base_url, headers=headers, timeout=0.1) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.get("/subscribedSkus")


def test_a_drop_fault_closes_the_connection_without_an_answer(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """drop: the client sees a broken connection, and the log records it."""
    graph_emulator.add_fault(path="^/users/", drop=True, count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        graph_client.get(f"/users/{JANE_ID}")
    assert graph_client.get(f"/users/{JANE_ID}").status_code == 200
    assert graph_emulator.requests()[0]["dropped"] is True


def test_clearing_faults_restores_normal_service(
    graph_client: httpx.Client, graph_emulator: Emulator
) -> None:
    """clear_faults removes unlimited faults."""
    graph_emulator.add_fault(status=500)
    assert graph_client.get("/subscribedSkus").status_code == 500
    graph_emulator.clear_faults()
    assert graph_client.get("/subscribedSkus").status_code == 200
