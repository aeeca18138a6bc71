"""What `python -m ops` shows and does, on the request ledger (`shared.adapters.ledger`) and the
queues: plain functions over a `Store`, returning results that print as text or JSON.

Parked requests cannot be listed from their queue (a hidden message does not show in a
peek), so everything here reads the ledger, which the app writes in the same crash-safe
order as the rest: the `~parked` index for what waits, each request's partition for its
story, and the `~deadletter` partition for the messages kept aside.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ops.store import Store, kept_of_request, kept_page, parked_page
from shared.adapters.ledger import set_aside_of
from shared.adapters.storage import storage_call
from shared.domain.decoding import decode_body
from shared.domain.errors import InvalidRequest
from shared.domain.records import RequestRecord, SetAside, SetAsideStatus
from shared.domain.times import format_time
from shared.names import QUEUE_REQUESTS

# --- show: where is request X -------------------------------------------------------------


@dataclass
class RequestView:
    request_id: str
    record: RequestRecord | None
    kept: list[SetAside]
    now: datetime
    exit_code: int = 0

    def to_json(self) -> dict[str, Any]:
        record = self.record
        if record is None:
            held = [k for k in self.kept if k.status == SetAsideStatus.HELD]
            state = "poisoned, held" if held else ("poisoned" if self.kept else "unknown")
            out: dict[str, Any] = {"requestId": self.request_id, "state": state}
            if held and held[0].hold_until:
                out["holdUntil"] = format_time(held[0].hold_until)
            out["kept"] = self._kept()
            return out
        progress = record.progress
        status = record.status
        out = {
            "requestId": self.request_id,
            "state": status,
            "openedBy": record.owner or None,
            "receivedAt": format_time(record.received_at),
            "parked": progress.parked and record.decided is None,
            "lastSeen": progress.last_seen,
            "nextCheckAt": _time(progress.next_check_at) if record.decided is None else None,
            "notBefore": _time(progress.not_before),
            "deadline": _time(progress.deadline),
            # A licensed request's last error is history (e.g. the 403 it was blocked on
            # before a grant): shown, it reads as a problem with a request that has none.
            "lastError": progress.last_error if status != "licensed" else None,
            "reason": progress.reason if record.decided is None else None,
            "eventsSent": {word: format_time(t) for word, t in sorted(progress.sent.items())},
        }
        if record.decided is not None:
            event = record.decided.event
            out["outcome"] = {
                "id": event.id,
                "type": str(event.type),
                "time": format_time(event.time),
                "decidedBy": record.decided.by,
                "reason": event.data.get("reason"),
            }
            out["eventsSent"][event.type.word] = format_time(event.time)
        out["kept"] = self._kept()
        return out

    def _kept(self) -> list[dict[str, Any]]:
        return [_kept_json(item) for item in self.kept]

    def text(self) -> str:
        data = self.to_json()
        lines = [f"request {self.request_id}: {data['state']}"]
        for key in (
            "openedBy",
            "receivedAt",
            "lastSeen",
            "nextCheckAt",
            "notBefore",
            "deadline",
            "holdUntil",
        ):
            if data.get(key):
                lines.append(f"  {key:<12} {data[key]}")
        if data.get("reason"):
            reason = data["reason"]
            lines.append(f"  {'reason':<12} {reason.get('code')}: {reason.get('message')}")
        if data.get("lastError"):
            error = data["lastError"]
            lines.append(
                f"  {'lastError':<12} {error.get('status')} {error.get('code')} on "
                f"{error.get('call')}: {error.get('message')}"
            )
        if data.get("outcome"):
            outcome = data["outcome"]
            reason = outcome.get("reason") or {}
            lines.append(
                f"  {'outcome':<12} {outcome['id']} at {outcome['time']}"
                + (f" ({reason.get('code')}: {reason.get('message')})" if reason else "")
            )
        for word, moment in data.get("eventsSent", {}).items():
            lines.append(f"  {'sent':<12} {self.request_id}:{word} at {moment}")
        for kept in data["kept"]:
            lines.append(
                f"  {'kept':<12} {kept['source']} message {kept['messageId']}: {kept['status']}"
                f" ({kept['reason']})"
            )
        if data["state"] == "unknown":
            lines.append(
                "  the ledger has no record of it (never received, a typo, or deleted "
                "LEDGER_RETENTION after its terminal event)"
            )
        return "\n".join(lines)


async def describe(store: Store, request_id: str, *, now: datetime) -> RequestView:
    record = await store.ledger.read(request_id)
    rows = await storage_call(kept_of_request, store.table, request_id)
    kept = [set_aside_of(row) for row in rows]
    view = RequestView(request_id, record, kept, now)
    view.exit_code = 0 if record is not None or kept else 1
    return view


# --- list: what is pending, scheduled, blocked, held, set aside ---------------------------


@dataclass
class Listing:
    parked: list[dict[str, str]]
    kept: list[SetAside]
    parked_total: int = 0
    kept_total: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "parked": self.parked,
            "parkedTotal": self.parked_total,
            "kept": [_kept_json(i) for i in self.kept],
            "keptTotal": self.kept_total,
        }

    def text(self) -> str:
        lines = []
        if self.parked_total:
            lines.append(
                _count(len(self.parked), self.parked_total, "parked request(s)")
                + ", earliest deadline first:"
            )
            lines.append(f"  {'request':<24} {'state':<10} {'next check':<25} deadline")
            for row in self.parked:
                lines.append(
                    f"  {row['requestId']:<24} {row['status']:<10} "
                    f"{row.get('nextCheckAt') or '-':<25} {row.get('deadline') or '-'}"
                )
        if self.kept_total:
            lines.append(
                _count(len(self.kept), self.kept_total, "message(s) kept aside") + ", oldest first:"
            )
            for item in self.kept:
                held = item.status == SetAsideStatus.HELD
                hold = f", held until {_time(item.hold_until)}" if held else ""
                lines.append(
                    f"  {item.source} message {item.message_id} (request "
                    f"{item.request_id or '-'}): {item.status}{hold}: {item.reason}"
                )
        return "\n".join(lines) or "nothing parked, nothing kept aside"


def _count(shown: int, total: int, what: str) -> str:
    if shown == total:
        return f"{total:,} {what}"
    return f"{total:,} {what} ({total - shown:,} more than these {shown:,}: --limit 0 for all)"


STATES = frozenset(
    {"pending", "scheduled", "waiting", "blocked", "provisioning", "held", "set-aside"}
)
_PARKED_STATES = {
    "pending": {"waiting", "blocked", "scheduled", "provisioning"},
    "waiting": {"waiting"},
    "blocked": {"blocked"},
    "scheduled": {"scheduled"},
    "provisioning": {"provisioning"},  # (v1.2) licensed; the Teams Phone step waits for Teams
}
DEFAULT_LIMIT = 100


async def list_requests(store: Store, states: set[str], *, limit: int = 0) -> Listing:
    """Parked requests (earliest deadline first) and kept messages (oldest first) in
    `states` (default: all); at most `limit` of each (0: all), with the count of each."""
    wanted = states or {"pending", "held", "set-aside"}
    statuses = set().union(*(_PARKED_STATES.get(state, set()) for state in wanted))
    parked = await storage_call(parked_page, store.table, statuses, limit)
    listing = Listing([_parked_json(row) for row in parked.rows], [], parked.total)
    if wanted & {"held", "set-aside"}:

        def chosen(status: str) -> bool:
            return ("held" in wanted) if status == "held" else ("set-aside" in wanted)

        kept = await storage_call(kept_page, store.table, chosen, limit)
        listing.kept = [set_aside_of(row) for row in kept.rows]
        listing.kept_total = kept.total
    return listing


def _parked_json(row: dict[str, Any]) -> dict[str, str]:
    return {
        "requestId": str(row.get("RequestId")),
        "status": str(row.get("Status")),
        "deadline": str(row.get("Deadline") or ""),
        "nextCheckAt": str(row.get("NextCheckAt") or ""),
        "notBefore": str(row.get("NotBefore") or ""),
        "lastSeen": str(row.get("LastSeen") or ""),
    }


# --- replay: re-post held poisoned messages -----------------------------------------------


@dataclass
class Replays:
    lines: list[dict[str, str]] = field(default_factory=list)
    exit_code: int = 0

    def add(self, message_id: str, done: bool, what: str) -> None:
        outcome = "replayed" if done else "refused"
        self.lines.append({"messageId": message_id, "result": outcome, "why": what})
        if not done:
            self.exit_code = 1

    def to_json(self) -> dict[str, Any]:
        return {"replays": self.lines}

    def text(self) -> str:
        lines = [f"{r['messageId']}: {r['result']}: {r['why']}" for r in self.lines]
        return "\n".join(lines) or "nothing to replay"


async def replay(
    store: Store,
    message_ids: Sequence[str],
    *,
    all_held: bool = False,
    new_request_id: str | None = None,
) -> Replays:
    """Re-post kept poisoned messages to `user-onboard`, but never a second outcome.

    A message still **held** (its request not answered yet) is taken from the hold
    (conditionally: a sweep reporting it at the same moment wins or loses, never both)
    and re-posted as it was. One whose request already has an outcome is refused, unless
    `new_request_id` names an unused requestId: then its body is posted under that id,
    as a new request (tell the HR system which one)."""
    result = Replays()
    ledger = store.ledger
    items = [i for i in await ledger.set_aside_items() if i.source == "poison"]
    chosen = [i for i in items if i.message_id in set(message_ids)]
    if all_held:
        chosen += [i for i in items if i.status == SetAsideStatus.HELD and i not in chosen]
    for missing in set(message_ids) - {i.message_id for i in items}:
        result.add(missing, False, "no poisoned message with this id is kept")
    if new_request_id is not None and len(chosen) != 1:
        for item in chosen:
            result.add(item.message_id, False, "--new-request-id takes exactly one message")
        return result
    for item in chosen:
        done, why = await _replay_one(store, item, new_request_id)
        result.add(item.message_id, done, why)
    return result


async def _replay_one(store: Store, item: SetAside, new_id: str | None) -> tuple[bool, str]:
    ledger = store.ledger
    record = await ledger.read(item.request_id) if item.request_id else None
    if new_id is not None:
        if await ledger.read(new_id) is not None:
            return False, f"requestId {new_id} is already in use"
        body = _with_request_id(item.content, new_id)
        if body is None:
            return False, "the kept message is not a JSON object: it cannot take a new requestId"
        store.intake.send_message(body)
        return True, f"posted as new request {new_id} ({item.request_id} keeps its outcome)"
    if record is not None and record.decided is not None:
        return False, (
            f"request {item.request_id} already reached its terminal event "
            f"{record.decided.event.id}; a replay would give it a second one "
            "(use --new-request-id to post it as a new request)"
        )
    if item.status == SetAsideStatus.HELD:
        if not await ledger.move(item, SetAsideStatus.REPLAYING):
            return False, "a sweep took it first (it is being reported): see `show`"
    elif item.status != SetAsideStatus.REPLAYING:  # a replay stopped before it posted
        return False, f"its status is {item.status}: nothing to replay"
    store.intake.send_message(item.content)
    await ledger.move(replace(item, etag=None), SetAsideStatus.REPLAYED)
    return True, f"re-posted to {QUEUE_REQUESTS} (request {item.request_id or '-'})"


def _with_request_id(content: str, request_id: str) -> str | None:
    try:
        document = decode_body(content)
    except InvalidRequest:
        return None
    if not isinstance(document, dict):
        return None
    return json.dumps({**document, "requestId": request_id})


def _kept_json(item: SetAside) -> dict[str, Any]:
    return {
        "source": item.source,
        "messageId": item.message_id,
        "requestId": item.request_id,
        "status": item.status,
        "reason": item.reason,
        "holdUntil": _time(item.hold_until),
        "setAsideAt": _time(item.set_aside_at),
    }


def _time(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None
