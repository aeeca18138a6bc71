"""Onboarding requests (`user-onboard` messages): decoding and validation, field by
field, exactly as the contract says. Pure standard library.

`parse_request` turns a queue message body into an `OnboardingRequest` or raises
`InvalidRequest` listing every field-level problem. Decoding is total (guarantee 6).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from shared.countries import ISO_3166_ALPHA2
from shared.errors import FieldError, InvalidRequest
from shared.times import format_time, parse_time

MAX_MESSAGE_BYTES: Final = 32 * 1024
# A valid request nests 4 levels (request, licenses, a license, its disabledPlans).
MAX_DEPTH: Final = 32
MAX_LICENSES: Final = 10
MAX_DISABLED_PLANS: Final = 50

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
_EMPLOYEE_ID = re.compile(r"[A-Za-z0-9._-]{1,16}")
# Characters Entra ID allows in the part before the @ (plus `$`, which Graph addresses
# with the key syntax); `#` covers guest markers such as `#EXT#`.
_UPN_LOCAL = re.compile(r"[A-Za-z0-9'._!#^~$&+=-]{1,113}")
_DOMAIN_LABELS = r"([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
_DOMAIN = re.compile(r"(?=.{1,253}$)" + _DOMAIN_LABELS)
_SKU_PART = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_PLAN_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_KNOWN_FIELDS: Final = frozenset(
    {
        "requestId",
        "userPrincipalName",
        "employeeId",
        "onPremisesImmutableId",
        "usageLocation",
        "licenses",
        "syncDeadline",
        "onPremisesDistinguishedName",
        "startDate",
    }
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# RFC 4514: an attribute type is a keyword or a numeric OID.
_DN_ATTRIBUTE_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*")
_DN_SPECIAL: Final = frozenset('"+,;<>\\')
MAX_DN_CHARS: Final = 1024


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
    # Only ever sent in the JSON body of a forced sync (provisionOnDemand), never in a URL.
    distinguished_name: str | None = None
    start_date: datetime | None = None  # the new hire's first day (a date is 00:00 UTC)

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
        if self.distinguished_name is not None:
            out["onPremisesDistinguishedName"] = self.distinguished_name
        if self.start_date is not None:
            out["startDate"] = format_time(self.start_date)
        return out


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

    start: datetime | None = None
    start_text = _string(document, "startDate", errors)
    if start_text is not None:
        try:
            start = parse_start_date(start_text)
        except ValueError:
            errors.append(
                FieldError(
                    "startDate",
                    "must be a date (YYYY-MM-DD) or an RFC 3339 timestamp with offset",
                )
            )

    dn = _string(document, "onPremisesDistinguishedName", errors)
    if dn is not None:
        problem = dn_problem(dn)
        if problem:
            errors.append(FieldError("onPremisesDistinguishedName", problem))

    if errors:
        raise InvalidRequest(errors)
    assert request_id is not None
    return OnboardingRequest(
        request_id=request_id,
        identifiers=UserIdentifiers(upn, employee_id, immutable_id),
        usage_location=usage_location,
        licenses=licenses,
        sync_deadline=deadline,
        distinguished_name=dn,
        start_date=start,
    )


def parse_start_date(text: str) -> datetime:
    """`startDate`: a date (its 00:00 UTC) or an RFC 3339 timestamp; ValueError otherwise."""
    if _DATE.fullmatch(text):
        return datetime.fromisoformat(text + "T00:00:00+00:00")
    return parse_time(text)


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


def dn_problem(dn: str) -> str | None:
    """Why `dn` is not an RFC 4514 distinguished name of an AD object, or None.

    `attr=value` pairs separated by `,` (or `+` inside one RDN); special characters in a
    value escaped with `\\` (or as `\\XX` hex pairs); a value may also be `#` and hex.
    Control characters are refused, and at least one `DC=` component is required (an AD
    object lives in a domain)."""
    if not 3 <= len(dn) <= MAX_DN_CHARS:
        return f"must be 3 to {MAX_DN_CHARS} characters"
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or 0xD800 <= ord(ch) < 0xE000 for ch in dn):
        return "must not contain control characters"
    try:
        types = _dn_attribute_types(dn)
    except ValueError as exc:
        return f"is not an RFC 4514 distinguished name: {exc}"
    if "dc" not in types:
        return "must have at least one DC= component (e.g. CN=Jane Doe,OU=Staff,DC=contoso,DC=com)"
    return None


def _dn_attribute_types(dn: str) -> set[str]:
    """Parse a DN; the attribute types it uses (lower case); ValueError if malformed."""
    types: set[str] = set()
    position = 0
    while True:
        equals = dn.find("=", position)
        if equals < 0:
            raise ValueError(f"expected attribute=value at character {position + 1}")
        attribute = dn[position:equals].strip()
        if not _DN_ATTRIBUTE_TYPE.fullmatch(attribute):
            raise ValueError(f"{attribute[:40]!r} is not an attribute type")
        types.add(attribute.lower())
        position = _dn_value_end(dn, equals + 1)
        if position == len(dn):
            return types
        position += 1  # the "," or "+" between components


def _dn_value_end(dn: str, start: int) -> int:
    """Where the attribute value starting at `start` ends (at `,`, `+` or the end)."""
    if start < len(dn) and dn[start] == "#":  # a BER-encoded value as hex
        end = start + 1
        while end < len(dn) and dn[end] not in ",+":
            end += 1
        hexdigits = dn[start + 1 : end]
        if (
            not hexdigits
            or len(hexdigits) % 2
            or not all(c in "0123456789abcdefABCDEF" for c in hexdigits)
        ):
            raise ValueError("a # value must be an even number of hex digits")
        return end
    position = start
    while position < len(dn):
        char = dn[position]
        if char == "\\":
            pair = dn[position + 1 : position + 3]
            if pair[:1] and (pair[0] in _DN_SPECIAL or pair[0] in " #="):
                position += 2
                continue
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                position += 3
                continue
            raise ValueError(f"a bad escape at character {position + 1}")
        if char in ",+":
            break
        if char in '";<>':
            raise ValueError(f"{char!r} at character {position + 1} must be escaped")
        position += 1
    if position == start:
        raise ValueError(f"an empty value at character {start + 1}")
    return position


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


# --- the request as a JSON Schema, for integrators ---------------------------------------


def json_schema() -> dict[str, Any]:
    """The request as a JSON Schema (draft 2020-12), from the same rules `validate_request`
    applies; published as `schemas/user-onboard.schema.json` (tests keep the two equal).

    A schema cannot say everything the app checks: RFC 4514 beyond its shape, a SKU listed
    twice in another case, `startDate` at most 400 days ahead, a `syncDeadline` not before
    the start window, `disabledPlans` refused in group mode. Those answer `rejected` all
    the same, field by field.

    Every `pattern` is in the syntax common to ECMA-262 and RE2 (no look-around, no
    backreference: RE2-based validators, as in many iPaaS tools, refuse them) and uses
    `[0-9]`, not `\\d` (any Unicode digit in Python's `re`). No `$id`: the schema is not
    published at a URL, and needs none (it has no `$ref`)."""
    string = {"type": "string"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "user-onboard request (contract v1.1)",
        "description": (
            "One onboarding request, posted as UTF-8 JSON text (at most "
            f"{MAX_MESSAGE_BYTES} bytes) to the user-onboard queue. Some rules are checked "
            "by the app only: see the app's README, 'Bad input: what an integrator sees'."
        ),
        "type": "object",
        "additionalProperties": False,
        "required": ["requestId"],
        "anyOf": [
            {"required": ["userPrincipalName"]},
            {"required": ["employeeId"]},
            {"required": ["onPremisesImmutableId"]},
        ],
        "properties": {
            "requestId": {
                **string,
                "pattern": f"^{_REQUEST_ID.pattern}$",
                "description": "The idempotency key; event ids are <requestId>:<word>.",
            },
            "userPrincipalName": {
                **string,
                "pattern": _UPN_SHAPE_PATTERN,
                "allOf": [{"pattern": _UPN_LENGTHS_PATTERN}],
                "description": (
                    "local@domain; no dot first, last or twice in a row before the @; at "
                    "most 113 characters before the @ and 253 after (the second pattern)."
                ),
            },
            "employeeId": {**string, "pattern": f"^{_EMPLOYEE_ID.pattern}$"},
            "onPremisesImmutableId": {**string, "pattern": "^[ -~]{1,256}$"},
            "usageLocation": {**string, "enum": sorted(ISO_3166_ALPHA2)},
            "licenses": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_LICENSES,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["skuPartNumber"],
                    "properties": {
                        "skuPartNumber": {**string, "pattern": f"^{_SKU_PART.pattern}$"},
                        "disabledPlans": {
                            "type": "array",
                            "maxItems": MAX_DISABLED_PLANS,
                            "items": {**string, "pattern": f"^{_PLAN_NAME.pattern}$"},
                        },
                    },
                },
            },
            "syncDeadline": {**string, "pattern": _RFC3339_PATTERN},
            "startDate": {
                **string,
                "pattern": f"^(?:[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}|{_RFC3339_PATTERN[1:-1]})$",
                "description": "A date (read as 00:00 UTC) or a timestamp with offset.",
            },
            "onPremisesDistinguishedName": {
                **string,
                "minLength": 3,
                "maxLength": MAX_DN_CHARS,
                "pattern": f"(^|[,+])[{_DN_SPACE}]*[Dd][Cc][{_DN_SPACE}]*=",
                "description": "RFC 4514 with a DC= component; the app checks it fully.",
            },
        },
    }


_RFC3339_PATTERN: Final = (
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?"
    "([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
# The UPN without look-arounds, in two patterns that together say what `upn_problem` does:
# the shape (runs of the part-before-@ characters other than the dot, joined by single
# dots, then the domain's labels; one @, as neither side allows it) and the lengths.
_UPN_ATOM: Final = "[A-Za-z0-9'_!#^~$&+=-]+"
_UPN_SHAPE_PATTERN: Final = f"^{_UPN_ATOM}(?:\\.{_UPN_ATOM})*@{_DOMAIN_LABELS}$"
_UPN_LENGTHS_PATTERN: Final = "^[^@]{1,113}@[^@]{1,253}$"
# What `str.strip()` takes off around a DN's attribute type, less the control characters
# `dn_problem` refuses (a `\s` is ASCII only in RE2: it would refuse "CN=x,\u00a0DC=y").
_DN_SPACE: Final = " \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
