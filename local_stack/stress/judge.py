"""The stress suite's judge: what every part is held to, decided from the outside only.

Inputs are what anyone outside the app can see: the messages posted (and their queue
message ids), every event read from `user-onboard-events`, the Graph emulator's request
log and SKU seat counts, and the queue counts. Nothing is read from the app's ledger or
its logs. The rules:

1. **One terminal id per request.** For each `subject` (requestId), the terminal events
   (type ending in licensed / failed / rejected) carry exactly one distinct `id`; the same
   id may arrive more than once (at-least-once delivery). Each posted message is answered
   by exactly one terminal id.
2. **Nothing lost.** Every posted message is answered: by `message:<qid>:rejected`, by a
   terminal event whose `data.queueMessageId` is its id, or (a valid request) by the
   terminal event of its requestId. A message reusing the requestId of a request in
   progress gets no event of its own; the request's events answer it.
3. **Seats consumed equal users licensed.** Per SKU, the `consumedUnits` delta equals the
   number of (user, SKU) pairs that terminal `licensed` events report and that the user
   did not hold before.
4. **Nothing valid poisoned.** No `rejected`/`poison` for the requestId of a valid
   message posted to `user-onboard`; `user-onboard-poison` ends empty.
5. **No Graph request but what a properly escaped value gives.** Every `$filter` is
   `<property> eq '<literal>'` whose unescaped literal (`''` -> `'`) is exactly a value of
   that property in some valid posted request; every path segment decodes to a Graph
   name, an id the emulator issued, or a posted userPrincipalName (plain, or in the
   `users('...')` key form); no query parameter other than `$select`, `$filter`, `$top`,
   `$count`.
6. **Expected outcomes** for the suite's own requests (e.g. `licensed`,
   `failed:sync_timeout`), and the intake, pending and poison queues empty at the end.

Whether a posted body is a valid request is asked of the contract's own parser
(`shared.domain.requests.parse_request`, pure standard library): the judge needs to know which
answers a message is owed, and the contract's validation has its own unit tests.
"""

from __future__ import annotations

import importlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote

from shared.domain.errors import InvalidRequest

TERMINAL: Final = ("licensed", "failed", "rejected")
IDENTIFIER_FIELDS: Final = ("userPrincipalName", "employeeId", "onPremisesImmutableId")
GRAPH_NAMES: Final = frozenset(
    {"users", "subscribedSkus", "$batch", "assignLicense", "microsoft.graph.assignLicense"}
)
QUERY_NAMES: Final = frozenset({"$select", "$filter", "$top", "$count"})
_FILTER: Final = re.compile(
    r"(userPrincipalName|employeeId|onPremisesImmutableId) eq '((?:[^']|'')*)'", re.DOTALL
)
_KEY_SEGMENT: Final = re.compile(r"users\('((?:[^']|'')*)'\)", re.DOTALL)
_SELECT: Final = re.compile(r"[A-Za-z]+(,[A-Za-z]+)*")


def _parse_request() -> Any:
    """The contract's request parser (`shared.domain.requests`, formerly `shared.contract`)."""
    for name in ("shared.domain.requests", "shared.contract"):
        try:
            return importlib.import_module(name).parse_request
        except (ImportError, AttributeError):
            continue
    raise ImportError("no parse_request in shared.domain.requests or shared.contract")


@dataclass(frozen=True)
class Posted:
    """One message put on a queue by the suite."""

    message_id: str
    text: str
    queue: str = "user-onboard"  # or "user-onboard-poison" (placed there as the host would)
    valid: bool = False
    request_id: str | None = None  # the usable requestId, valid or not
    identifiers: Mapping[str, str] = field(default_factory=dict)
    expect: str | None = None  # "licensed", "failed:<code>", "rejected:<code>"; None = any


def classify(text: str) -> tuple[bool, str | None, dict[str, str]]:
    """(valid, usable requestId, identifiers) of a body, as the contract reads it. The
    suite runs with `DEFAULT_LICENSES` empty, so a request without `licenses` is invalid
    (contract: "when both are absent, the request is rejected")."""
    parse = _parse_request()
    try:
        request = parse(text.encode("utf-8", "surrogatepass"))
    except InvalidRequest as exc:
        return False, exc.request_id, {}
    if request.licenses is None:
        return False, request.request_id, {}
    ids = request.identifiers
    values = {
        "userPrincipalName": ids.user_principal_name,
        "employeeId": ids.employee_id,
        "onPremisesImmutableId": ids.immutable_id,
    }
    return True, request.request_id, {k: v for k, v in values.items() if v is not None}


def posted(
    message_id: str, text: str, *, expect: str | None = None, queue: str = "user-onboard"
) -> Posted:
    valid, request_id, identifiers = classify(text)
    return Posted(message_id, text, queue, valid, request_id, identifiers, expect)


