"""`make run`: the sample batch through the whole local stack, with an outcome table.

Starts Azurite, the Graph emulator (loaded with `samples/directory.json`; also the local
Entra ID issuer), the Event Grid stand-in with its two sample consumers
(`samples/event-grid-subscriptions.json`) and the development host running
`function_app.py`; posts every message of `samples/batch.json` to `user-onboard`, or, for a
case with `"via": "http"`, to the HTTP front door with the sample HR system's token; prints
each event as it arrives; then a table of each request's outcome against the expected one
(for an HTTP case, also what the status query says at the end), and a table of what each
Event Grid consumer received against what its filter allows of the events queue. Stops
everything it started and exits 0 only if every sample reached its expected outcome and
each consumer got every event its filter allows.

`python -m local_stack.run --mode group` (`make run MODE=group`) runs the same batch with
LICENSING_MODE=group; a case's `expectGroup` replaces its `expect` there. A case's
`startInSeconds` / `deadlineInSeconds` set `startDate` / `syncDeadline` that far after
posting; `moveToTeamsWhenBlocked` moves its user from Skype for Business Server to Teams
(the emulator's control API, as an administrator's Move-CsUser) once the request is
announced `blocked`; `expect.teams` is the status `licensed` must give the phone number.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from local_stack.stack import REPO, LocalStack

SAMPLES = Path(__file__).resolve().parent / "samples"
ROUTE = "/api/onboarding-requests"
TIMEOUT_SECONDS = 75.0
TOPIC_TIMEOUT_SECONDS = 20.0


def encode(case: dict[str, Any]) -> str:
    message = dict(case["message"])
    now = datetime.now(UTC)
    if "startInSeconds" in case:
        message["startDate"] = (now + timedelta(seconds=case["startInSeconds"])).isoformat()
    if "deadlineInSeconds" in case:
        message["syncDeadline"] = (now + timedelta(seconds=case["deadlineInSeconds"])).isoformat()
    text = json.dumps(message)
    if case.get("encoding") == "base64":
        text = base64.b64encode(text.encode()).decode()
    return text


def verdict(
    case: dict[str, Any], event: dict[str, Any] | None, seen: list[str], mode: str = "direct"
) -> tuple[str, bool]:
    """What happened, in a few words, and whether it is what the case expects."""
    expect = case.get("expectGroup", case["expect"]) if mode == "group" else case["expect"]
    if event is None:
        return "no terminal event", False
    outcome = event["type"].rsplit(".", 1)[-1]
    data = event["data"]
    got = outcome
    ok = outcome == expect["outcome"]
    if "reason" in data:
        got += f" ({data['reason']['code']})"
        ok = ok and data["reason"]["code"] == expect.get("reason")
    if "licenses" in data:
        statuses = {lic["skuPartNumber"]: lic["status"] for lic in data["licenses"]}
        got += " " + ", ".join(f"{k}={v}" for k, v in statuses.items())
        ok = ok and statuses == expect.get("licenses")
    if "teams" in data or "teams" in expect:
        teams = data.get("teams") or {}
        got += f" phone {teams.get('phoneNumber')}={teams.get('status')}"
        ok = ok and teams.get("status") == expect.get("teams")
    if expect.get("after"):
        ok = ok and expect["after"] in seen
        got = f"{expect['after']} → {got}" if expect["after"] in seen else got
    return got, ok


def post_over_http(stack: LocalStack, text: str) -> str:
    """POST a request to the front door as an HR system does (the sample `hr` client's
    token); its status and Location, in a few words."""
    answer = httpx.post(
        stack.http_url() + ROUTE,
        content=text.encode("utf-8"),
        headers={"Authorization": f"Bearer {stack.token('hr')}"},
        timeout=30,
    )
    return f"{answer.status_code} Location: {answer.headers.get('Location', '-')}"


def status_over_http(stack: LocalStack, request_id: str) -> str:
    """The request's state as the status query gives it (the sample reporting client)."""
    answer = httpx.get(
        f"{stack.http_url()}{ROUTE}/{quote(request_id, safe='')}",
        headers={"Authorization": f"Bearer {stack.token('reporting')}"},
        timeout=30,
    )
    return str(answer.json().get("state", answer.status_code))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.run", description=__doc__)
    parser.add_argument("--mode", choices=["direct", "group"], default="direct")
    mode = parser.parse_args(argv).mode
    cases: list[dict[str, Any]] = json.loads((SAMPLES / "batch.json").read_text())
    state = REPO / ".state" / "run"
    shutil.rmtree(state, ignore_errors=True)
    started = time.monotonic()
    print(
        f"Starting Azurite, the Graph emulator and the development host ({mode} mode)...",
        flush=True,
    )
    settings = {"LICENSING_MODE": mode}
    with LocalStack(state, SAMPLES / "directory.json", settings=settings, event_grid=True) as stack:
        stack.start_host()
        ids = []
        posted = {}  # requestId -> its answer, for the cases posted over HTTP
        for case in cases:
            if case.get("via") == "http":
                posted[case["message"]["requestId"]] = post_over_http(stack, encode(case))
            else:
                stack.post(encode(case))
            ids.append(case["message"]["requestId"])
        queued = len(cases) - len(posted)
        print(f"Posted {queued} requests to user-onboard and {len(posted)} over HTTP:", flush=True)
        for request_id, answer in posted.items():
            print(f"  {request_id}: POST {ROUTE} -> {answer}", flush=True)
        print("Events as they arrive:", flush=True)

        movers = {
            c["message"]["requestId"]: c["message"]["userPrincipalName"]
            for c in cases
            if c.get("moveToTeamsWhenBlocked")
        }

        def show(event: dict[str, Any]) -> None:
            elapsed = time.monotonic() - started
            reason = event["data"].get("reason", {}).get("code", "")
            who = event.get("subject", event["id"])
            print(f"  {elapsed:5.1f}s  {who:<12} {event['type']} {reason}", flush=True)
            if event["type"].endswith(".blocked") and who in movers and stack.graph:
                stack.graph.move_to_teams(movers.pop(who))
                print(f"  {elapsed:5.1f}s  {who:<12} (moved to Teams: Move-CsUser)", flush=True)

        terminal = stack.wait_for_terminal(ids, TIMEOUT_SECONDS, on_event=show)
        by_request: dict[str, list[str]] = {}
        for event in stack.events_seen:
            by_request.setdefault(event.get("subject", ""), []).append(
                event["type"].rsplit(".", 1)[-1]
            )
        poisoned = stack.count("user-onboard-poison")
        consumers = consumer_rows(stack)
        events_seen = list(stack.events_seen)
        rows = []
        for case, request_id in zip(cases, ids, strict=True):
            seen = by_request.get(request_id, [])
            got, ok = verdict(case, terminal.get(request_id), seen, mode)
            if request_id in posted:  # accepted, and the status query agrees with the event
                said = status_over_http(stack, request_id)
                event = terminal.get(request_id) or {"type": "-"}
                ok = ok and posted[request_id].startswith("202")
                ok = ok and said == event["type"].rsplit(".", 1)[-1]
                got = f"HTTP 202 → {got}; GET: {said}"
            rows.append((request_id, case["case"], got, ok))
        log_tail = stack.host_log()[-2000:]

    elapsed = time.monotonic() - started
    width = max(len(r[1]) for r in rows)
    print()
    print(f"{'request':<12}  {'case':<{width}}  {'ok':<4}  outcome")
    print(f"{'-' * 12}  {'-' * width}  ----  {'-' * 40}")
    for request_id, case_name, got, ok in rows:
        print(f"{request_id:<12}  {case_name:<{width}}  {'yes' if ok else 'NO':<4}  {got}")
    passed = sum(1 for r in rows if r[3])
    print(
        f"\n{passed}/{len(rows)} samples reached their expected outcome in {elapsed:.1f}s; "
        f"poison queue: {poisoned} message(s)"
    )
    print_consumers(consumers, len({event["id"] for event in events_seen}))
    if passed != len(rows) or poisoned or not all(c.ok for c in consumers):
        print("\nLast lines of the development host's log:\n" + log_tail, file=sys.stderr)
        return 1
    return 0


