"""App settings: read once from the environment into a frozen dataclass.

Every missing or malformed setting raises `SettingsError` naming it, so a bad
deployment fails at start-up (function indexing) instead of on the first message.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final
from urllib.parse import urlsplit

from shared.domain.countries import ISO_3166_ALPHA2
from shared.domain.errors import SettingsError
from shared.domain.requests import LicenseRequest, parse_license_list
from shared.domain.tenant import CloudSyncJob
from shared.domain.times import parse_duration, parse_timespan
from shared.names import STORAGE_CONNECTION

DEFAULT_GRAPH_BASE_URL: Final = "https://graph.microsoft.com/v1.0"
# Microsoft Entra ID's public-cloud sign-in host; the app's tokens are issued under it.
DEFAULT_API_AUTHORITY: Final = "https://login.microsoftonline.com"
# The fixed token the app sends to a loopback Graph emulator instead of a real credential.
LOCAL_GRAPH_TOKEN: Final = "local-graph-emulator-token"  # noqa: S105 - not a secret
# The fixed key the app sends (header aeg-sas-key) to a loopback Event Grid stand-in: azure-core
# refuses bearer tokens over plain http, a key header it sends as is. Base64, like a real key.
LOCAL_EVENT_GRID_KEY: Final = "bG9jYWwtZXZlbnQtZ3JpZC1zdGFuZC1pbi1rZXk="
EVENT_GRID_PATH: Final = "/api/events"
# Azure Storage hides a message for at most seven days.
MAX_QUEUE_DELAY: Final = timedelta(days=7)

_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,\-]+")


@dataclass(frozen=True)
class StorageConnection:
    """The `AzureWebJobsStorage` connection: a connection string, or identity-based."""

    connection_string: str | None = None
    queue_service_uri: str | None = None
    table_service_uri: str | None = None
    credential: str | None = None
    client_id: str | None = None


@dataclass(frozen=True)
class ApiAuthSettings:
    """Who may call the HTTP front door: Entra ID access tokens (v2) for the app's API.

    `audience` is the API app registration's application (client) id, `tenant_id` the
    tenant's id (both lower-case GUIDs), `authority` the sign-in host without a path
    (`https://login.microsoftonline.com`, or a loopback `http://` issuer locally).
    """

    audience: str
    tenant_id: str
    authority: str = DEFAULT_API_AUTHORITY

    @property
    def issuer(self) -> str:
        """The `iss` of Entra's v2 tokens for this tenant: `<authority>/<tenant>/v2.0`."""
        return f"{self.authority}/{self.tenant_id}/v2.0"

    @property
    def jwks_uri(self) -> str:
        """Where the tenant's signing keys are published (the v2 `jwks_uri`)."""
        return f"{self.authority}/{self.tenant_id}/discovery/v2.0/keys"

    @property
    def token_endpoint(self) -> str:
        """Where a caller gets a token (client credentials: scope `<audience>/.default`)."""
        return f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token"


