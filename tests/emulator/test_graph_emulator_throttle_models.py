"""Throttling models and time scale: Graph's token bucket, and Graph's clock run faster for
benchmarks (the budgets stay Graph's numbers)."""

from __future__ import annotations

import httpx
import pytest

from local_stack.graph_emulator import DEFAULT_TOKEN, ManualClock, start_emulator
from local_stack.graph_emulator.throttle import Admitted, Refused, Throttle
from tests.support.graph import JANE_UPN, SAMPLE_DIRECTORY

APP = "Bearer app"


def spend_writes(throttle: Throttle, writes: int) -> None:
    """A busy day: the app has used `writes` of its write budget just now."""
    assert isinstance(throttle.admit(APP, 1, writes), Admitted)


def test_a_time_scale_shortens_the_write_window_and_retry_after() -> None:
    """At 5x, a spent write budget comes back after 30 s and Retry-After says so in 1/5 s."""
    clock = ManualClock()
    throttle = Throttle(clock, 0, 3000, time_scale=5)
    spend_writes(throttle, 3000)
    clock.advance(10.05)
    refused = throttle.admit(APP, 1, 1)
    assert isinstance(refused, Refused)
    assert refused.retry_after == pytest.approx(20.0)
    assert refused.headers(APP)["Retry-After"] == "20"
    clock.advance(19.9)
    refused = throttle.admit(APP, 1, 1)
    assert isinstance(refused, Refused)
    assert refused.headers(APP)["Retry-After"] == "0.2"  # 0.1 s left: one step of 1/5 s
    clock.advance(0.1)
    assert isinstance(throttle.admit(APP, 1, 1), Admitted)


def test_a_time_scale_keeps_the_budgets_so_the_rate_is_scaled() -> None:
    """At 10x the resource units are still 3,500 a window, which lasts 1 s."""
    clock = ManualClock()
    throttle = Throttle(clock, 3500, 0, time_scale=10)
    assert isinstance(throttle.admit(APP, 3500), Admitted)
    refused = throttle.admit(APP, 1)
    assert isinstance(refused, Refused)
    assert refused.retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    assert isinstance(throttle.admit(APP, 3500), Admitted)


def test_the_bucket_refills_at_graphs_write_rate_after_the_budget_is_spent() -> None:
    """3,000 writes per 150 s as a bucket: spent, it admits a write every 1/20 s again."""
    clock = ManualClock()
    throttle = Throttle(clock, 0, 3000, model="bucket")
    spend_writes(throttle, 3000)
    refused = throttle.admit(APP, 1, 1)
    assert isinstance(refused, Refused)
    assert refused.limit == "Write"
    assert refused.information == "WriteLimitExceeded"
    clock.advance(0.1)  # the refused call's debt, then one write's worth
    verdicts = [throttle.admit(APP, 1, 1)]
    for _ in range(199):  # a paced client: one write every 1/20 s
        clock.advance(0.05)
        verdicts.append(throttle.admit(APP, 1, 1))
    assert all(isinstance(v, Admitted) for v in verdicts)


def test_a_client_calling_at_the_refill_rate_while_in_debt_never_gets_through() -> None:
    """Refused calls are charged: sending at 20/s into a spent bucket keeps every call refused."""
    clock = ManualClock()
    throttle = Throttle(clock, 0, 3000, model="bucket")
    spend_writes(throttle, 3000)
    verdicts = []
    for _ in range(100):
        verdicts.append(throttle.admit(APP, 1, 1))
        clock.advance(0.05)
    assert all(isinstance(v, Refused) for v in verdicts)


def test_the_bucket_admits_calls_within_the_budget_and_refuses_only_those_over_it() -> None:
    """Unlike the window model, a refused write does not block the next one once it fits."""
    clock = ManualClock()
    throttle = Throttle(clock, 0, 3000, model="bucket")
    spend_writes(throttle, 2999)
    assert isinstance(throttle.admit(APP, 1, 1), Admitted)
    assert isinstance(throttle.admit(APP, 1, 1), Refused)
    clock.advance(0.1)  # two writes' worth refilled, one of them paid the refused call's debt
    assert isinstance(throttle.admit(APP, 1, 1), Admitted)


def test_calls_sent_while_throttled_push_the_next_success_further_away() -> None:
    """Each refused call is charged, so Retry-After grows with every call sent meanwhile."""
    clock = ManualClock()
    throttle = Throttle(clock, 0, 3000, model="bucket")
    spend_writes(throttle, 3000)
    waits = []
    for _ in range(40):
        refused = throttle.admit(APP, 1, 1)
        assert isinstance(refused, Refused)
        waits.append(refused.retry_after)
    assert waits[0] == 1  # whole seconds, at least one
    assert waits[-1] == 3  # 40 writes of debt and this one: 2.05 s at 20 a second
    assert waits == sorted(waits)


def test_an_unknown_model_or_a_time_scale_of_zero_is_refused() -> None:
    """Options that cannot work raise at construction."""
    with pytest.raises(ValueError, match="model"):
        Throttle(ManualClock(), model="sliding")
    with pytest.raises(ValueError, match="time_scale"):
        Throttle(ManualClock(), time_scale=0)


def test_the_emulator_answers_a_scaled_bucket_429_over_http() -> None:
    """start_emulator(time_scale=, throttle_model=): a write over budget is 429 with a
    Retry-After in steps of 1/S and WriteLimitExceeded."""
    clock = ManualClock()
    with start_emulator(
        SAMPLE_DIRECTORY,
        clock=clock,
        units_per_10s=0,
        writes_per_150s=2,
        time_scale=5,
        throttle_model="bucket",
    ) as graph:
        headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
        with httpx.Client(base_url=graph.base_url, headers=headers) as client:
            patch = {"usageLocation": "FR"}
            statuses = [
                client.patch(f"/users/{JANE_UPN}", json=patch).status_code for _ in range(2)
            ]
            refused = client.patch(f"/users/{JANE_UPN}", json=patch)
    assert statuses == [204, 204]
    assert refused.status_code == 429
    # One write of debt after the refused call: two writes at 2 per 30 s = 30 s.
    assert refused.headers["Retry-After"] == "30"
    assert refused.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
