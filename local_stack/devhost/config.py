"""Configuration the development host reads: settings, ``host.json`` and the bindings.

Everything here is pure (no storage, no event loop) so it can be unit-tested directly.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from local_stack.devhost.errors import DevHostError
from local_stack.devhost.ncrontab import Schedule, ScheduleError, parse_schedule
from local_stack.devhost.routes import DEFAULT_ROUTE_PREFIX, HttpTrigger, http_trigger, route_prefix
from shared.domain import times

__all__ = [
    "DEFAULT_CONNECTION",
    "DEFAULT_FUNCTION_TIMEOUT",
    "SUPPORTED_BINDINGS",
    "DevHostError",
    "FunctionSpec",
    "HostOptions",
    "HttpTrigger",
    "QueueTrigger",
    "QueuesOptions",
    "TimerTrigger",
    "apply_settings",
    "disabled_functions",
    "find_settings_file",
    "load_functions",
    "load_host_options",
    "load_settings",
    "parse_host_options",
    "parse_timespan",
    "resolve_connection_string",
    "resolve_setting_names",
]

SUPPORTED_BINDINGS = ("queueTrigger", "timerTrigger", "httpTrigger")
DEFAULT_CONNECTION = "AzureWebJobsStorage"
# Flex Consumption and dedicated plans default to 30 minutes (Consumption: 5 minutes).
DEFAULT_FUNCTION_TIMEOUT = timedelta(minutes=30)
MAX_BATCH_SIZE = 32
MIN_POLLING_INTERVAL = timedelta(milliseconds=100)

_SETTING_REF = re.compile(r"%([^%]+)%")
_QUEUE_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


# --------------------------------------------------------------------------- host.json


def parse_timespan(value: object, what: str) -> timedelta:
    """Parse a .NET TimeSpan string (``hh:mm:ss``, ``d.hh:mm:ss``, ``hh:mm:ss.fff``)."""
    if not isinstance(value, str):
        raise DevHostError(f"{what} must be a TimeSpan string like '00:00:30', got {value!r}")
    try:
        return times.parse_timespan(value)
    except ValueError as error:
        if "out of range" in str(error):
            raise DevHostError(f"{what}: {error}") from None
        raise DevHostError(
            f"{what} must be a TimeSpan like '00:00:30' (hh:mm:ss), got {value!r}"
        ) from None


@dataclass(frozen=True)
class QueuesOptions:
    """``extensions.queues`` in host.json, with the host's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = timedelta(minutes=1)
    message_encoding: Literal["base64", "none"] = "base64"

    @property
    def max_concurrency(self) -> int:
        """Parallel invocations per queue: batchSize + newBatchThreshold."""
        return self.batch_size + self.new_batch_threshold


@dataclass(frozen=True)
class HostOptions:
    """What the development host uses from host.json."""

    queues: QueuesOptions = QueuesOptions()
    function_timeout: timedelta | None = DEFAULT_FUNCTION_TIMEOUT
    http_route_prefix: str = DEFAULT_ROUTE_PREFIX


