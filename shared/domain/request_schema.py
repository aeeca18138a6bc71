"""The request as a JSON Schema, for integrators: `schemas/user-onboard.schema.json` is
this function's output (`python -m ops schema`; tests keep the two equal)."""

from __future__ import annotations

from typing import Any, Final

from shared.domain.countries import ISO_3166_ALPHA2
from shared.domain.decoding import MAX_MESSAGE_BYTES
from shared.domain.identifiers import (
    DOMAIN,
    EMPLOYEE_ID,
    MAX_DN_CHARS,
    PLAN_NAME,
    REQUEST_ID,
    SKU_PART,
    UPN_LOCAL,
)
from shared.domain.requests import MAX_DISABLED_PLANS, MAX_LICENSES


def json_schema() -> dict[str, Any]:
    """The request as a JSON Schema (draft 2020-12), from the same rules `validate_request`
    applies; published as `schemas/user-onboard.schema.json` (tests keep the two equal).

    A schema cannot say everything the app checks: RFC 4514 beyond its shape, a SKU listed
    twice in another case, `startDate` at most 400 days ahead, a `syncDeadline` not before
    the start window, `disabledPlans` refused in group mode. Those answer `rejected` all
    the same, field by field."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/user-onboarding/schemas/user-onboard.schema.json",
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
            # No dot first, last, or twice in a row before the @ (lookaheads, ECMA 262).
            "pattern": (f"^(?!\\.)(?!.*\\.\\.)(?!.*\\.@){UPN_LOCAL.pattern}@{DOMAIN.pattern}$"),
        },
        "employeeId": {**string, "pattern": f"^{EMPLOYEE_ID.pattern}$"},
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
                    "skuPartNumber": {**string, "pattern": f"^{SKU_PART.pattern}$"},
                    "disabledPlans": {
                        "type": "array",
                        "maxItems": MAX_DISABLED_PLANS,
                        "items": {**string, "pattern": f"^{PLAN_NAME.pattern}$"},
                    },
                },
            },
        },
        "syncDeadline": {**string, "pattern": _RFC3339_PATTERN},
        "startDate": {
            **string,
            "pattern": f"^(?:\\d{{4}}-\\d{{2}}-\\d{{2}}|{_RFC3339_PATTERN[1:-1]})$",
            "description": "A date (read as 00:00 UTC) or a timestamp with offset.",
        },
        "onPremisesDistinguishedName": {
            **string,
            "minLength": 3,
            "maxLength": MAX_DN_CHARS,
            "pattern": "(^|[,+])\\s*[Dd][Cc]\\s*=",
            "description": "RFC 4514 with a DC= component; the app checks it fully.",
        },
    }


_RFC3339_PATTERN: Final = (
    "^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?([Zz]|[+-]\\d{2}:\\d{2})$"
)
