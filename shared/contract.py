"""The external contract (v1): onboarding requests in, CloudEvents out.

Pure standard library. `parse_request` turns a queue message body into an
`OnboardingRequest` or raises `InvalidRequest` listing every field-level problem;
the `*_event` functions build the CloudEvents the app publishes, with the
deterministic ids consumers deduplicate on (`<requestId>:<last word of type>`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from shared.countries import ISO_3166_ALPHA2
from shared.errors import FieldError, InvalidRequest

MAX_MESSAGE_BYTES: Final = 32 * 1024
# A valid request nests 4 levels (request, licenses, a license, its disabledPlans).
MAX_DEPTH: Final = 32
MAX_LICENSES: Final = 10
MAX_DISABLED_PLANS: Final = 50
EVENT_SOURCE: Final = "/user-onboarding"
# A queue message holds at most 64 KiB; events stay well below (they are ASCII JSON).
MAX_EVENT_BYTES: Final = 48 * 1024
MAX_ERRORS: Final = 50
MAX_REASON_CHARS: Final = 2_000


class EventType:
    """CloudEvents `type` values of the contract."""

    AWAITING_SYNC: Final = "onboarding.user.awaiting_sync"
    BLOCKED: Final = "onboarding.user.blocked"
    LICENSED: Final = "onboarding.user.licensed"
    FAILED: Final = "onboarding.user.failed"
    REJECTED: Final = "onboarding.request.rejected"


class FailureCode:
    """`data.reason.code` values of `onboarding.user.failed`."""

    SYNC_TIMEOUT: Final = "sync_timeout"
    USER_AMBIGUOUS: Final = "user_ambiguous"
    UNKNOWN_SKU: Final = "unknown_sku"
    UNKNOWN_SERVICE_PLAN: Final = "unknown_service_plan"
    NO_SEATS: Final = "no_seats"
    USAGE_LOCATION_MISSING: Final = "usage_location_missing"
    MUTUALLY_EXCLUSIVE_PLANS: Final = "mutually_exclusive_plans"
    MISSING_PREREQUISITE: Final = "missing_prerequisite"
    GRAPH_REJECTED: Final = "graph_rejected"
    GRAPH_UNAVAILABLE: Final = "graph_unavailable"
    GRAPH_ACCESS_DENIED: Final = "graph_access_denied"


class RejectionCode:
    """`data.reason.code` values of `onboarding.request.rejected`."""

    INVALID_MESSAGE: Final = "invalid_message"
    POISON: Final = "poison"


class LicenseStatus:
    ASSIGNED: Final = "assigned"
    ALREADY_ASSIGNED: Final = "already_assigned"


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
_EMPLOYEE_ID = re.compile(r"[A-Za-z0-9._-]{1,16}")
# Characters Entra ID allows in the part before the @ (plus `$`, which Graph addresses
# with the key syntax); `#` covers guest markers such as `#EXT#`.
_UPN_LOCAL = re.compile(r"[A-Za-z0-9'._!#^~$&+=-]{1,113}")
_DOMAIN = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_SKU_PART = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_PLAN_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
_KNOWN_FIELDS: Final = frozenset(
    {
        "requestId",
        "userPrincipalName",
        "employeeId",
        "onPremisesImmutableId",
        "usageLocation",
        "licenses",
        "syncDeadline",
    }
)


@dataclass(frozen=True)
class LicenseRequest:
    """One SKU to assign, by `skuPartNumber`, with service plans to leave disabled."""

    sku_part_number: str
    disabled_plans: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"skuPartNumber": self.sku_part_number}
        if self.disabled_plans:
            out["disabledPlans"] = list(self.disabled_plans)
        return out


@dataclass(frozen=True)
class UserIdentifiers:
    """The ways a request names its user, tried in this order: UPN, employeeId, immutableId."""

    user_principal_name: str | None = None
    employee_id: str | None = None
    immutable_id: str | None = None


@dataclass(frozen=True)
class OnboardingRequest:
    """A valid `user-onboard` message. `licenses` is None when the message had none."""

    request_id: str
    identifiers: UserIdentifiers
    usage_location: str | None = None
    licenses: tuple[LicenseRequest, ...] | None = None
    sync_deadline: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The request in contract form; `parse_request` reads it back unchanged."""
        out: dict[str, Any] = {"requestId": self.request_id}
        ids = self.identifiers
        if ids.user_principal_name is not None:
            out["userPrincipalName"] = ids.user_principal_name
        if ids.employee_id is not None:
            out["employeeId"] = ids.employee_id
        if ids.immutable_id is not None:
            out["onPremisesImmutableId"] = ids.immutable_id
        if self.usage_location is not None:
            out["usageLocation"] = self.usage_location
        if self.licenses is not None:
            out["licenses"] = [lic.to_json() for lic in self.licenses]
        if self.sync_deadline is not None:
            out["syncDeadline"] = format_time(self.sync_deadline)
        return out


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, to the second unless sub-second precision is present."""
    moment = moment.astimezone(UTC)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp with offset; ValueError otherwise."""
    if not _RFC3339.fullmatch(text):
        raise ValueError("not an RFC 3339 timestamp with offset")
    normalised = text.upper().replace("Z", "+00:00")
    if "." in normalised:  # Python takes at most 6 fractional digits
        head, _, rest = normalised.partition(".")
        digits = re.match(r"\d+", rest)
        assert digits is not None
        normalised = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end() :]}"
    return datetime.fromisoformat(normalised)


