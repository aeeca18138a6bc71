"""HTTP triggers: route templates as the Functions host reads and matches them.

Pure (no sockets), so it is unit-tested directly. The host uses ASP.NET Core routing:
`routePrefix` (host.json `extensions.http.routePrefix`, default `api`, `""` for none)
before each function's `route` (default: the function's name); literal segments match
case-insensitively; `{name}` matches one non-empty segment, `{name?}` may be absent (at the
end), `{name=value}` has a default, `{*name}` takes the rest of the path; constraints
follow a colon (`{id:int}`, `{code:regex(^[a-z]+$)}`, `{n:range(1,9)}`...). When several
routes match, the most specific wins (literal, then constrained, then plain parameter,
then catch-all), as ASP.NET orders them. A template this module cannot read (an unknown
constraint, text and parameters in one segment) stops the development host at start, as
an unknown constraint stops the real host.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .config import DevHostError

DEFAULT_ROUTE_PREFIX = "api"
_PARAMETER = re.compile(r"\{(?P<star>\*{1,2})?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^{}]*)\}")
_CONSTRAINT = re.compile(r":(?P<name>[A-Za-z]+)(?:\((?P<argument>(?:[^()]|\([^()]*\))*)\))?")
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

Check = Callable[[str], bool]


def _integer(low: int, high: int) -> Check:
    def check(value: str) -> bool:
        return re.fullmatch(r"[+-]?[0-9]+", value) is not None and low <= int(value) <= high

    return check


def _number(value: str) -> bool:
    try:
        Decimal(value)
    except InvalidOperation:
        return False
    return value.strip() == value and value.lower() not in ("nan", "infinity", "-infinity")


def _guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _numbers(argument: str, count: tuple[int, ...], what: str) -> list[int]:
    parts = [part.strip() for part in argument.split(",")] if argument else []
    if len(parts) not in count or not all(re.fullmatch(r"-?[0-9]+", part) for part in parts):
        raise DevHostError(f"route constraint {what}({argument}) needs {count} integer(s)")
    return [int(part) for part in parts]


def _constraint(name: str, argument: str | None) -> Check:
    """One inline constraint; DevHostError for one ASP.NET does not know."""
    key, arg = name.lower(), argument or ""
    simple: dict[str, Check] = {
        "int": _integer(*_INT32),
        "long": _integer(*_INT64),
        "bool": lambda v: v.lower() in ("true", "false"),
        "guid": _guid,
        "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
        "decimal": _number,
        "double": _number,
        "float": _number,
    }
    if key in simple and argument is None:
        return simple[key]
    if key in ("minlength", "maxlength"):
        (limit,) = _numbers(arg, (1,), key)
        return (lambda v: len(v) >= limit) if key == "minlength" else (lambda v: len(v) <= limit)
    if key == "length":
        bounds = _numbers(arg, (1, 2), key)
        low, high = (bounds[0], bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
        return lambda v: low <= len(v) <= high
    if key in ("min", "max", "range"):
        bounds = _numbers(arg, (2,) if key == "range" else (1,), key)
        low = bounds[0] if key != "max" else _INT64[0]
        high = bounds[-1] if key != "min" else _INT64[1]
        return lambda v: _integer(*_INT64)(v) and low <= int(v) <= high
    if key == "regex" and argument:
        pattern = re.compile(argument, re.IGNORECASE)  # ASP.NET: IgnoreCase | CultureInvariant
        return lambda v: pattern.search(v) is not None
    raise DevHostError(f"unknown route constraint '{name}'")


@dataclass(frozen=True)
class Segment:
    """A literal, or a parameter with its constraints, optional flag, default, catch-all."""

    literal: str | None = None
    name: str = ""
    checks: tuple[Check, ...] = ()
    optional: bool = False
    default: str | None = None
    catch_all: bool = False

    @property
    def rank(self) -> int:
        """ASP.NET's precedence: lower is more specific."""
        if self.literal is not None:
            return 0
        if self.catch_all:
            return 3
        return 1 if self.checks else 2

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.checks)


