"""Personal data in text the app did not write itself (guarantee 9): a request's identifiers
(UPN, employeeId, immutableId, distinguished name, phone number) stay in the ledger, the
events and the queues, never in the logs. What reaches a log from outside (Graph's error
messages, which may echo a UPN or a `$filter`; an exception's text; a forced sync's
result) goes through `redact` first: the values a message is known to carry, and anything
shaped like a UPN, a distinguished name, an immutableId or a phone number. requestIds and
queue message ids are not personal data: they are how an operator finds a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from shared.domain.decoding import decode_body
from shared.domain.errors import InvalidRequest
from shared.domain.requests import OnboardingRequest

REDACTED: Final = "<redacted>"
# The request fields that name a person, at the top of a request or of a pending state's
# `request`; `teams.phoneNumber` (v1.2) inside `teams`.
FIELDS: Final = (
    "userPrincipalName",
    "employeeId",
    "onPremisesImmutableId",
    "onPremisesDistinguishedName",
)
_SHORTEST: Final = 3  # a shorter known value would blank out ordinary words and numbers
_DN_KEYS = r"(?:CN|OU|DC|O|L|ST|C|UID|STREET)"
_PATTERNS: Final = (
    # a UPN or e-mail address, also percent-encoded in a URL (jane.doe%40contoso.com)
    re.compile(
        r"[A-Za-z0-9._!#^~$&+=%-][A-Za-z0-9'._!#^~$&+=%-]*(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
    ),
    # a distinguished name: components up to a quote or the end of the line
    re.compile(rf"(?i)\b{_DN_KEYS}=[^,\"'\n]*(?:,\s*{_DN_KEYS}=[^,\"'\n]*)*"),
    # an immutableId: the base64 of a 16-byte objectGUID
    re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{22}=="),
    # a phone number in E.164 or tel: form
    re.compile(r"(?:tel:)?\+\d[\d ().-]{6,}\d"),
)


def redact(text: str, known: Iterable[str] = ()) -> str:
    """`text` with the `known` values and anything shaped like personal data replaced."""
    for value in sorted({v for v in known if len(v) >= _SHORTEST}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def values_in(body: str | bytes) -> tuple[str, ...]:
    """The personal values a message body carries, read as leniently as possible: a
    request, a pending state (its `request`), or whatever JSON object a poisoned message
    holds. Nothing for a body that is not JSON (the patterns still apply)."""
    try:
        document = decode_body(body)
    except InvalidRequest:
        return ()
    found: list[str] = []
    for part in (document, document.get("request") if isinstance(document, dict) else None):
        if isinstance(part, dict):
            found += [str(part[f]) for f in FIELDS if isinstance(part.get(f), str)]
            found += _phone_of(part.get("teams"))
    return tuple(found)


def values_of(request: OnboardingRequest) -> tuple[str, ...]:
    """The personal values of a valid request."""
    ids = request.identifiers
    candidates = (
        ids.user_principal_name,
        ids.employee_id,
        ids.immutable_id,
        request.distinguished_name,
    )
    return tuple(v for v in candidates if v)


def _phone_of(teams: Any) -> list[str]:
    if isinstance(teams, dict) and isinstance(teams.get("phoneNumber"), str):
        return [teams["phoneNumber"]]
    return []