def decode_body(body: bytes | str) -> Any:
    """The JSON value of a message body, plain or base64-encoded; InvalidRequest otherwise.

    Total on purpose (guarantee 6): whatever arrives (any bytes, encoding, depth, size or
    characters), the answer is a value or an InvalidRequest, never another exception.
    The size is checked before anything is decoded, UTF-8 strictly, nesting before
    `json.loads` recurses, and base64 is tried only on text made of base64 characters.
    """
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    text = _utf8_text(raw, "message")
    try:
        return _json_value(text)
    except InvalidRequest as plain:
        compact = "".join(text.split())
        if not compact or not _BASE64.fullmatch(compact):
            raise
        # The Azure portal base64-encodes message text by default.
        try:
            decoded = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise plain from None
        try:
            return _json_value(_utf8_text(decoded, "the base64-decoded message"))
        except InvalidRequest:
            raise plain from None


_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _utf8_text(raw: bytes, what: str) -> str:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidRequest(
            [FieldError("", f"{what} is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            [FieldError("", f"{what} is not UTF-8 text (invalid byte at offset {exc.start})")]
        ) from None
    return text.removeprefix("\ufeff")  # a byte order mark some producers put first


def _json_value(text: str) -> Any:
    depth = _nesting(text)
    if depth > MAX_DEPTH:
        raise InvalidRequest(
            [FieldError("", f"message nests {depth} levels deep; the limit is {MAX_DEPTH}")]
        )
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        problem = f"message is not valid JSON (nor base64-encoded JSON): {exc.msg} at {exc.pos}"
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        problem = f"message is not valid JSON: {str(exc)[:120]}"
    raise InvalidRequest([FieldError("", problem)])


class _DuplicateField(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose member names repeat is ambiguous: which `requestId` is meant?"""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise _DuplicateField(f"the field {name[:200]!r} appears twice in one object")
        out[name] = value
    return out


def _nesting(text: str) -> int:
    """How deep arrays and objects nest, counted without recursion (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def request_id_of(document: Any) -> str | None:
    """The requestId of a decoded message when it is present and valid, else None."""
    if isinstance(document, Mapping):
        value = document.get("requestId")
        if isinstance(value, str) and _REQUEST_ID.fullmatch(value):
            return value
    return None


def parse_request(body: bytes | str) -> OnboardingRequest:
    """Validate a `user-onboard` message body; InvalidRequest lists every problem found."""
    document = decode_body(body)
    try:
        return validate_request(document)
    except InvalidRequest as exc:
        raise InvalidRequest(exc.errors, request_id=request_id_of(document)) from None


def validate_request(document: Any) -> OnboardingRequest:
    """Validate an already decoded request document."""
    if not isinstance(document, Mapping):
        raise InvalidRequest([FieldError("", "message must be a JSON object")])
    errors: list[FieldError] = []
    for name in sorted(set(document) - _KNOWN_FIELDS):
        errors.append(FieldError(str(name)[:200], "unknown field"))

    request_id = _string(document, "requestId", errors, required=True)
    if request_id is not None and not _REQUEST_ID.fullmatch(request_id):
        errors.append(FieldError("requestId", "must be 1 to 128 letters, digits or . _ - : /"))

    upn = _string(document, "userPrincipalName", errors)
    if upn is not None:
        problem = upn_problem(upn)
        if problem:
            errors.append(FieldError("userPrincipalName", problem))
    employee_id = _string(document, "employeeId", errors)
    if employee_id is not None and not _EMPLOYEE_ID.fullmatch(employee_id):
        errors.append(FieldError("employeeId", "must be 1 to 16 letters, digits or . _ -"))
    immutable_id = _string(document, "onPremisesImmutableId", errors)
    if immutable_id is not None and not (
        1 <= len(immutable_id) <= 256 and all(" " <= ch <= "~" for ch in immutable_id)
    ):
        errors.append(
            FieldError("onPremisesImmutableId", "must be 1 to 256 printable ASCII characters")
        )
    if not any(k in document for k in ("userPrincipalName", "employeeId", "onPremisesImmutableId")):
        errors.append(
            FieldError(
                "userPrincipalName",
                "at least one of userPrincipalName, employeeId, onPremisesImmutableId is required",
            )
        )

    usage_location = _string(document, "usageLocation", errors)
    if usage_location is not None and usage_location not in ISO_3166_ALPHA2:
        errors.append(
            FieldError("usageLocation", "must be an upper-case ISO 3166-1 alpha-2 country code")
        )

    licenses = _licenses(document, errors)

    deadline: datetime | None = None
    deadline_text = _string(document, "syncDeadline", errors)
    if deadline_text is not None:
        try:
            deadline = parse_time(deadline_text)
        except ValueError:
            errors.append(FieldError("syncDeadline", "must be an RFC 3339 timestamp with offset"))

    if errors:
        raise InvalidRequest(errors)
    assert request_id is not None
    return OnboardingRequest(
        request_id=request_id,
        identifiers=UserIdentifiers(upn, employee_id, immutable_id),
        usage_location=usage_location,
        licenses=licenses,
        sync_deadline=deadline,
    )


def upn_problem(upn: str) -> str | None:
    """Why `upn` is not a valid userPrincipalName, or None."""
    local, at, domain = upn.rpartition("@")
    if not at or not local:
        return "must be local@domain"
    if len(local) > 113:
        return "the part before @ is longer than 113 characters"
    if not _UPN_LOCAL.fullmatch(local):
        return "the part before @ has characters a userPrincipalName cannot contain"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "the part before @ cannot start or end with a dot or hold two dots in a row"
    if not _DOMAIN.fullmatch(domain):
        return "the domain is not a valid DNS name"
    return None


def _string(
    document: Mapping[str, Any], name: str, errors: list[FieldError], *, required: bool = False
) -> str | None:
    if name not in document:
        if required:
            errors.append(FieldError(name, "is required"))
        return None
    value = document[name]
    if not isinstance(value, str):
        errors.append(FieldError(name, "must be a string"))
        return None
    return value


def _licenses(
    document: Mapping[str, Any], errors: list[FieldError]
) -> tuple[LicenseRequest, ...] | None:
    if "licenses" not in document:
        return None
    value = document["licenses"]
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_LICENSES:
        errors.append(FieldError("licenses", f"must be a list of 1 to {MAX_LICENSES} entries"))
        return None
    out: list[LicenseRequest] = []
    seen: set[str] = set()
    for index, entry in enumerate(value):
        where = f"licenses[{index}]"
        if not isinstance(entry, Mapping):
            errors.append(FieldError(where, "must be an object"))
            continue
        for name in sorted(set(entry) - {"skuPartNumber", "disabledPlans"}):
            errors.append(FieldError(f"{where}.{str(name)[:200]}", "unknown field"))
        sku = entry.get("skuPartNumber")
        if not isinstance(sku, str) or not _SKU_PART.fullmatch(sku):
            errors.append(
                FieldError(f"{where}.skuPartNumber", "must be a skuPartNumber such as MCOEV")
            )
            continue
        if sku.upper() in seen:
            errors.append(FieldError(f"{where}.skuPartNumber", "is listed twice"))
        seen.add(sku.upper())
        plans = entry.get("disabledPlans", [])
        if not isinstance(plans, list) or len(plans) > MAX_DISABLED_PLANS:
            errors.append(
                FieldError(
                    f"{where}.disabledPlans",
                    f"must be a list of at most {MAX_DISABLED_PLANS} servicePlanName values",
                )
            )
            continue
        bad = [p for p in plans if not isinstance(p, str) or not _PLAN_NAME.fullmatch(p)]
        if bad:
            errors.append(
                FieldError(f"{where}.disabledPlans", "each entry must be a servicePlanName")
            )
            continue
        out.append(LicenseRequest(sku, tuple(dict.fromkeys(plans))))
    return tuple(out)


def parse_license_list(text: str) -> tuple[LicenseRequest, ...]:
    """The `DEFAULT_LICENSES` setting: comma-separated skuPartNumbers; ValueError if bad."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not 1 <= len(names) <= MAX_LICENSES:
        raise ValueError(f"must list 1 to {MAX_LICENSES} skuPartNumbers separated by commas")
    for name in names:
        if not _SKU_PART.fullmatch(name):
            raise ValueError(f"{name!r} is not a skuPartNumber")
    if len({n.upper() for n in names}) != len(names):
        raise ValueError("lists a skuPartNumber twice")
    return tuple(LicenseRequest(name) for name in names)


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A CloudEvents 1.0 event in JSON structured mode."""

    type: str
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
            type=str(document["type"]),
            id=str(document["id"]),
            time=parse_time(str(document["time"])),
            data=dict(document["data"]),
            subject=document.get("subject"),
        )

    def serialize(self) -> str:
        """Printable ASCII JSON: what any queue carries (no raw control characters, no
        lone surrogates, nothing an XML body refuses), however hostile the echoed text."""
        return json.dumps(carryable(self.to_json()), ensure_ascii=True, separators=(",", ":"))

    def size(self) -> int:
        return len(self.serialize())


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


def event_id(request_id: str, event_type: str) -> str:
    """`<requestId>:<last word of the type>`: the id consumers deduplicate on."""
    return f"{request_id}:{event_type.rsplit('.', 1)[-1]}"


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class LicenseOutcome:
    sku_part_number: str
    sku_id: str
    status: str

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


def _user_event(event_type: str, who: Subject, now: datetime, data: Mapping[str, Any]) -> Event:
    return Event(
        type=event_type,
        id=event_id(who.request_id, event_type),
        time=now,
        data={**who.data(), **data},
        subject=who.request_id,
    )


def awaiting_sync_event(
    who: Subject, now: datetime, *, last_seen: str, next_check: datetime, deadline: datetime
) -> Event:
    return _user_event(
        EventType.AWAITING_SYNC,
        who,
        now,
        {
            "lastSeen": last_seen,
            "nextCheckAt": format_time(next_check),
            "deadline": format_time(deadline),
        },
    )


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


def licensed_event(
    who: Subject, now: datetime, *, licenses: Sequence[LicenseOutcome], usage_location: str
) -> Event:
    return _user_event(
        EventType.LICENSED,
        who,
        now,
        {"usageLocation": usage_location, "licenses": [lic.to_json() for lic in licenses]},
    )


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