def _parameter(text: str, where: str) -> Segment:
    match = _PARAMETER.fullmatch(text)
    if match is None:
        raise DevHostError(
            f"{where}: route segment '{text}' mixes text and parameters or is not a parameter "
            "(the development host supports whole-segment parameters only)"
        )
    rest, default, optional = match["rest"], None, False
    if "=" in rest:
        rest, default = rest.split("=", 1)
    elif rest.endswith("?"):
        rest, optional = rest[:-1], True
    checks = []
    position = 0
    while position < len(rest):
        found = _CONSTRAINT.match(rest, position)
        if found is None:
            raise DevHostError(f"{where}: cannot read the constraints of '{text}'")
        try:
            checks.append(_constraint(found["name"], found["argument"]))
        except DevHostError as error:
            raise DevHostError(f"{where}: {error}") from None
        position = found.end()
    return Segment(
        name=match["name"],
        checks=tuple(checks),
        optional=optional or match["star"] is not None,
        default=default,
        catch_all=match["star"] is not None,
    )


@dataclass(frozen=True)
class RouteTemplate:
    """A full route (prefix and function route) ready to match request paths."""

    text: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, prefix: str, route: str, where: str) -> RouteTemplate:
        text = "/".join(part for part in (prefix.strip("/"), route.strip("/")) if part)
        segments = []
        parts = [part for part in text.split("/") if part] if text else []
        for index, part in enumerate(parts):
            if "{" not in part and "}" not in part:
                segments.append(Segment(literal=part))
                continue
            segment = _parameter(part, where)
            last = index == len(parts) - 1
            if (segment.optional or segment.catch_all) and not last:
                raise DevHostError(f"{where}: '{part}' must be the last segment of the route")
            segments.append(segment)
        return cls(text, tuple(segments))

    @property
    def precedence(self) -> tuple[int, ...]:
        return tuple(segment.rank for segment in self.segments)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """Route values for the decoded path segments, or None when it does not match."""
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.catch_all:
                rest = "/".join(parts[index:])
                if rest and not segment.accepts(rest):
                    return None
                if rest or segment.default is not None:
                    values[segment.name] = rest or str(segment.default)
                return values
            if index >= len(parts):
                if segment.literal is None and (segment.optional or segment.default is not None):
                    if segment.default is not None:
                        values[segment.name] = segment.default
                    continue
                return None
            value = parts[index]
            if segment.literal is not None:
                if value.lower() != segment.literal.lower():
                    return None
            elif not value or not segment.accepts(value):
                return None
            else:
                values[segment.name] = value
        return values if len(parts) <= len(self.segments) else None


@dataclass(frozen=True)
class HttpTrigger:
    """An `httpTrigger` binding: its route, methods (None = any) and auth level."""

    template: RouteTemplate
    methods: tuple[str, ...] | None
    auth_level: str

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


def http_trigger(
    binding: Mapping[str, Any], function_name: str, prefix: str, where: str
) -> HttpTrigger:
    """Read one httpTrigger binding (route already resolved for `%SETTING%`)."""
    route = binding.get("route") or function_name
    methods = binding.get("methods")
    if methods is not None and not (
        isinstance(methods, list) and all(isinstance(m, str) for m in methods)
    ):
        raise DevHostError(f"{where}: methods must be a list of HTTP method names")
    return HttpTrigger(
        template=RouteTemplate.parse(prefix, str(route), where),
        methods=tuple(m.upper() for m in methods) if methods else None,
        auth_level=str(binding.get("authLevel") or "FUNCTION").upper(),
    )


def route_prefix(host_json: Mapping[str, Any]) -> str:
    """host.json `extensions.http.routePrefix` (default `api`; `""` for none)."""
    section = (host_json.get("extensions") or {}).get("http") or {}
    if not isinstance(section, Mapping):
        raise DevHostError("host.json extensions.http must be an object")
    prefix = section.get("routePrefix", DEFAULT_ROUTE_PREFIX)
    if not isinstance(prefix, str):
        raise DevHostError("host.json extensions.http.routePrefix must be a string")
    return prefix.strip("/")
