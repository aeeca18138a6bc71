"""A request's fingerprint: what tells "the same request again" from "another request under
a requestId already in use" (contract v1.2, HTTP front door: 202 again, or 409).

It is a hash of the request's validated, canonical form (`OnboardingRequest.to_json`,
keys sorted, no spaces, ASCII), not of the bytes posted: whitespace, key order, a
byte-order mark, base64 wrapping, escapes (`\\u0041` for `A`), a timestamp's offset
(`10:00:00+01:00` is `09:00:00Z`) or a date written as midnight UTC do not make two bodies
different. Anything that changes what the app would do does: another identifier, license,
disabled plan, date, or the order of `licenses` (events list them in that order).
Settings do not take part (a missing `licenses` stays missing, whatever DEFAULT_LICENSES
says), so a fingerprint stays valid across a change of settings.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

from shared.domain.requests import OnboardingRequest

PREFIX: Final = "sha256:"


def fingerprint(request: OnboardingRequest) -> str:
    """`sha256:<hex>` of the request's canonical JSON."""
    canonical = json.dumps(request.to_json(), sort_keys=True, separators=(",", ":"))
    return PREFIX + hashlib.sha256(canonical.encode("ascii")).hexdigest()
