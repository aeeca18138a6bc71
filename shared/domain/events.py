"""CloudEvents the app publishes on `user-onboard-events`: built here, with the
deterministic ids consumers deduplicate on (`<requestId>:<last word of type>`), and
serialized in one place so that every event fits the queue (printable ASCII JSON, at most
`MAX_EVENT_BYTES`), whatever text it echoes. Pure standard library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from shared.domain.codes import EventType, LastSeen, LicenseStatus, ReasonCode
from shared.domain.errors import FieldError
from shared.domain.times import format_time, parse_time

EVENT_SOURCE: Final = "/user-onboarding"
# A queue message holds at most 64 KiB; events stay well below (they are ASCII JSON).
MAX_EVENT_BYTES: Final = 48 * 1024
MAX_ERRORS: Final = 50
MAX_REASON_CHARS: Final = 2_000


@dataclass(frozen=True)
class Event:
    """A CloudEvents 1.0 event in JSON structured mode."""

    type: EventType
    id: str
    time: datetime
    data: Mapping[str, Any]
    subject: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.id,
            "source": EVENT_SOURCE,
            "type": self.type,
        }
        if self.subject is not None:
            out["subject"] = self.subject
        out["time"] = format_time(self.time)
        out["datacontenttype"] = "application/json"
        out["data"] = dict(self.data)
        return out

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Event:
        """An event read back from its JSON form (the ledger keeps decided events)."""
        return cls(
            type=EventType(str(document["type"])),
            id=str(document["id"]),
            time=parse_time(str(document["time"])),
            data=dict(document["data"]),
            subject=document.get("subject"),
        )

    def serialize(self) -> str:
        """Printable ASCII JSON: what any queue carries (no raw control characters, no
        lone surrogates, nothing an XML body refuses), however hostile the echoed text."""
        return json.dumps(carryable(self.to_json()), ensure_ascii=True, separators=(",", ":"))

    @property
    def reason_code(self) -> str | None:
        """`data.reason.code` (failed, rejected, blocked), or None."""
        reason = self.data.get("reason")
        code = reason.get("code") if isinstance(reason, Mapping) else None
        return str(code) if code is not None else None


_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def carryable(value: Any) -> Any:
    """`value` with every lone surrogate (which no UTF-8 text can hold) written out as
    the six characters of its escape, `\\udc80`, in strings and in object keys."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    if isinstance(value, Mapping):
        return {carryable(k): carryable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [carryable(v) for v in value]
    return value


def event_id(request_id: str, event_type: EventType) -> str:
    """`<requestId>:<last word of the type>`: the id consumers deduplicate on."""
    return f"{request_id}:{event_type.word}"


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class LicenseOutcome:
    sku_part_number: str
    sku_id: str
    status: LicenseStatus

    def to_json(self) -> dict[str, str]:
        return {"skuPartNumber": self.sku_part_number, "skuId": self.sku_id, "status": self.status}


@dataclass(frozen=True)
class Subject:
    """Who an event is about: the request and, once found, the user."""

    request_id: str
    user_principal_name: str | None
    user_id: str | None = None

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requestId": self.request_id}
        if self.user_principal_name is not None:
            out["userPrincipalName"] = self.user_principal_name
        if self.user_id is not None:
            out["userId"] = self.user_id
        return out


def already_assigned(licensed: Event, now: datetime) -> Event:
    """A `licensed` event as a new delivery of its request gets it: the same id, every
    license now reported `already_assigned` (they are, and no second seat is used)."""
    licenses = [
        LicenseOutcome(lic["skuPartNumber"], lic["skuId"], LicenseStatus.ALREADY_ASSIGNED).to_json()
        for lic in licensed.data.get("licenses", [])
    ]
    data = {**licensed.data, "licenses": licenses}
    if isinstance(licensed.data.get("teams"), Mapping):  # (v1.2) the number is there too
        data["teams"] = {**licensed.data["teams"], "status": LicenseStatus.ALREADY_ASSIGNED}
    return Event(licensed.type, licensed.id, now, data, licensed.subject)


def _user_event(
    event_type: EventType, who: Subject, now: datetime, data: Mapping[str, Any]
) -> Event:
    return Event(
        type=event_type,
        id=event_id(who.request_id, event_type),
        time=now,
        data={**who.data(), **data},
        subject=who.request_id,
    )


def scheduled_event(
    who: Subject, now: datetime, *, not_before: datetime, deadline: datetime
) -> Event:
    """(v1.1) the start window is ahead: nothing happens before `notBefore`."""
    return _user_event(
        EventType.SCHEDULED,
        who,
        now,
        {"notBefore": format_time(not_before), "deadline": format_time(deadline)},
    )


def awaiting_sync_event(
    who: Subject,
    now: datetime,
    *,
    last_seen: LastSeen,
    next_check: datetime,
    deadline: datetime,
    forced_sync: Mapping[str, str] | None = None,
) -> Event:
    data: dict[str, Any] = {
        "lastSeen": last_seen,
        "nextCheckAt": format_time(next_check),
        "deadline": format_time(deadline),
    }
    if forced_sync is not None:
        data["forcedSync"] = dict(forced_sync)
    return _user_event(EventType.AWAITING_SYNC, who, now, data)


def blocked_event(
    who: Subject,
    now: datetime,
    *,
    reason: Reason,
    next_check: datetime,
    deadline: datetime,
    details: Mapping[str, Any] | None = None,
) -> Event:
    return _user_event(
        EventType.BLOCKED,
        who,
        now,
        {
            "reason": reason.to_json(),
            **(details or {}),
            "nextCheckAt": format_time(next_check),
            "deadline": format_time(deadline),
        },
    )


def provisioning_event(
    who: Subject,
    now: datetime,
    *,
    licenses: Sequence[LicenseOutcome],
    next_check: datetime,
    deadline: datetime,
) -> Event:
    """(v1.2) every license is on; the Teams Phone step waits for Teams (its deadline)."""
    return _user_event(
        EventType.PROVISIONING,
        who,
        now,
        {
            "licenses": [lic.to_json() for lic in licenses],
            "nextCheckAt": format_time(next_check),
            "deadline": format_time(deadline),
        },
    )


def licensed_event(
    who: Subject,
    now: datetime,
    *,
    licenses: Sequence[LicenseOutcome],
    usage_location: str,
    teams: Mapping[str, str] | None = None,
) -> Event:
    """Every license is on (and, with `teams`, v1.2, the phone number too)."""
    data: dict[str, Any] = {
        "usageLocation": usage_location,
        "licenses": [lic.to_json() for lic in licenses],
    }
    if teams is not None:
        data["teams"] = dict(teams)
    return _user_event(EventType.LICENSED, who, now, data)


def failed_event(
    who: Subject, now: datetime, *, reason: Reason, details: Mapping[str, Any] | None = None
) -> Event:
    return _user_event(EventType.FAILED, who, now, {"reason": reason.to_json(), **(details or {})})


def rejected_event(
    now: datetime,
    *,
    reason: Reason,
    request_id: str | None,
    message_id: str,
    errors: Sequence[FieldError] = (),
    details: Mapping[str, Any] | None = None,
) -> Event:
    """`rejected`; a message without a usable requestId is named by its queue message id.

    It echoes what the message held (field names, the original text), so it is cut to fit
    the events queue: at most `MAX_ERRORS` errors (with `errorsOmitted`), a bounded reason,
    and `originalMessage` shortened (with `originalMessageTruncated`) until the whole
    event is at most `MAX_EVENT_BYTES`.
    """
    data: dict[str, Any] = {}
    if request_id is not None:
        data["requestId"] = request_id
    data["reason"] = Reason(reason.code, _clip(reason.message, MAX_REASON_CHARS)).to_json()
    data["errors"] = [e.to_json() for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        data["errorsOmitted"] = len(errors) - MAX_ERRORS
    data["queueMessageId"] = message_id
    data.update(details or {})
    event = Event(
        type=EventType.REJECTED,
        id=(
            event_id(request_id, EventType.REJECTED)
            if request_id is not None
            else f"message:{message_id}:rejected"
        ),
        time=now,
        data=data,
        subject=request_id,
    )
    return _fit(event)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fit(event: Event) -> Event:
    """Shorten the echoed original text, then the error list, until the event fits."""
    data = dict(event.data)
    while len(Event(event.type, event.id, event.time, data, event.subject).serialize()) > (
        MAX_EVENT_BYTES
    ):
        original = data.get("originalMessage")
        if isinstance(original, str) and original:
            data["originalMessage"] = original[: len(original) // 2]
            data["originalMessageTruncated"] = True
        elif data.get("errors"):
            dropped = max(1, len(data["errors"]) // 2)
            data["errors"] = data["errors"][:-dropped]
            data["errorsOmitted"] = int(data.get("errorsOmitted", 0)) + dropped
        else:  # pragma: no cover - nothing else grows with the input
            break
    return Event(event.type, event.id, event.time, data, event.subject)
