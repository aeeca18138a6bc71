"""Access tokens for the HTTP front door: Microsoft Entra ID v2 tokens for the app's API.

The app checks every token itself, with PyJWT for everything cryptographic, so the same
path runs in Azure, on the local stack and in tests. The rules, and the sources of the
choices Microsoft leaves open, are in docs/access-tokens.md; in short:

* `Authorization: Bearer <JWT>`; RS256 only, decided here and never read from the token
  (`none`, HS256 and every other `alg` are refused before any key is looked at, which
  closes algorithm confusion); the key is the tenant's JWKS entry named by `kid`, never
  one the token points to (`jku`, `x5u` and `jwk` are ignored).
* `exp`, `nbf`, `iat`, `aud`, `iss`, `tid`, `azp` and `oid` are required, with 60 s of
  leeway (Entra already backdates `nbf`/`iat` by five minutes).
* `aud` is the API's client id (v2 tokens) or `api://<client id>` (the same registration's
  default Application ID URI); `tid` is the app's tenant (checked first, so another
  tenant's token is `wrong_tenant`), then `iss` is exactly `<authority>/<tenant>/v2.0`.
* App-only tokens only (`idtyp: app`, or no `scp`): a user's token is `delegated_token`.
* The JWKS is fetched off the event loop, kept a day, and fetched again for an unknown
  `kid` at most once every five minutes: a rotation is picked up at once, a flood of
  made-up `kid`s fetches nothing. Logs show only the reason and the verified app id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import jwt

from shared.domain.access import AccessTokenError, Caller, Refusal, require_role
from shared.settings import ApiAuthSettings

log = logging.getLogger(__name__)

# The caller and the refusals are domain data (`shared.domain.access`), so the use cases
# can decide on them; they are named here too, where the validator's users look for them.
__all__ = [
    "AccessTokenError",
    "AccessTokenValidator",
    "Caller",
    "Refusal",
    "SigningKeys",
    "bearer_token",
    "fetch_url",
    "require_role",
]

ALGORITHM: Final = "RS256"
LEEWAY_SECONDS: Final = 60
REFETCH_INTERVAL_SECONDS: Final = 300.0
RETRY_AFTER_FAILURE_SECONDS: Final = 5.0
KEYS_MAX_AGE_SECONDS: Final = 24 * 3600.0
FETCH_TIMEOUT_SECONDS: Final = 10.0
MAX_TOKEN_CHARS: Final = 16 * 1024
MAX_JWKS_BYTES: Final = 1024 * 1024
REQUIRED_CLAIMS: Final = ("exp", "nbf", "iat", "aud", "iss", "tid", "azp", "oid")

_B64TOKEN = re.compile(r"[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*\.[A-Za-z0-9\-_]*")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def bearer_token(authorization: str | None) -> str:
    """The JWT of an `Authorization: Bearer <token>` value, or the refusal."""
    if authorization is None or not authorization.strip():
        raise AccessTokenError(Refusal.MISSING_TOKEN, "an Authorization: Bearer token is required")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AccessTokenError(
            Refusal.UNSUPPORTED_SCHEME, "the Authorization header must use the Bearer scheme"
        )
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS or not _B64TOKEN.fullmatch(token):
        raise AccessTokenError(Refusal.MALFORMED_TOKEN, "the bearer token is not a JWT")
    return token


Fetch = Callable[[str], bytes]


def fetch_url(url: str) -> bytes:
    """GET `url` (an https, or loopback http, URL checked by the settings)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as answer:  # noqa: S310
        body: bytes = answer.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("the JWKS document is larger than 1 MiB")
    return body