@dataclass
class Observed:
    """What the outside world shows at the end of a part."""

    events: list[dict[str, Any]]
    graph_log: list[dict[str, Any]]
    seats_before: Mapping[str, int]  # skuId -> consumedUnits
    seats_after: Mapping[str, int]
    held_before: set[tuple[str, str]]  # (userId, skuId) held before the part
    issued_ids: set[str]  # user ids the emulator issued
    queue_counts: Mapping[str, int]
    holders_after: set[tuple[str, str]] = field(default_factory=set)  # (userId, skuId) at the end


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    poisoned_valid: list[str] = field(default_factory=list)
    unescaped: list[str] = field(default_factory=list)
    wrong_outcome: list[str] = field(default_factory=list)
    seats: list[str] = field(default_factory=list)
    left_on_queues: dict[str, int] = field(default_factory=dict)
    harness: list[str] = field(default_factory=list)  # the part's own checks (e.g. bodies)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.poisoned_valid
            or self.unescaped
            or self.wrong_outcome
            or self.seats
            or self.left_on_queues
            or self.harness
        )

    def problems(self, limit: int = 5) -> list[str]:
        out = []
        names = ("lost", "duplicated", "poisoned_valid", "unescaped", "wrong_outcome", "seats")
        for name in (*names, "harness"):
            items: list[str] = getattr(self, name)
            if items:
                out.append(f"{name} ({len(items)}): " + "; ".join(items[:limit]))
        if self.left_on_queues:
            out.append(f"left on queues: {self.left_on_queues}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "lost": len(self.lost),
            "duplicated_terminal_ids": len(self.duplicated),
            "poisoned_valid": len(self.poisoned_valid),
            "unescaped_graph_values": len(self.unescaped),
            "wrong_outcome": len(self.wrong_outcome),
            "seat_mismatches": len(self.seats),
            "left_on_queues": self.left_on_queues,
            "examples": self.problems(),
            **self.figures,
        }


def word(event: Mapping[str, Any]) -> str:
    return str(event.get("type", "")).rsplit(".", 1)[-1]


def is_terminal(event: Mapping[str, Any]) -> bool:
    return word(event) in TERMINAL


def outcome_of(event: Mapping[str, Any]) -> str:
    """`licensed`, `failed:<code>` or `rejected:<code>`."""
    reason = (event.get("data") or {}).get("reason")
    code = reason.get("code") if isinstance(reason, Mapping) else None
    return word(event) if word(event) == "licensed" or code is None else f"{word(event)}:{code}"


class Answers:
    """The terminal events, indexed for the judge (and for waiting until all are in)."""

    def __init__(self) -> None:
        self.by_subject: dict[str, set[str]] = defaultdict(set)
        self.first_by_subject: dict[str, dict[str, Any]] = {}
        self.by_queue_message: dict[str, set[str]] = defaultdict(set)
        self.ids: set[str] = set()
        self.terminal: list[dict[str, Any]] = []

    def add(self, events: Iterable[Mapping[str, Any]]) -> None:
        for event in events:
            if not is_terminal(event):
                continue
            event_id = str(event.get("id"))
            self.terminal.append(dict(event))
            self.ids.add(event_id)
            subject = event.get("subject")
            if isinstance(subject, str):
                self.by_subject[subject].add(event_id)
                self.first_by_subject.setdefault(subject, dict(event))
            data = event.get("data") or {}
            qid = data.get("queueMessageId") if isinstance(data, Mapping) else None
            if isinstance(qid, str):
                self.by_queue_message[qid].add(event_id)

    def answering(self, message: Posted) -> set[str]:
        """The terminal ids that answer one posted message."""
        out = set(self.by_queue_message.get(message.message_id, set()))
        own = f"message:{message.message_id}:rejected"
        if own in self.ids:
            out.add(own)
        if message.request_id is not None and (message.valid or message.queue != "user-onboard"):
            out |= self.by_subject.get(message.request_id, set())
        return out

    def unanswered(self, messages: Sequence[Posted]) -> list[Posted]:
        return [m for m in messages if not self.answering(m)]


