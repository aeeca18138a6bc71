"""The request as a JSON Schema, for integrators: `schemas/user-onboard.schema.json` is
this function's output (`python -m ops schema`; tests keep the two equal)."""

from __future__ import annotations

from typing import Any, Final

from shared.domain.countries import ISO_3166_ALPHA2
from shared.domain.decoding import MAX_MESSAGE_BYTES
from shared.domain.identifiers import (
    DOMAIN_LABELS,
    EMPLOYEE_ID,
    MAX_DN_CHARS,
    PLAN_NAME,
    REQUEST_ID,
    SKU_PART,
)
from shared.domain.phone import LOCATION_ID, NUMBER_TYPES, PHONE_NUMBER
from shared.domain.requests import MAX_DISABLED_PLANS, MAX_LICENSES


def json_schema() -> dict[str, Any]:
    """The request as a JSON Schema (draft 2020-12), from the same rules `validate_request`
    applies; published as `schemas/user-onboard.schema.json` (tests keep the two equal).

    A schema cannot say everything the app checks: RFC 4514 beyond its shape, a SKU listed
    twice in another case, `startDate` at most 400 days ahead, a `syncDeadline` not before
    the start window, `disabledPlans` refused in group mode, `teams` where TEAMS_PHONE is
    not true. Those answer `rejected` all the same, field by field.

    Every `pattern` is in the syntax common to ECMA-262 and RE2 (no look-around, no
    backreference: RE2-based validators, as in many iPaaS tools, refuse them) and uses
    `[0-9]`, not `\\d` (any Unicode digit in Python's `re`). No `$id`: the schema is not
    published at a URL, and needs none (it has no `$ref`)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "user-onboard request (contract v1.2)",
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
        "properties": _properties(),
    }


def _properties() -> dict[str, Any]:
    string = {"type": "string"}
    return {
        "requestId": {
            **string,
            "pattern": f"^{REQUEST_ID.pattern}$",
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
        "employeeId": {**string, "pattern": f"^{EMPLOYEE_ID.pattern}$"},
        "onPremisesImmutableId": {**string, "pattern": "^[ -~]{1,256}$"},
        "usageLocation": {**string, "enum": sorted(ISO_3166_ALPHA2)},
        "licenses": _licenses(),
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
        "teams": _teams(),
    }


def _teams() -> dict[str, Any]:
    string = {"type": "string"}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["phoneNumber", "numberType"],
        "description": (
            "(v1.2) The Teams Phone step: the number to assign once the licenses are on. "
            "Accepted only where the deployment sets TEAMS_PHONE=true."
        ),
        "properties": {
            "phoneNumber": {**string, "pattern": f"^{PHONE_NUMBER.pattern}$"},
            "numberType": {**string, "enum": list(NUMBER_TYPES)},
            "locationId": {**string, "pattern": f"^{LOCATION_ID.pattern}$"},
        },
    }


def _licenses() -> dict[str, Any]:
    string = {"type": "string"}
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_LICENSES,
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["skuPartNumber"],
            "properties": {
                "skuPartNumber": {**string, "pattern": f"^{SKU_PART.pattern}$"},
                "disabledPlans": {
                    "type": "array",
                    "maxItems": MAX_DISABLED_PLANS,
                    "items": {**string, "pattern": f"^{PLAN_NAME.pattern}$"},
                },
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
_UPN_SHAPE_PATTERN: Final = f"^{_UPN_ATOM}(?:\\.{_UPN_ATOM})*@{DOMAIN_LABELS}$"
_UPN_LENGTHS_PATTERN: Final = "^[^@]{1,113}@[^@]{1,253}$"
# What `str.strip()` takes off around a DN's attribute type, less the control characters
# `dn_problem` refuses (a `\s` is ASCII only in RE2: it would refuse "CN=x,\u00a0DC=y").
_DN_SPACE: Final = " \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