def _int_option(section: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DevHostError(f"host.json extensions.queues.{key} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise DevHostError(
            f"host.json extensions.queues.{key} must be between {low} and {high}, got {value}"
        )
    return value


def parse_host_options(host_json: Mapping[str, Any]) -> HostOptions:
    """Read the queue options and functionTimeout from a parsed host.json."""
    extensions = host_json.get("extensions") or {}
    section = extensions.get("queues") or {}
    if not isinstance(section, Mapping):
        raise DevHostError("host.json extensions.queues must be an object")
    batch_size = _int_option(section, "batchSize", 16, 1, MAX_BATCH_SIZE)
    new_batch_threshold = _int_option(section, "newBatchThreshold", batch_size // 2, 0, 10_000)
    max_dequeue_count = _int_option(section, "maxDequeueCount", 5, 1, 10_000)
    visibility_timeout = parse_timespan(
        section.get("visibilityTimeout", "00:00:00"),
        "host.json extensions.queues.visibilityTimeout",
    )
    if visibility_timeout < timedelta(0) or visibility_timeout > timedelta(days=7):
        raise DevHostError("host.json extensions.queues.visibilityTimeout must be 0 to 7 days")
    max_polling_interval = parse_timespan(
        section.get("maxPollingInterval", "00:01:00"),
        "host.json extensions.queues.maxPollingInterval",
    )
    if max_polling_interval < MIN_POLLING_INTERVAL:
        raise DevHostError(
            "host.json extensions.queues.maxPollingInterval must be at least 00:00:00.1"
        )
    encoding = section.get("messageEncoding", "base64")
    if not isinstance(encoding, str) or encoding.lower() not in ("base64", "none"):
        raise DevHostError(
            f"host.json extensions.queues.messageEncoding must be 'base64' or 'none', "
            f"got {encoding!r}"
        )
    message_encoding: Literal["base64", "none"] = "none" if encoding.lower() == "none" else "base64"

    function_timeout: timedelta | None = DEFAULT_FUNCTION_TIMEOUT
    raw_timeout = host_json.get("functionTimeout")
    if raw_timeout in (-1, "-1"):
        function_timeout = None
    elif raw_timeout is not None:
        parsed = parse_timespan(raw_timeout, "host.json functionTimeout")
        if parsed <= timedelta(0):
            raise DevHostError("host.json functionTimeout must be positive or '-1' (unbounded)")
        else:
            function_timeout = parsed
    return HostOptions(
        queues=QueuesOptions(
            batch_size=batch_size,
            new_batch_threshold=new_batch_threshold,
            max_dequeue_count=max_dequeue_count,
            visibility_timeout=visibility_timeout,
            max_polling_interval=max_polling_interval,
            message_encoding=message_encoding,
        ),
        function_timeout=function_timeout,
        http_route_prefix=route_prefix(host_json),
    )


def _read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object; DevHostError naming the file otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DevHostError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise DevHostError(f"{path} must contain a JSON object")
    return data


HOST_OVERRIDE_PREFIX = "AzureFunctionsJobHost__"


def load_host_options(app_dir: Path, environ: Mapping[str, str] | None = None) -> HostOptions:
    """Read ``app_dir/host.json`` (defaults if the file is missing), with the app-setting
    overrides the real host applies (``AzureFunctionsJobHost__extensions__queues__batchSize``
    replaces ``extensions.queues.batchSize``)."""
    path = app_dir / "host.json"
    data = _read_json_object(path) if path.exists() else {}
    return parse_host_options(
        apply_host_overrides(data, os.environ if environ is None else environ)
    )


def apply_host_overrides(
    host_json: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[str, Any]:
    """host.json with every ``AzureFunctionsJobHost__a__b`` setting applied (names matched
    case-insensitively, as the host does; digits become numbers, true/false booleans)."""
    result: dict[str, Any] = json.loads(json.dumps(host_json))
    for name, raw in sorted(environ.items()):
        if not name.startswith(HOST_OVERRIDE_PREFIX):
            continue
        path = [part for part in name[len(HOST_OVERRIDE_PREFIX) :].split("__") if part]
        if not path:
            continue
        node = result
        for part in path[:-1]:
            key = next((k for k in node if k.lower() == part.lower()), part)
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        leaf = next((k for k in node if k.lower() == path[-1].lower()), path[-1])
        node[leaf] = _override_value(raw)
    return result


def _override_value(raw: str) -> Any:
    if raw.isdigit():
        return int(raw)
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw


# --------------------------------------------------------------------------- settings


def disabled_functions(names: list[str], environ: Mapping[str, str]) -> set[str]:
    """The functions the app setting ``AzureWebJobs.<name>.Disabled`` (``true`` or ``1``)
    switches off: the host indexes them but never triggers them
    (learn.microsoft.com/azure/azure-functions/disable-function)."""
    return {
        name
        for name in names
        if environ.get(f"AzureWebJobs.{name}.Disabled", "").strip().lower() in ("true", "1")
    }


def find_settings_file(app_dir: Path, settings_path: Path | None = None) -> Path | None:
    """``settings_path`` if given, else local.settings.json, else local.settings.sample.json."""
    if settings_path is not None:
        if not settings_path.exists():
            raise DevHostError(f"settings file {settings_path} does not exist")
        return settings_path
    for name in ("local.settings.json", "local.settings.sample.json"):
        candidate = app_dir / name
        if candidate.exists():
            return candidate
    return None


def load_settings(path: Path) -> dict[str, str]:
    """The ``Values`` of a local.settings.json file (all values must be strings)."""
    data = _read_json_object(path)
    if data.get("IsEncrypted"):
        raise DevHostError(f"{path} is encrypted (IsEncrypted: true); decrypt it first")
    values = data.get("Values") or {}
    if not isinstance(values, dict):
        raise DevHostError(f"{path}: Values must be an object")
    result: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(value, str):
            raise DevHostError(f"{path}: Values.{key} must be a string, got {value!r}")
        result[key] = value
    return result


def apply_settings(values: Mapping[str, str], environ: MutableMapping[str, str]) -> list[str]:
    """Put ``values`` into ``environ`` unless already set there; return the skipped names.

    Like Core Tools, a variable already present in the real environment wins over the
    settings file, so tests and scripts can override single settings.
    """
    skipped: list[str] = []
    for key, value in values.items():
        if key in environ:
            skipped.append(key)
        else:
            environ[key] = value
    return skipped


def resolve_setting_names(value: str, environ: Mapping[str, str], where: str) -> str:
    """Replace every ``%NAME%`` in a binding value by the app setting NAME."""

    def _replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise DevHostError(
                f"{where}: '%{name}%' does not resolve: app setting {name} is not set"
            )
        return environ[name]

    return _SETTING_REF.sub(_replace, value)


def resolve_connection_string(connection: str, environ: Mapping[str, str], where: str) -> str:
    """The storage connection string named by a binding's ``connection``.

    Looks up ``connection`` then ``AzureWebJobs<connection>`` like the host. A value of
    ``UseDevelopmentStorage=true`` is understood by the storage SDK (Azurite's default
    endpoints, queue at 127.0.0.1:10001). Identity-based connections
    (``<connection>__queueServiceUri`` ...) are not supported.
    """
    name = connection or DEFAULT_CONNECTION
    for candidate in (name, f"AzureWebJobs{name}"):
        value = environ.get(candidate, "")
        if value.strip():
            return value
    identity_keys = [key for key in environ if key.startswith(f"{name}__")]
    if identity_keys:
        raise DevHostError(
            f"{where}: connection '{name}' is identity-based ({', '.join(sorted(identity_keys))}); "
            f"the development host supports connection strings only: set {name} to a "
            "connection string (e.g. Azurite's)"
        )
    raise DevHostError(
        f"{where}: connection '{name}' is not set: put a storage connection string in the "
        f"app setting {name} (e.g. UseDevelopmentStorage=true or Azurite's connection string)"
    )


# --------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class QueueTrigger:
    queue_name: str
    connection: str
    connection_string: str


@dataclass(frozen=True)
class TimerTrigger:
    schedule: Schedule
    run_on_startup: bool
    use_monitor: bool


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the app, with its trigger resolved against the settings."""

    name: str
    func: Callable[..., Any]
    arg_name: str
    trigger: QueueTrigger | TimerTrigger | HttpTrigger
    context_arg: str | None = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)


def _import_function_app(app_dir: Path) -> Any:
    script = app_dir / "function_app.py"
    if not script.exists():
        raise DevHostError(f"{script} does not exist")
    app_path = str(app_dir.resolve())
    if app_path not in sys.path:
        sys.path.insert(0, app_path)
    loaded = sys.modules.get("function_app")
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() != (
        script.resolve()
    ):
        del sys.modules["function_app"]
    try:
        return importlib.import_module("function_app")
    except Exception as error:
        raise DevHostError(f"{script} failed to import: {type(error).__name__}: {error}") from error


def _find_app(module: Any) -> Any:
    import azure.functions as func

    apps = {id(v): v for v in vars(module).values() if isinstance(v, func.FunctionRegister)}
    if not apps:
        raise DevHostError(f"{module.__file__} defines no azure.functions.FunctionApp instance")
    if len(apps) > 1:
        raise DevHostError(f"{module.__file__} defines more than one FunctionApp instance")
    return next(iter(apps.values()))


def _without_http_return(bindings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bindings minus the `$return` HTTP response of an HTTP trigger (the only output
    binding supported: the function's return value is the response)."""
    has_trigger = any(b.get("type") == "httpTrigger" for b in bindings)
    kept = []
    for binding in bindings:
        if binding.get("type") == "http" and binding.get("name") == "$return" and has_trigger:
            continue
        kept.append(binding)
    return kept


def _spec_for(
    function: Any, environ: Mapping[str, str], prefix: str = DEFAULT_ROUTE_PREFIX
) -> FunctionSpec:
    name: str = function.get_function_name()
    definition = json.loads(function.get_function_json())
    bindings = _without_http_return(definition.get("bindings", []))
    for binding in bindings:
        if binding.get("type") not in SUPPORTED_BINDINGS:
            raise DevHostError(
                f"function '{name}': binding '{binding.get('name')}' of type "
                f"'{binding.get('type')}' ({binding.get('direction', '?')}) is not supported "
                f"by the development host (supported: {', '.join(SUPPORTED_BINDINGS)})"
            )
    if len(bindings) != 1:
        raise DevHostError(f"function '{name}' must have exactly one trigger binding")
    if definition.get("retry"):
        raise DevHostError(f"function '{name}': retry policies are not supported")
    binding = bindings[0]
    where = f"function '{name}'"
    trigger: QueueTrigger | TimerTrigger | HttpTrigger
    if binding["type"] == "httpTrigger":
        route = resolve_setting_names(str(binding.get("route") or name), environ, where)
        trigger = http_trigger({**binding, "route": route}, name, prefix, where)
    elif binding["type"] == "queueTrigger":
        queue_name = resolve_setting_names(str(binding.get("queueName", "")), environ, where)
        queue_name = queue_name.lower()
        if not _QUEUE_NAME.match(queue_name):
            raise DevHostError(f"{where}: '{queue_name}' is not a valid queue name")
        connection = resolve_setting_names(str(binding.get("connection") or ""), environ, where)
        trigger = QueueTrigger(
            queue_name=queue_name,
            connection=connection or DEFAULT_CONNECTION,
            connection_string=resolve_connection_string(connection, environ, where),
        )
    else:
        text = resolve_setting_names(str(binding.get("schedule", "")), environ, where)
        try:
            schedule = parse_schedule(text)
        except ScheduleError as error:
            raise DevHostError(f"{where}: invalid timer schedule: {error}") from error
        trigger = TimerTrigger(
            schedule=schedule,
            run_on_startup=bool(binding.get("runOnStartup", False)),
            use_monitor=bool(binding.get("useMonitor", True)),
        )
    user_function = function.get_user_function()
    arg_name: str = binding["name"]
    context_arg: str | None = None
    for parameter in inspect.signature(user_function).parameters:
        if parameter == arg_name:
            continue
        if parameter == "context":
            context_arg = parameter
            continue
        raise DevHostError(
            f"{where}: parameter '{parameter}' is not bound (only the trigger '{arg_name}' "
            "and 'context' are)"
        )
    return FunctionSpec(name, user_function, arg_name, trigger, context_arg)


def load_functions(
    app_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    route_prefix: str = DEFAULT_ROUTE_PREFIX,
) -> list[FunctionSpec]:
    """Import ``app_dir/function_app.py`` and describe its functions (HTTP routes under
    ``route_prefix``, host.json's ``extensions.http.routePrefix``).

    Raises :class:`DevHostError` naming the function and binding for anything the
    development host cannot run. ``app.get_functions()`` is called once (the library
    refuses a second call on the same app).
    """
    env = os.environ if environ is None else environ
    module = _import_function_app(app_dir)
    app = _find_app(module)
    specs = [_spec_for(function, env, route_prefix) for function in app.get_functions()]
    if not specs:
        raise DevHostError(f"{app_dir / 'function_app.py'} declares no functions")
    return specs
