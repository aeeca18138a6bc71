"""The big-day benchmark's harness reports what happened: a tiny run (30 users, two
queue-trigger processes, time 20 times faster) whose counts must add up, and its pieces
(time scaling, the storage-request counter, the summary of a request log) on their own.
No timing is asserted: speed belongs in docs/benchmarks.md."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local_stack.bench.bigday.cli import projection
from local_stack.bench.bigday.figures import graph_figures, request_id, summarize
from local_stack.bench.bigday.run import BigDay, run
from local_stack.bench.bigday.scale import TimeScale, sweep_schedule
from local_stack.bench.bigday.storage_proxy import RequestCounter, resource_of
from local_stack.devhost.config import apply_host_overrides, parse_host_options
from local_stack.devhost.ncrontab import parse_schedule
from shared.settings import Settings


@pytest.mark.stack
def test_a_tiny_big_day_reports_every_request_once_and_counts_that_add_up(
    tmp_path: Path,
) -> None:
    """30 users: 30 terminal events (no more, none missing), one write per licensed user,
    one delete per intake message and one event per request counted at the storage proxy,
    the pacing record's reads and writes told apart, and a peak RSS for each of the three
    hosts."""
    figures = run(BigDay(users=30, processes=2, scale=TimeScale(20), state=tmp_path))

    assert figures["finished"] is True
    assert figures["without_terminal_event"] == 0
    assert figures["terminal_events_seen"] == 30
    assert figures["outcomes"] == {"licensed": 30}
    assert figures["writes"] == 30
    assert figures["graph"].get("writes_sent", 0) == 30 + figures["graph"].get("writes_429", 0)
    assert figures["poison_queue"] == 0
    assert figures["seconds_to_last_terminal"] > 0
    assert figures["ratio_to_floor"] == pytest.approx(
        figures["seconds_to_last_terminal"] / figures["floor_seconds"]
    )
    kinds = figures["storage_by_kind"]
    assert kinds["queue DELETE user-onboard/messages/{id}"] == 30
    assert kinds["queue POST user-onboard-events/messages"] == 30
    assert figures["storage_per_user"] == pytest.approx(figures["storage_requests"] / 30)
    assert figures["pacing_requests"] > 0  # the hosts pace their writes through the record
    assert (
        kinds["table GET onboardingrequests(~pacing)"]
        + kinds.get("table PUT onboardingrequests(~pacing)", 0)
        == figures["pacing_requests"]
    )
    rss = figures["peak_rss_mib"]
    assert len(rss["queue"]) == 2
    assert len(rss["timer"]) == 1
    assert all(value > 0 for value in rss["queue"] + rss["timer"])


def test_the_summary_counts_429s_on_reads_and_writes_and_divides_by_successful_writes() -> None:
    """Batch envelopes are not calls; 429s count per item; per write means per successful
    write; a request without a terminal event is counted as such."""
    t0 = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    log = [
        {"method": "GET", "path": "/v1.0/users/a", "status": 200},
        {"method": "GET", "path": "/v1.0/users/b", "status": 429, "batchItem": True},
        {"method": "POST", "path": "/v1.0/$batch", "status": 200},
        {"method": "POST", "path": "/v1.0/users/a/assignLicense", "status": 429},
        {"method": "POST", "path": "/v1.0/users/a/assignLicense", "status": 429},
        {"method": "POST", "path": "/v1.0/users/a/assignLicense", "status": 200},
    ]
    events = [
        {"type": "com.contoso.useronboarding.waiting", "subject": request_id(0), "time": "x"},
        {
            "type": "com.contoso.useronboarding.licensed",
            "subject": request_id(0),
            "time": (t0 + timedelta(seconds=45)).isoformat(),
        },
    ]
    config = BigDay(users=2, processes=1, scale=TimeScale(5))
    figures = summarize(
        config,
        t0,
        events,
        log,
        Counter({"queue GET x": 7, "table POST y": 3}),
        finished=False,
        poison=0,
        pending=1,
        rss={"queue": [70.0], "timer": [68.0]},
    )
    assert graph_figures(log) == {
        "reads_sent": 2,
        "reads_ok": 1,
        "reads_429": 1,
        "batch_envelopes": 1,
        "writes_sent": 3,
        "writes_429": 2,
        "writes_ok": 1,
    }
    assert figures["writes"] == 1
    assert figures["throttled_total"] == 3
    assert figures["throttled_per_write"] == 3
    assert figures["floor_seconds"] == pytest.approx(2 / 100)
    assert figures["seconds_to_last_terminal"] == 45
    assert figures["outcomes"] == {"licensed": 1}
    assert figures["without_terminal_event"] == 1
    assert figures["storage_per_user"] == 5


def test_the_storage_counter_finds_each_request_in_a_kept_alive_stream() -> None:
    """Pipelined requests with Content-Length and chunked bodies, split anywhere, are each
    counted once under their folded resource."""
    stream = (
        b"GET /devstoreaccount1/user-onboard/messages?numofmessages=16 HTTP/1.1\r\n"
        b"Host: x\r\n\r\n"
        b"POST /devstoreaccount1/user-onboard-events/messages HTTP/1.1\r\n"
        b"Content-Length: 11\r\n\r\n<x>body</x>"
        b"PUT /devstoreaccount1/onboardingrequests(PartitionKey='a',RowKey='b') HTTP/1.1\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"
        b"DELETE /devstoreaccount1/user-onboard/messages/abc-123?popreceipt=z HTTP/1.1\r\n\r\n"
    )
    counts: Counter[str] = Counter()
    counter = RequestCounter("queue", counts)
    for start in range(0, len(stream), 7):
        counter.feed(stream[start : start + 7])
    assert counts == {
        "queue GET user-onboard/messages": 1,
        "queue POST user-onboard-events/messages": 1,
        "queue PUT onboardingrequests(key)": 1,
        "queue DELETE user-onboard/messages/{id}": 1,
    }
    assert resource_of("/devstoreaccount1/user-onboard?comp=metadata") == (
        "user-onboard?comp=metadata"
    )
    pacing = "/devstoreaccount1/onboardingrequests(PartitionKey='~pacing',RowKey='graph')"
    assert resource_of(pacing) == "onboardingrequests(~pacing)"
    quoted = "/devstoreaccount1/onboardingrequests(PartitionKey=%27~pacing%27,RowKey=%27graph%27)"
    assert resource_of(quoted) == "onboardingrequests(~pacing)"


def test_the_time_scale_divides_production_settings_and_host_json_as_the_app_reads_them() -> None:
    """At 5x: sweep every minute on the minute, rechecks after 60 s (up to 6 min), leases and
    visibility 6 s; the app's settings and the host's options accept every value."""
    scale = TimeScale(5)
    settings = Settings.from_env(
        {
            **scale.app_settings(),
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "GRAPH_BASE_URL": "http://127.0.0.1:1/v1.0",
        }
    )
    assert settings.sweep_schedule == "0 */1 * * * *"
    assert settings.recheck_initial_delay == timedelta(seconds=60)
    assert settings.recheck_max_delay == timedelta(minutes=6)
    assert settings.sync_timeout == timedelta(hours=24) / 5
    assert settings.poison_hold == timedelta(minutes=12)
    assert settings.cloud_sync_job is None
    env = scale.host_env()
    options = parse_host_options(apply_host_overrides({"version": "2.0"}, env))
    assert options.function_timeout == timedelta(minutes=2)
    assert options.queues.visibility_timeout == timedelta(seconds=6)
    assert options.queues.max_polling_interval == timedelta(seconds=2)
    assert env["DEVHOST_MESSAGE_LEASE_SECONDS"] == "120"
    assert float(env["BIGDAY_TIME_SCALE"]) == 5


def test_a_sweep_period_that_divides_no_minute_becomes_a_timespan_schedule() -> None:
    """5 min / 7 is not a whole number of seconds: a TimeSpan the host can parse."""
    expression = sweep_schedule(timedelta(minutes=5) / 7)
    assert expression == "00:00:42.857"
    assert parse_schedule(expression) is not None
    assert sweep_schedule(timedelta(minutes=5)) == "0 */5 * * * *"


def test_a_time_scale_below_one_is_refused_and_the_projection_uses_graphs_write_rate() -> None:
    """S < 1 would slow Graph down; 50,000 writes at 20/s take 41.7 minutes."""
    with pytest.raises(ValueError, match="at least 1"):
        TimeScale(0.5)
    assert projection(1.0)["floor_minutes"] == pytest.approx(2500 / 60)
    assert projection(2.0)["minutes"] == pytest.approx(5000 / 60)
    assert projection(None)["minutes"] is None