@dataclass(frozen=True)
class Consumer:
    name: str
    takes: str
    received: int
    distinct: int
    allowed: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


def consumer_rows(stack: LocalStack) -> list[Consumer]:
    """What each Event Grid consumer took from its queue, against what its filter allows
    of the events the queue got (every id once)."""
    by_id = {event["id"]: event for event in stack.events_seen}
    stack.wait_for_topic(by_id, TOPIC_TIMEOUT_SECONDS)
    rows = []
    for document in stack.event_grid_subscriptions:
        name = document["name"]
        received = [event["id"] for event in stack.consumer_events(name)]
        allowed = {i for i, event in by_id.items() if stack.filter_allows(name, event)}
        rows.append(
            Consumer(
                name,
                takes(document),
                len(received),
                len(set(received)),
                len(allowed),
                tuple(sorted(allowed - set(received))),
                tuple(sorted(set(received) - allowed)),
            )
        )
    return rows


def takes(document: dict[str, Any]) -> str:
    """A subscription's filter in a few words."""
    spec = document.get("filter") or {}
    types = spec.get("includedEventTypes")
    words = ", ".join(t.rsplit(".", 1)[-1] for t in types) if types else "every event"
    for key in ("subjectBeginsWith", "subjectEndsWith"):
        if spec.get(key):
            words += f"; {key} {spec[key]}"
    return words


def print_consumers(rows: list[Consumer], queue_events: int) -> None:
    width = max(len(r.takes) for r in rows)
    print("\nEvent Grid consumers (each reads its own queue, base64 as Event Grid writes it):")
    print(f"{'consumer':<10}  {'takes':<{width}}  received  distinct  allowed  all")
    print(f"{'-' * 10}  {'-' * width}  --------  --------  -------  ---")
    for r in rows:
        got = "yes" if r.ok else "NO"
        print(
            f"{r.name:<10}  {r.takes:<{width}}  {r.received:>8}  {r.distinct:>8}  "
            f"{r.allowed:>7}  {got}"
        )
        if r.missing:
            print(f"  missing: {', '.join(r.missing)}")
        if r.unexpected:
            print(f"  not allowed by its filter: {', '.join(r.unexpected)}")
    good = sum(1 for r in rows if r.ok)
    print(
        f"\n{good}/{len(rows)} consumers got every event their filter allows of the "
        f"{queue_events} on user-onboard-events"
    )


if __name__ == "__main__":
    sys.exit(main())