class SigningKeys:
    """The tenant's signing keys (its JWKS), fetched lazily and cached by `kid`.

    `cached(kid)` never blocks; `get(kid)` may fetch (call it off the event loop). Fetches
    are serialised by a lock, so concurrent requests for a new `kid` cause one fetch.
    """

    def __init__(
        self,
        jwks_uri: str,
        *,
        fetch: Fetch = fetch_url,
        monotonic: Callable[[], float] = time.monotonic,
        refetch_interval: float = REFETCH_INTERVAL_SECONDS,
        max_age: float = KEYS_MAX_AGE_SECONDS,
    ) -> None:
        self.jwks_uri = jwks_uri
        self._fetch = fetch
        self._monotonic = monotonic
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def cached(self, kid: str) -> jwt.PyJWK | None:
        """The key if it is known and the set is fresh; None means `get` must run."""
        fetched = self._fetched_at
        if fetched is None or self._monotonic() - fetched >= self._max_age:
            return None
        return self._keys.get(kid)

    def get(self, kid: str) -> jwt.PyJWK:
        """The key named `kid`, fetching the JWKS when stale or (rate-limited) unknown.

        A known key whose set is stale is still used while another thread refreshes the
        set, or when the refresh fails: a JWKS outage must not stall or refuse callers
        whose keys are known."""
        known = self._keys.get(kid)
        if known is not None and self._lock.acquire(blocking=False):
            try:
                self._fetch_if_due(kid)
            finally:
                self._lock.release()
            return self._keys.get(kid, known)
        if known is not None:
            return known
        with self._lock:
            self._fetch_if_due(kid)
            key = self._keys.get(kid)
        if key is not None:
            return key
        if self._fetched_at is None:
            raise AccessTokenError(
                Refusal.KEYS_UNAVAILABLE, "the tenant's signing keys cannot be fetched now"
            )
        raise AccessTokenError(Refusal.UNKNOWN_KEY, "no signing key of the tenant has this kid")

    def _fetch_if_due(self, kid: str) -> None:
        now = self._monotonic()
        stale = self._fetched_at is None or now - self._fetched_at >= self._max_age
        if (stale or kid not in self._keys) and self._may_fetch(now, stale=stale):
            self._refresh(now)

    def _may_fetch(self, now: float, *, stale: bool) -> bool:
        last = self._attempted_at
        if last is None:
            return True
        if self._fetched_at is None or stale:
            return now - last >= RETRY_AFTER_FAILURE_SECONDS
        return now - last >= self._refetch_interval

    def _refresh(self, now: float) -> None:
        self._attempted_at = now
        self.fetches += 1
        try:
            document = json.loads(self._fetch(self.jwks_uri))
        except (OSError, ValueError, urllib.error.URLError) as error:
            log.warning("cannot fetch the signing keys from %s: %s", self.jwks_uri, error)
            return
        keys = _rsa_signing_keys(document)
        if not keys:
            log.warning("the JWKS at %s holds no RSA signing key", self.jwks_uri)
            return
        self._keys = keys
        self._fetched_at = now


def _rsa_signing_keys(document: object) -> dict[str, jwt.PyJWK]:
    entries = document.get("keys") if isinstance(document, Mapping) else None
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            keys[kid] = jwt.PyJWK(entry, algorithm=ALGORITHM)
        except jwt.PyJWTError:
            continue
    return keys


