"""Who may call the HTTP front door (contract v1.2, "HTTP front door"; architecture
guarantee 10): the app roles, the caller a verified token names, and every refusal with
its machine-readable reason. Plain data, so the use cases can decide on callers without
knowing how tokens are checked (`shared.adapters.access_tokens` does that, with PyJWT).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from shared.domain.errors import OnboardingError

SUBMIT_ROLE: Final = "Onboarding.Submit"  # post requests (and read them)
READ_ROLE: Final = "Onboarding.Read"  # read requests' status


class Refusal(StrEnum):
    """Why a token was refused: the machine-readable reason callers see."""

    MISSING_TOKEN = "missing_token"  # noqa: S105 - a reason code; no Authorization header
    UNSUPPORTED_SCHEME = "unsupported_scheme"  # not `Bearer`
    MALFORMED_TOKEN = "malformed_token"  # noqa: S105 - not a JWT, or a part of wrong shape
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"  # anything but RS256
    UNKNOWN_KEY = "unknown_key"  # no key of the tenant's JWKS has this kid
    INVALID_SIGNATURE = "invalid_signature"
    MISSING_CLAIM = "missing_claim"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_TENANT = "wrong_tenant"
    WRONG_ISSUER = "wrong_issuer"
    DELEGATED_TOKEN = "delegated_token"  # noqa: S105 - a user's token: apps only
    MISSING_ROLE = "missing_role"
    KEYS_UNAVAILABLE = "keys_unavailable"  # the tenant's JWKS could not be fetched

    @property
    def status(self) -> int:
        """401: the token proves nothing; 403: no right; 503: tokens cannot be checked."""
        if self in (Refusal.DELEGATED_TOKEN, Refusal.MISSING_ROLE):
            return 403
        if self is Refusal.KEYS_UNAVAILABLE:
            return 503
        return 401


class AccessTokenError(OnboardingError):
    """A refused token or caller; `reason` is machine-readable, the message safe to return."""

    def __init__(self, reason: Refusal, message: str, *, app_id: str | None = None) -> None:
        self.reason = reason
        self.message = message
        self.app_id = app_id  # set only once the signature is verified
        super().__init__(f"{reason}: {message}")

    @property
    def status(self) -> int:
        return self.reason.status

    def to_json(self) -> dict[str, str]:
        return {"code": str(self.reason), "message": self.message}

    def www_authenticate(self) -> str | None:
        """The `WWW-Authenticate` value of RFC 6750 section 3 for this refusal."""
        if self.reason in (Refusal.MISSING_TOKEN, Refusal.UNSUPPORTED_SCHEME):
            return "Bearer"
        if self.reason is Refusal.KEYS_UNAVAILABLE:
            return None
        error = "insufficient_scope" if self.status == 403 else "invalid_token"
        return f'Bearer error="{error}", error_description="{self.reason}"'


@dataclass(frozen=True)
class Caller:
    """Who called, from a verified app-only token."""

    app_id: str  # azp: the calling application's client id
    object_id: str  # oid: its service principal in the tenant
    tenant_id: str
    roles: frozenset[str]


def require_role(caller: Caller, allowed: Iterable[str]) -> None:
    """Let the caller through if it holds any of `allowed`; else `missing_role` (403)."""
    wanted = frozenset(allowed)
    if not caller.roles & wanted:
        raise AccessTokenError(
            Refusal.MISSING_ROLE,
            f"the caller needs the app role {' or '.join(sorted(wanted))}",
            app_id=caller.app_id,
        )
