"""A local Microsoft Entra ID token issuer: the tenant's app registrations and signing keys.

It issues what Entra's v2.0 token endpoint issues to an application (client credentials):
RS256 JWTs signed with an RSA key generated at start, named by the base64url SHA-1
thumbprint of its self-signed certificate (Entra's `kid` and `x5t` are that thumbprint),
with Entra's app-only v2 claims (learn.microsoft.com "Access token claims reference"):
`aud` (the API's client id, however the scope named it), `iss`
(`<issuer base>/<tenant>/v2.0`), `iat` and `nbf` five minutes before issuance (Entra
backdates them against clock skew), `exp`, `aio`, `azp`, `azpacr` (`1`: a secret), `idtyp`
(`app`; an optional claim, on by default here), `oid` and `sub` (the client's service
principal), `rh`, `roles` (only when the client holds some: Entra omits the claim),
`tid`, `uti` and `ver` (`2.0`). The HTTP side (Entra's endpoints and the control API) is
`identity_http`; the directory-file section is documented in the package docstring.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .clock import Clock
from .errors import DirectoryFormatError

DEFAULT_LIFETIME_SECONDS = 3599  # what Entra's token endpoint answers as expires_in
BACKDATE_SECONDS = 300
KNOWN_KEYS = frozenset({"tenantId", "api", "clients", "tokenLifetimeSeconds", "idtypClaim"})
CLIENT_KEYS = frozenset(
    {"name", "clientId", "objectId", "displayName", "secret", "roles", "tenantId"}
)
API_KEYS = frozenset({"clientId", "identifierUris", "appRoles", "displayName"})
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair with the self-signed certificate Entra publishes it in."""

    kid: str
    private_key: rsa.RSAPrivateKey
    certificate: bytes  # DER

    @classmethod
    def generate(cls) -> SigningKey:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local-entra-issuer")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .sign(private_key, hashes.SHA256())
        ).public_bytes(serialization.Encoding.DER)
        thumbprint = _b64url(hashlib.sha1(certificate).digest())  # noqa: S324 - x5t is SHA-1
        return cls(thumbprint, private_key, certificate)

    def jwk(self, issuer: str) -> dict[str, Any]:
        """The key as Entra's v2 JWKS lists it."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _uint(numbers.n),
            "e": _uint(numbers.e),
            "x5c": [base64.b64encode(self.certificate).decode("ascii")],
            "cloud_instance_name": "microsoftonline.com",
            "issuer": issuer,
        }

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class Client:
    """An application registration that may ask for tokens, with its roles on the API."""

    name: str
    client_id: str
    object_id: str
    display_name: str
    secret: str
    roles: list[str]
    tenant_id: str

    def describe(self) -> dict[str, Any]:
        """The client as the control API shows it (never the secret)."""
        return {
            "name": self.name,
            "clientId": self.client_id,
            "objectId": self.object_id,
            "displayName": self.display_name,
            "roles": list(self.roles),
            "tenantId": self.tenant_id,
        }


@dataclass
class IdentityConfig:
    """The directory file's `identity` section, parsed."""

    tenant_id: str
    api_client_id: str
    identifier_uris: list[str]
    app_roles: list[str]
    api_display_name: str
    lifetime: int = DEFAULT_LIFETIME_SECONDS
    idtyp_claim: bool = True
    clients: dict[str, Client] = field(default_factory=dict)  # by client id