class AccessTokenValidator:
    """Checks `Authorization` header values against one tenant and one API."""

    def __init__(
        self,
        settings: ApiAuthSettings,
        *,
        keys: SigningKeys | None = None,
        leeway: float = LEEWAY_SECONDS,
    ) -> None:
        self.settings = settings
        self.keys = keys or SigningKeys(settings.jwks_uri)
        self._audiences = (settings.audience, f"api://{settings.audience}")
        self._leeway = leeway

    async def authenticate(self, authorization: str | None) -> Caller:
        """The caller of a valid app-only token, or AccessTokenError (fetches off the loop)."""
        try:
            token, kid = self._parse(authorization)
            key = self.keys.cached(kid)
            if key is None:
                key = await asyncio.to_thread(self.keys.get, kid)
            return self._verify(token, key)
        except AccessTokenError as error:
            _log_refusal(error)
            raise

    def authenticate_blocking(self, authorization: str | None) -> Caller:
        """`authenticate` for synchronous code (may fetch the keys on this thread)."""
        try:
            token, kid = self._parse(authorization)
            key = self.keys.cached(kid)
            return self._verify(token, key if key is not None else self.keys.get(kid))
        except AccessTokenError as error:
            _log_refusal(error)
            raise

    def _parse(self, authorization: str | None) -> tuple[str, str]:
        token = bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AccessTokenError(
                Refusal.MALFORMED_TOKEN, "the token header is not JSON"
            ) from None
        if header.get("alg") != ALGORITHM:
            raise AccessTokenError(
                Refusal.UNSUPPORTED_ALGORITHM, f"only {ALGORITHM}-signed tokens are accepted"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= 256:
            raise AccessTokenError(Refusal.MALFORMED_TOKEN, "the token names no signing key (kid)")
        return token, kid

    def _verify(self, token: str, key: jwt.PyJWK) -> Caller:
        claims = _decode(token, key, self._audiences, self._leeway)
        app_id = str(claims["azp"])
        if not isinstance(claims["aud"], str):
            raise AccessTokenError(Refusal.WRONG_AUDIENCE, "aud must be one value", app_id=app_id)
        tenant = claims["tid"]
        if not isinstance(tenant, str) or tenant.lower() != self.settings.tenant_id:
            raise AccessTokenError(
                Refusal.WRONG_TENANT, "the token was issued by another tenant", app_id=app_id
            )
        if claims["iss"] != self.settings.issuer:
            raise AccessTokenError(
                Refusal.WRONG_ISSUER,
                "the token was not issued by the tenant's v2.0 endpoint",
                app_id=app_id,
            )
        if claims.get("scp") is not None or claims.get("idtyp", "app") != "app":
            raise AccessTokenError(
                Refusal.DELEGATED_TOKEN,
                "only applications may call (app-only tokens)",
                app_id=app_id,
            )
        return Caller(app_id, str(claims["oid"]), tenant.lower(), _roles(claims, app_id))


def _decode(token: str, key: jwt.PyJWK, audiences: Iterable[str], leeway: float) -> dict[str, Any]:
    """PyJWT checks the signature with `key` (RS256 only), the times and `aud`."""
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=list(audiences),
            leeway=leeway,
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_iss": False,  # checked after tid, to tell wrong_tenant from wrong_issuer
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.InvalidSignatureError:
        raise AccessTokenError(
            Refusal.INVALID_SIGNATURE, "the token's signature is invalid"
        ) from None
    except jwt.ExpiredSignatureError:
        raise AccessTokenError(Refusal.EXPIRED, "the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise AccessTokenError(Refusal.NOT_YET_VALID, "the token is not valid yet") from None
    except jwt.MissingRequiredClaimError as error:
        raise AccessTokenError(
            Refusal.MISSING_CLAIM, f"the token has no {error.claim} claim"
        ) from None
    except jwt.InvalidAudienceError:
        raise AccessTokenError(Refusal.WRONG_AUDIENCE, "the token is for another API") from None
    except jwt.InvalidAlgorithmError:
        raise AccessTokenError(
            Refusal.UNSUPPORTED_ALGORITHM, f"only {ALGORITHM}-signed tokens are accepted"
        ) from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise AccessTokenError(Refusal.MALFORMED_TOKEN, "the token is malformed") from None


def _roles(claims: Mapping[str, Any], app_id: str) -> frozenset[str]:
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise AccessTokenError(
            Refusal.MALFORMED_TOKEN, "roles must be a list of strings", app_id=app_id
        )
    return frozenset(roles)


def _log_refusal(error: AccessTokenError) -> None:
    app = error.app_id if error.app_id and _GUID.fullmatch(error.app_id) else "unverified"
    log.info("access token refused: reason=%s app=%s", error.reason, app)
