"""The stress suite's own tools, without a stack: the judge fails what it must fail, the
crash points count and exit where asked, the hostile bodies are reproducible and varied."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from local_stack.stress.bodies import KINDS, NAMED_KINDS, generate, queue_text, survey
from local_stack.stress.crashpoints import CRASH_EXIT_CODE, CrashPoints, read_count_file
from local_stack.stress.judge import Observed, judge, posted

E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"


def request(rid: str, **extra: Any) -> str:
    body = {"requestId": rid, "userPrincipalName": f"{rid.lower()}@contoso.com"}
    return json.dumps({**body, "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}], **extra})


def event(rid: str | None, word: str, **data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f"{rid}:{word}",
        "type": f"onboarding.user.{word}",
        "data": {"requestId": rid, **data},
    }
    if rid is not None:
        out["subject"] = rid
    return out


def observed(events: list[dict[str, Any]], **changes: Any) -> Observed:
    fields: dict[str, Any] = {
        "events": events,
        "graph_log": [],
        "seats_before": {E3: 0},
        "seats_after": {E3: 0},
        "held_before": set(),
        "issued_ids": {"u1"},
        "queue_counts": {"user-onboard": 0},
        **changes,
    }
    return Observed(**fields)


def licensed(rid: str, user: str = "u1") -> dict[str, Any]:
    licenses = [{"skuPartNumber": "ENTERPRISEPACK", "skuId": E3, "status": "assigned"}]
    return event(rid, "licensed", userId=user, licenses=licenses)


def test_a_clean_run_passes() -> None:
    messages = [posted("q1", request("R-1"), expect="licensed")]
    verdict = judge(messages, observed([licensed("R-1"), licensed("R-1")], seats_after={E3: 1}))
    assert verdict.ok, verdict.problems()


def test_a_message_without_an_answer_is_lost() -> None:
    messages = [posted("q1", request("R-1")), posted("q2", "not json")]
    verdict = judge(messages, observed([licensed("R-1")], seats_after={E3: 1}))
    assert len(verdict.lost) == 1
    assert "q2" in verdict.lost[0]


def test_two_terminal_ids_for_one_request_fail() -> None:
    messages = [posted("q1", request("R-1"))]
    failed = event("R-1", "failed", reason={"code": "sync_timeout"})
    verdict = judge(messages, observed([licensed("R-1"), failed], seats_after={E3: 1}))
    assert verdict.duplicated


def test_a_seat_without_a_licensed_user_fails() -> None:
    messages = [posted("q1", request("R-1"))]
    rejected = event("R-1", "rejected", reason={"code": "poison"})
    verdict = judge(messages, observed([rejected], seats_after={E3: 1}))
    assert verdict.seats
    assert verdict.poisoned_valid == ["R-1:rejected"]


def test_an_unescaped_or_foreign_filter_value_fails() -> None:
    messages = [posted("q1", request("R-1", onPremisesImmutableId="a'b"))]
    good = "%24filter=onPremisesImmutableId%20eq%20%27a%27%27b%27&%24select=id"
    bad = "%24filter=onPremisesImmutableId%20eq%20%27a%27b%27"
    foreign = "%24filter=employeeId%20eq%20%27x%27"
    log = [{"method": "GET", "path": "/v1.0/users", "query": q} for q in (good, bad, foreign)] + [
        {"method": "GET", "path": "/v1.0/users/r-1%40contoso.com/..%2Fme", "query": ""}
    ]
    verdict = judge(messages, observed([licensed("R-1")], graph_log=log, seats_after={E3: 1}))
    assert len(verdict.unescaped) == 3, verdict.unescaped


def test_an_invalid_message_reusing_a_request_id_is_answered_under_its_own_id() -> None:
    messages = [
        posted("q1", request("R-1"), expect="licensed"),
        posted("q2", json.dumps({"requestId": "R-1", "oops": 1})),
    ]
    own = event(None, "rejected", requestId="R-1", queueMessageId="q2")
    own["id"] = "message:q2:rejected"
    verdict = judge(messages, observed([licensed("R-1"), own], seats_after={E3: 1}))
    assert verdict.ok, verdict.problems()
    assert not judge(messages, observed([licensed("R-1")], seats_after={E3: 1})).ok


def test_crash_points_count_durable_calls_and_exit_at_the_chosen_one(tmp_path: Path) -> None:
    exits: list[int] = []

    class Port:
        async def publish(self, event: object) -> str:
            return "published"

        async def receive(self) -> str:
            return "not durable"

    points = CrashPoints(2, "after", tmp_path / "count", exit=exits.append)
    port = points.wrap("events", Port())

    async def run() -> None:
        assert await port.receive() == "not durable"
        await port.publish(1)
        await port.publish(2)
        await port.publish(3)

    asyncio.run(run())
    points.close()
    assert exits == [CRASH_EXIT_CODE]
    lines = read_count_file(tmp_path / "count")
    assert [(c.n, c.what, c.how) for c in lines] == [
        (1, "events.publish", "ok"),
        (2, "events.publish", "crash-after"),
        (2, "events.publish", "ok"),  # the fake exit returned; a real one never does
        (3, "events.publish", "ok"),
    ]
    assert points.wrap("unknown", "port") == "port"


def test_crash_points_on_one_call_count_only_that_call(tmp_path: Path) -> None:
    """STRESS_CRASH_ON=topic.publish, STRESS_CRASH_AT=2: the second topic publish, however
    many other durable calls came before it."""
    exits: list[int] = []

    class Sink:
        async def publish(self, event: object) -> None:
            return None

    env = {
        "STRESS_CRASH_AT": "2",
        "STRESS_CRASH_WHEN": "before",
        "STRESS_CRASH_ON": "topic.publish",
        "STRESS_COUNT_FILE": str(tmp_path / "count"),
    }
    points = CrashPoints.from_env(env)
    points._exit = exits.append
    queue, topic = points.wrap("events", Sink()), points.wrap("topic", Sink())

    async def run() -> None:
        for n in range(3):
            await queue.publish(n)
            await topic.publish(n)

    asyncio.run(run())
    points.close()
    crashed = [c for c in read_count_file(tmp_path / "count") if c.how.startswith("crash")]
    assert [(c.n, c.what, c.how) for c in crashed] == [(4, "topic.publish", "crash-before")]
    assert exits == [CRASH_EXIT_CODE]
    with pytest.raises(ValueError, match="STRESS_CRASH_ON"):
        CrashPoints(1, on="topic.send")


def test_crash_points_refuse_an_unknown_moment() -> None:
    with pytest.raises(ValueError, match="before"):
        CrashPoints(1, "during")


def test_hostile_bodies_are_reproducible_varied_and_fit_a_queue() -> None:
    bodies = generate(400, 7)
    assert bodies == generate(400, 7)
    stats = survey(bodies)
    assert stats.total == 400
    assert stats.distinct_ratio > 0.9
    assert not stats.missing_kinds, stats.by_kind
    assert set(NAMED_KINDS) <= set(KINDS)
    for body in bodies:
        assert len(queue_text(body.content).encode()) <= 60_000