def judge(messages: Sequence[Posted], observed: Observed) -> Verdict:
    verdict = Verdict()
    answers = Answers()
    answers.add(observed.events)

    # 1 and 2: one terminal id per request and per message; every message answered.
    flagged = set()
    for subject, ids in sorted(answers.by_subject.items()):
        if len(ids) > 1:
            flagged.add(subject)
            verdict.duplicated.append(f"{subject}: {sorted(ids)}")
    for message in messages:
        ids = answers.answering(message)
        if not ids:
            verdict.lost.append(f"{message.queue} message {message.message_id} ({_show(message)})")
        elif len(ids) > 1 and message.request_id not in flagged:
            verdict.duplicated.append(f"message {message.message_id}: {sorted(ids)}")

    # 4: nothing valid poisoned.
    valid_ids = {m.request_id for m in messages if m.valid and m.queue == "user-onboard"}
    for event in answers.terminal:
        if outcome_of(event) == "rejected:poison" and event.get("subject") in valid_ids:
            verdict.poisoned_valid.append(str(event.get("id")))
    verdict.poisoned_valid = sorted(set(verdict.poisoned_valid))

    # 6: expected outcomes.
    for message in messages:
        if message.expect is None or message.request_id is None:
            continue
        first = answers.first_by_subject.get(message.request_id)
        got = outcome_of(first) if first is not None else "nothing"
        if got != message.expect and not got.startswith(message.expect + ":"):
            verdict.wrong_outcome.append(f"{message.request_id}: {got}, expected {message.expect}")
    verdict.wrong_outcome = sorted(set(verdict.wrong_outcome))

    # 3: seats.
    licensed_pairs: set[tuple[str, str]] = set()
    for event in answers.terminal:
        if word(event) != "licensed":
            continue
        data = event.get("data") or {}
        for lic in data.get("licenses", []):
            licensed_pairs.add((str(data.get("userId")), str(lic.get("skuId"))))
    gained = licensed_pairs - observed.held_before
    for sku in sorted(set(observed.seats_before) | set(observed.seats_after)):
        delta = observed.seats_after.get(sku, 0) - observed.seats_before.get(sku, 0)
        users = sum(1 for _, s in gained if s == sku)
        if delta != users:
            unexplained = sorted(
                u
                for u, s in observed.holders_after - observed.held_before
                if s == sku and (u, s) not in gained
            )
            verdict.seats.append(
                f"SKU {sku}: {delta} seats consumed, {users} users licensed"
                + (f"; held without a licensed event: {unexplained[:5]}" if unexplained else "")
            )

    # 5: Graph requests.
    allowed: dict[str, set[str]] = {name: set() for name in IDENTIFIER_FIELDS}
    for message in messages:
        if message.valid:
            for name, value in message.identifiers.items():
                allowed[name].add(value)
    problems = graph_problems(observed.graph_log, allowed, observed.issued_ids)
    verdict.unescaped = problems

    # 6: queues.
    verdict.left_on_queues = {k: v for k, v in observed.queue_counts.items() if v}

    outcomes: dict[str, int] = defaultdict(int)
    for event in answers.first_by_subject.values():
        outcomes[outcome_of(event)] += 1
    verdict.figures = {
        "messages_posted": len(messages),
        "terminal_events": len(answers.terminal),
        "distinct_terminal_ids": len(answers.ids),
        "outcomes": dict(sorted(outcomes.items())),
        "graph_requests": len(observed.graph_log),
        "graph_filters_checked": sum(
            1 for e in observed.graph_log if "filter" in e.get("query", "")
        ),
    }
    return verdict


def graph_problems(
    log: Iterable[Mapping[str, Any]], allowed: Mapping[str, set[str]], issued_ids: set[str]
) -> list[str]:
    """Every logged Graph request that is not made of properly escaped posted values."""
    upns = allowed.get("userPrincipalName", set())
    out = []
    for entry in log:
        path = str(entry.get("path", ""))
        query = str(entry.get("query") or "")
        where = f"{entry.get('method')} {path}{'?' + query if query else ''}"
        problem = _path_problem(path, upns, issued_ids) or _query_problem(query, allowed)
        if problem:
            out.append(f"{where[:300]}: {problem}")
    return out


def _path_problem(path: str, upns: set[str], issued_ids: set[str]) -> str | None:
    if not path.startswith("/v1.0/"):
        return "not under /v1.0"
    for raw in path[len("/v1.0/") :].split("/"):
        segment = unquote(raw)
        if segment in GRAPH_NAMES or segment in issued_ids or segment in upns:
            continue
        key = _KEY_SEGMENT.fullmatch(segment)
        if key and key.group(1).replace("''", "'") in upns:
            continue
        return f"path segment {segment!r} is no Graph name, issued id or posted UPN"
    return None


def _query_problem(query: str, allowed: Mapping[str, set[str]]) -> str | None:
    if not query:
        return None
    for part in query.split("&"):
        name, _, value = part.partition("=")
        name, value = unquote(name), unquote(value)
        if name not in QUERY_NAMES:
            return f"query parameter {name!r}"
        if name == "$select" and not _SELECT.fullmatch(value):
            return f"$select {value!r}"
        if name == "$top" and not value.isdigit():
            return f"$top {value!r}"
        if name == "$count" and value not in ("true", "false"):
            return f"$count {value!r}"
        if name == "$filter":
            match = _FILTER.fullmatch(value)
            if match is None:
                return f"$filter {value!r} is not <property> eq '<literal>'"
            literal = match.group(2).replace("''", "'")
            if literal not in allowed.get(match.group(1), set()):
                return f"$filter literal {literal!r} is not a posted {match.group(1)}"
    return None


def _show(message: Posted) -> str:
    text = message.text if len(message.text) <= 80 else message.text[:77] + "..."
    return f"requestId {message.request_id}, valid {message.valid}: {text!r}"