@dataclass(frozen=True)
class Settings:
    storage: StorageConnection
    graph_base_url: str
    graph_is_local: bool
    azure_client_id: str | None
    sweep_schedule: str
    sync_timeout: timedelta
    recheck_initial_delay: timedelta
    recheck_max_delay: timedelta
    default_usage_location: str | None
    set_usage_location: bool
    default_licenses: tuple[LicenseRequest, ...] | None
    poison_hold: timedelta
    cloud_sync_job: CloudSyncJob | None
    license_lead_time: timedelta
    licensing_mode: str  # "direct" | "group"
    license_groups: Mapping[str, str]  # SKUPARTNUMBER (upper case) -> group object id
    # (v1.2) the Event Grid topic every event also goes to; http:// only on loopback
    event_grid_topic_endpoint: str | None = None
    # The HTTP front door's token rules; None (API_AUDIENCE unset) = the front door is off.
    api_auth: ApiAuthSettings | None = None
    # (v1.2) how long the ledger keeps a request after its terminal event (LEDGER_RETENTION)
    ledger_retention: timedelta = timedelta(days=90)
    # (v1.2) the Teams Phone step: requests may carry `teams`; how long it may wait for Teams
    teams_phone: bool = False
    teams_ready_timeout: timedelta = timedelta(hours=24)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build the settings from an environment mapping (`os.environ` in production)."""
        graph_base_url, graph_is_local = _graph_base_url(env)
        mode = (_optional(env, "LICENSING_MODE") or "direct").lower()
        if mode not in ("direct", "group"):
            raise SettingsError("LICENSING_MODE", f"{mode!r} is not direct or group")
        initial = _duration(env, "RECHECK_INITIAL_DELAY", "PT5M")
        maximum = _duration(env, "RECHECK_MAX_DELAY", "PT30M")
        if maximum < initial:
            raise SettingsError(
                "RECHECK_MAX_DELAY", "must not be shorter than RECHECK_INITIAL_DELAY"
            )
        if maximum > MAX_QUEUE_DELAY:
            raise SettingsError("RECHECK_MAX_DELAY", "must be at most P7D (queue limit)")
        return cls(
            storage=_storage(env),
            graph_base_url=graph_base_url,
            graph_is_local=graph_is_local,
            azure_client_id=_optional(env, "AZURE_CLIENT_ID"),
            sweep_schedule=_schedule(env),
            sync_timeout=_duration(env, "SYNC_TIMEOUT", "PT24H"),
            recheck_initial_delay=initial,
            recheck_max_delay=maximum,
            default_usage_location=_usage_location(env),
            set_usage_location=_boolean(env, "SET_USAGE_LOCATION", default=True),
            default_licenses=_default_licenses(env),
            poison_hold=_duration(env, "POISON_HOLD", "PT1H", zero_allowed=True),
            cloud_sync_job=_cloud_sync_job(env),
            license_lead_time=_duration(env, "LICENSE_LEAD_TIME", "P1D", zero_allowed=True),
            licensing_mode=mode,
            license_groups=_license_groups(env, required=mode == "group"),
            event_grid_topic_endpoint=_event_grid_topic_endpoint(env),
            api_auth=_api_auth(env),
            ledger_retention=_duration(env, "LEDGER_RETENTION", "P90D"),
            teams_phone=_boolean(env, "TEAMS_PHONE", default=False),
            teams_ready_timeout=_duration(env, "TEAMS_READY_TIMEOUT", "PT24H"),
        )


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _storage(env: Mapping[str, str]) -> StorageConnection:
    name = STORAGE_CONNECTION
    direct = _optional(env, name)
    if direct is not None:
        if direct != "UseDevelopmentStorage=true" and "=" not in direct:
            raise SettingsError(name, "is not a storage connection string")
        return StorageConnection(connection_string=direct)
    uri = _optional(env, f"{name}__queueServiceUri")
    table_uri = _optional(env, f"{name}__tableServiceUri")
    account = _optional(env, f"{name}__accountName")
    if account is not None:
        uri = uri or f"https://{account}.queue.core.windows.net"
        table_uri = table_uri or f"https://{account}.table.core.windows.net"
    if uri is None:
        raise SettingsError(
            name,
            "is required: a connection string, UseDevelopmentStorage=true, or "
            f"{name}__queueServiceUri and {name}__tableServiceUri (identity-based)",
        )
    if urlsplit(uri).scheme != "https":
        raise SettingsError(f"{name}__queueServiceUri", "must be an https:// URL")
    if table_uri is None:
        raise SettingsError(
            f"{name}__tableServiceUri",
            "is required with an identity-based connection (the request ledger is a table)",
        )
    if urlsplit(table_uri).scheme != "https":
        raise SettingsError(f"{name}__tableServiceUri", "must be an https:// URL")
    credential = _optional(env, f"{name}__credential")
    if credential is not None and credential != "managedidentity":
        raise SettingsError(f"{name}__credential", "must be 'managedidentity' when set")
    return StorageConnection(
        queue_service_uri=uri.rstrip("/"),
        table_service_uri=table_uri.rstrip("/"),
        credential=credential,
        client_id=_optional(env, f"{name}__clientId"),
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_auth(env: Mapping[str, str]) -> ApiAuthSettings | None:
    """API_AUDIENCE, API_TENANT_ID and API_AUTHORITY; None when API_AUDIENCE is unset (the
    other two are then not read: a deployment may set the tenant without the front door)."""
    audience = _optional(env, "API_AUDIENCE")
    if audience is None:
        return None
    if not _GUID.fullmatch(audience):
        raise SettingsError(
            "API_AUDIENCE",
            "must be the API app registration's application (client) id, a GUID (v2 tokens "
            "carry it as aud; not the Application ID URI)",
        )
    tenant = _optional(env, "API_TENANT_ID")
    if tenant is None:
        raise SettingsError("API_TENANT_ID", "is required when API_AUDIENCE is set")
    if not _GUID.fullmatch(tenant):
        raise SettingsError(
            "API_TENANT_ID", "must be the tenant id, a GUID (tokens carry it in iss and tid)"
        )
    return ApiAuthSettings(audience.lower(), tenant.lower(), _api_authority(env))


def _api_authority(env: Mapping[str, str]) -> str:
    name = "API_AUTHORITY"
    url = (_optional(env, name) or DEFAULT_API_AUTHORITY).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(name, f"{url!r} is not an http(s) URL")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise SettingsError(
            name, "must be scheme://host[:port] only, like https://login.microsoftonline.com"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise SettingsError(name, "http:// is allowed only for loopback addresses")
    return url


def _graph_base_url(env: Mapping[str, str]) -> tuple[str, bool]:
    name = "GRAPH_BASE_URL"
    url = (_optional(env, name) or DEFAULT_GRAPH_BASE_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(name, f"{url!r} is not an http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SettingsError(name, "must not carry a query, fragment or credentials")
    local = parts.scheme == "http"
    if local and not is_loopback(parts.hostname):
        raise SettingsError(name, "http:// is allowed only for loopback addresses")
    return url, local


def _event_grid_topic_endpoint(env: Mapping[str, str]) -> str | None:
    """The topic's endpoint as Azure shows it (`https://<topic>.<region>-1.eventgrid.azure.net
    /api/events`); a bare host gets `/api/events`. http:// only for loopback (a stand-in)."""
    name = "EVENT_GRID_TOPIC_ENDPOINT"
    url = _optional(env, name)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(name, f"{url[:200]!r} is not an http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SettingsError(name, "must not carry a query, fragment or credentials")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise SettingsError(name, "http:// is allowed only for loopback addresses")
    path = parts.path.rstrip("/") or EVENT_GRID_PATH
    if path.lower() != EVENT_GRID_PATH:
        raise SettingsError(
            name,
            f"must be the topic endpoint, ending in {EVENT_GRID_PATH} (e.g. "
            "https://<topic>.<region>-1.eventgrid.azure.net/api/events), not a path "
            f"{parts.path[:100]!r}",
        )
    return f"{parts.scheme}://{parts.netloc}{EVENT_GRID_PATH}"


def _duration(
    env: Mapping[str, str], name: str, default: str, *, zero_allowed: bool = False
) -> timedelta:
    text = _optional(env, name) or default
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise SettingsError(name, str(exc)) from None
    if value < timedelta(0) or (value == timedelta(0) and not zero_allowed):
        raise SettingsError(name, "must be longer than zero")
    return value


def _schedule(env: Mapping[str, str]) -> str:
    """Six-field NCRONTAB only. The Functions host also takes a TimeSpan (`00:05:00`), but
    the scale controller of the Consumption and Flex Consumption plans reads only CRON
    expressions (Microsoft's diagnostic event AZFD0015, docs/azure-facts.md): a TimeSpan
    fires, yet the plan cannot schedule the app for it. The app runs on Flex Consumption,
    so a TimeSpan is refused here, by name, before Azure half-accepts it."""
    name = "SWEEP_SCHEDULE"
    text = _optional(env, name) or "0 */5 * * * *"
    if _is_timespan(text):
        raise SettingsError(
            name,
            f"{text!r} is a TimeSpan; Flex Consumption takes only NCRONTAB schedules "
            "(six fields, seconds first: every 5 minutes is 0 */5 * * * *)",
        )
    fields = text.split()
    if len(fields) != 6 or not all(_CRON_FIELD.fullmatch(f) for f in fields):
        raise SettingsError(
            name,
            f"{text[:100]!r} is not a six-field NCRONTAB expression (seconds first, "
            "e.g. 0 */5 * * * *)",
        )
    return text


def _is_timespan(text: str) -> bool:
    try:
        parse_timespan(text)
    except ValueError:
        return False
    return True


def _usage_location(env: Mapping[str, str]) -> str | None:
    value = _optional(env, "DEFAULT_USAGE_LOCATION")
    if value is not None and value not in ISO_3166_ALPHA2:
        raise SettingsError(
            "DEFAULT_USAGE_LOCATION", "must be an upper-case ISO 3166-1 alpha-2 country code"
        )
    return value


def _boolean(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = _optional(env, name)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise SettingsError(name, f"{value!r} is not true or false")


def _default_licenses(env: Mapping[str, str]) -> tuple[LicenseRequest, ...] | None:
    value = _optional(env, "DEFAULT_LICENSES")
    if value is None:
        return None
    try:
        return parse_license_list(value)
    except ValueError as exc:
        raise SettingsError("DEFAULT_LICENSES", str(exc)) from None


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Cloud Sync job ids are not GUIDs: `AD2AADProvisioning.<32 hex>` (sometimes with one more
# dot-separated segment), as Microsoft's Cloud Sync docs show them; a GUID is accepted too.
_SYNC_JOB_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*\.[0-9a-fA-F]{32}(?:\.[A-Za-z0-9_-]+)?")


def _cloud_sync_job(env: Mapping[str, str]) -> CloudSyncJob | None:
    value = _optional(env, "CLOUD_SYNC_JOB")
    if value is None:
        return None
    principal, slash, job = value.partition("/")
    if not slash or not _GUID.fullmatch(principal):
        raise SettingsError(
            "CLOUD_SYNC_JOB",
            "must be <servicePrincipalId>/<jobId>: the service principal's object id (a GUID), "
            "a slash, and the Cloud Sync job id (e.g. AD2AADProvisioning.<32 hex digits>)",
        )
    if not (_SYNC_JOB_ID.fullmatch(job) or _GUID.fullmatch(job)):
        raise SettingsError(
            "CLOUD_SYNC_JOB",
            f"{job[:80]!r} is not a synchronization job id such as "
            "AD2AADProvisioning.fd1c9b9e8077402c8bc03a7186c8f976",
        )
    return CloudSyncJob(principal.lower(), job)


def _license_groups(env: Mapping[str, str], *, required: bool) -> Mapping[str, str]:
    """`skuPartNumber=groupObjectId` pairs, comma-separated."""
    name = "LICENSE_GROUPS"
    value = _optional(env, name)
    if value is None:
        if required:
            raise SettingsError(name, "is required with LICENSING_MODE=group")
        return {}
    groups: dict[str, str] = {}
    for pair in (p.strip() for p in value.split(",") if p.strip()):
        sku, equals, group = (part.strip() for part in pair.partition("="))
        if not equals or not _SKU_PART_NUMBER.fullmatch(sku) or not _GUID.fullmatch(group):
            raise SettingsError(name, f"{pair[:80]!r} is not skuPartNumber=groupObjectId (a GUID)")
        if sku.upper() in groups:
            raise SettingsError(name, f"names {sku} twice")
        groups[sku.upper()] = group.lower()
    if not groups:
        raise SettingsError(name, "lists no skuPartNumber=groupObjectId pair")
    return groups


_SKU_PART_NUMBER = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