def _guid(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _GUID.fullmatch(value):
        raise DirectoryFormatError(f"identity: {what} must be a GUID, got {value!r}")
    return value.lower()


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise DirectoryFormatError(f"identity: {what} must be a list of non-empty strings")
    return list(value)


def _unknown(spec: Mapping[str, Any], known: frozenset[str], what: str) -> None:
    unknown = set(spec) - known
    if unknown:
        raise DirectoryFormatError(f"identity: unknown keys in {what}: {sorted(unknown)}")


def parse_config(spec: Any) -> IdentityConfig:
    """Check and parse an `identity` section; DirectoryFormatError naming what is wrong."""
    if not isinstance(spec, Mapping):
        raise DirectoryFormatError("identity must be an object")
    _unknown(spec, KNOWN_KEYS, "identity")
    api = spec.get("api")
    if not isinstance(api, Mapping):
        raise DirectoryFormatError("identity.api must be an object with clientId")
    _unknown(api, API_KEYS, "identity.api")
    api_id = _guid(api.get("clientId"), "api.clientId")
    lifetime = spec.get("tokenLifetimeSeconds", DEFAULT_LIFETIME_SECONDS)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 60 <= lifetime <= 86400:
        raise DirectoryFormatError("identity.tokenLifetimeSeconds must be 60 to 86400")
    config = IdentityConfig(
        tenant_id=_guid(spec.get("tenantId"), "tenantId"),
        api_client_id=api_id,
        identifier_uris=_strings(api.get("identifierUris", [f"api://{api_id}"]), "identifierUris"),
        app_roles=_strings(api.get("appRoles", []), "api.appRoles"),
        api_display_name=str(api.get("displayName", "API")),
        lifetime=lifetime,
        idtyp_claim=bool(spec.get("idtypClaim", True)),
    )
    clients = spec.get("clients", [])
    if not isinstance(clients, list):
        raise DirectoryFormatError("identity.clients must be a list of objects")
    for entry in clients:
        client = parse_client(entry, config)
        config.clients[client.client_id] = client
    return config


def parse_client(spec: Any, config: IdentityConfig) -> Client:
    """One client entry; its roles must be app roles of the API."""
    if not isinstance(spec, Mapping):
        raise DirectoryFormatError("identity.clients must be a list of objects")
    _unknown(spec, CLIENT_KEYS, "a client")
    client_id = _guid(spec.get("clientId"), "clients[].clientId")
    secret, name = spec.get("secret"), spec.get("name", client_id)
    if not isinstance(secret, str) or not secret or not isinstance(name, str) or not name:
        raise DirectoryFormatError(f"identity: client {client_id} needs a secret and a name")
    roles = _strings(spec.get("roles", []), f"roles of client {name}")
    undeclared = set(roles) - set(config.app_roles)
    if undeclared:
        raise DirectoryFormatError(
            f"identity: client {name} holds roles the API does not declare: {sorted(undeclared)}"
        )
    if client_id in config.clients or name in {c.name for c in config.clients.values()}:
        raise DirectoryFormatError(f"identity: client {name} ({client_id}) is declared twice")
    return Client(
        name=name,
        client_id=client_id,
        object_id=_guid(spec.get("objectId", str(uuid.uuid4())), "clients[].objectId"),
        display_name=str(spec.get("displayName", name)),
        secret=secret,
        roles=roles,
        tenant_id=_guid(spec.get("tenantId", config.tenant_id), "clients[].tenantId"),
    )


class IdentityIssuer:
    """The issuer's state: configuration, clients and signing keys (thread-safe)."""

    def __init__(self, spec: Any, clock: Clock) -> None:
        self.clock = clock
        self.base_url = ""  # http://127.0.0.1:PORT, set once the server is bound
        self._lock = threading.RLock()
        self._keys: list[SigningKey] = [SigningKey.generate()]  # the first one signs
        self.config: IdentityConfig | None = None
        self.log: list[dict[str, Any]] = []
        self.load(spec)

    def load(self, spec: Any) -> None:
        """Replace the configuration (None: no identity section); the keys stay."""
        config = None if spec is None else parse_config(copy.deepcopy(spec))
        with self._lock:
            self.config = config

    # ------------------------------------------------------------------ lookups

    def issuer(self, tenant_id: str) -> str:
        return f"{self.base_url}/{tenant_id}/v2.0"

    def tenants(self) -> set[str]:
        """The tenant and every tenant a client lives in (the API is multi-tenant there)."""
        with self._lock:
            if self.config is None:
                return set()
            return {self.config.tenant_id} | {c.tenant_id for c in self.config.clients.values()}

    def client(self, key: str) -> Client:
        """A client by name or client id; KeyError if unknown."""
        with self._lock:
            clients = self.config.clients.values() if self.config else []
            for client in clients:
                if key in (client.name, client.client_id):
                    return client
        raise KeyError(key)

    def signing_kid(self) -> str:
        with self._lock:
            return self._keys[0].kid

    def public_pem(self) -> bytes:
        """The current signing key's public key (tests forge tokens with it)."""
        with self._lock:
            return self._keys[0].public_pem()

    def jwks(self, tenant_id: str) -> dict[str, Any]:
        with self._lock:
            return {"keys": [key.jwk(self.issuer(tenant_id)) for key in self._keys]}

    # ------------------------------------------------------------------ changes

    def add_client(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Register a client (directory-file shape); the control API's POST."""
        with self._lock:
            if self.config is None:
                raise DirectoryFormatError("the directory has no identity section")
            client = parse_client(spec, self.config)
            self.config.clients[client.client_id] = client
            return client.describe()

    def rotate_key(self, *, retire_previous: bool = False) -> dict[str, Any]:
        """Sign with a new key from now on; the old ones stay published unless retired."""
        new = SigningKey.generate()
        with self._lock:
            self._keys = [new] if retire_previous else [new, *self._keys]
            return {"kid": new.kid, "published": [key.kid for key in self._keys]}

    # ------------------------------------------------------------------ tokens

    def claims_for(self, client: Client, tenant_id: str) -> dict[str, Any]:
        """The payload Entra issues to `client` for the API (client credentials)."""
        assert self.config is not None
        now = int(self.clock.now())
        claims: dict[str, Any] = {
            "aud": self.config.api_client_id,
            "iss": self.issuer(tenant_id),
            "iat": now - BACKDATE_SECONDS,
            "nbf": now - BACKDATE_SECONDS,
            "exp": now + self.config.lifetime,
            "aio": _b64url(secrets.token_bytes(48)),
            "azp": client.client_id,
            "azpacr": "1",
            "idtyp": "app",
            "oid": client.object_id,
            "rh": "0." + _b64url(secrets.token_bytes(40)) + ".",
            "roles": sorted(client.roles),
            "sub": client.object_id,
            "tid": tenant_id,
            "uti": _b64url(secrets.token_bytes(16)),
            "ver": "2.0",
        }
        if not client.roles:
            del claims["roles"]
        if not self.config.idtyp_claim:
            del claims["idtyp"]
        return claims

    def sign(self, claims: Mapping[str, Any], header: Mapping[str, Any] | None = None) -> str:
        """An RS256 JWT of `claims` signed with the current key (`header` adds or replaces)."""
        with self._lock:
            key = self._keys[0]
        headers = {"typ": "JWT", "kid": key.kid, **(header or {})}
        return jwt.encode(dict(claims), key.private_key, algorithm="RS256", headers=headers)

    def mint(
        self,
        client_key: str,
        *,
        claims: Mapping[str, Any] | None = None,
        header: Mapping[str, Any] | None = None,
        tenant_id: str | None = None,
    ) -> str:
        """A token for a client as the token endpoint would issue it, with `claims` changed
        (a None value removes the claim): for tests of what a validator refuses."""
        client = self.client(client_key)
        payload = self.claims_for(client, tenant_id or client.tenant_id)
        for name, value in (claims or {}).items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        return self.sign(payload, header)

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.log.append({**entry, "time": self.clock.now()})

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self.log]

    def clear_requests(self) -> None:
        with self._lock:
            self.log.clear()

    def describe(self) -> dict[str, Any]:
        """The configuration as the control API shows it (no secrets)."""
        with self._lock:
            config = self.config
            if config is None:
                return {"configured": False}
            return {
                "configured": True,
                "tenantId": config.tenant_id,
                "issuer": self.issuer(config.tenant_id),
                "authority": self.base_url,
                "api": {
                    "clientId": config.api_client_id,
                    "identifierUris": list(config.identifier_uris),
                    "appRoles": list(config.app_roles),
                    "displayName": config.api_display_name,
                },
                "tokenLifetimeSeconds": config.lifetime,
                "idtypClaim": config.idtyp_claim,
                "clients": [c.describe() for c in config.clients.values()],
                "signingKeys": [key.kid for key in self._keys],
            }
