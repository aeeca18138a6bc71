"""Onboarding requests (`user-onboard` messages): the request itself, and its validation
field by field, exactly as the contract says (docs/contract.md, "Onboarding request").
Pure standard library.

`parse_request` turns a message body (decoded by `shared.domain.decoding`) into an
`OnboardingRequest` or raises `InvalidRequest` listing every field-level problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from shared.domain.countries import ISO_3166_ALPHA2
from shared.domain.decoding import decode_body
from shared.domain.errors import FieldError, InvalidRequest
from shared.domain.identifiers import (
    EMPLOYEE_ID,
    PLAN_NAME,
    REQUEST_ID,
    SKU_PART,
    dn_problem,
    upn_problem,
)
from shared.domain.phone import TeamsRequest, parse_teams
from shared.domain.times import format_time, parse_time

MAX_LICENSES: Final = 10
MAX_DISABLED_PLANS: Final = 50
_KNOWN_FIELDS: Final = frozenset(
    {
        "requestId",
        "userPrincipalName",
        "employeeId",
        "onPremisesImmutableId",
        "usageLocation",
        "licenses",
        "syncDeadline",
        "onPremisesDistinguishedName",
        "startDate",
        "teams",
    }
)
_IDENTIFIERS: Final = ("userPrincipalName", "employeeId", "onPremisesImmutableId")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class LicenseRequest:
    """One SKU to assign, by `skuPartNumber`, with service plans to leave disabled."""

    sku_part_number: str
    disabled_plans: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"skuPartNumber": self.sku_part_number}
        if self.disabled_plans:
            out["disabledPlans"] = list(self.disabled_plans)
        return out


@dataclass(frozen=True)
class UserIdentifiers:
    """The ways a request names its user, tried in this order: UPN, employeeId, immutableId."""

    user_principal_name: str | None = None
    employee_id: str | None = None
    immutable_id: str | None = None


@dataclass(frozen=True)
class OnboardingRequest:
    """A valid `user-onboard` message. `licenses` is None when the message had none."""

    request_id: str
    identifiers: UserIdentifiers
    usage_location: str | None = None
    licenses: tuple[LicenseRequest, ...] | None = None
    sync_deadline: datetime | None = None
    # Only ever sent in the JSON body of a forced sync (provisionOnDemand), never in a URL.
    distinguished_name: str | None = None
    start_date: datetime | None = None  # the new hire's first day (a date is 00:00 UTC)
    teams: TeamsRequest | None = None  # (v1.2) the Teams Phone step: a number to assign

    def to_json(self) -> dict[str, Any]:
        """The request in contract form; `parse_request` reads it back unchanged."""
        out: dict[str, Any] = {"requestId": self.request_id}
        ids = self.identifiers
        if ids.user_principal_name is not None:
            out["userPrincipalName"] = ids.user_principal_name
        if ids.employee_id is not None:
            out["employeeId"] = ids.employee_id
        if ids.immutable_id is not None:
            out["onPremisesImmutableId"] = ids.immutable_id
        if self.usage_location is not None:
            out["usageLocation"] = self.usage_location
        if self.licenses is not None:
            out["licenses"] = [lic.to_json() for lic in self.licenses]
        if self.sync_deadline is not None:
            out["syncDeadline"] = format_time(self.sync_deadline)
        if self.distinguished_name is not None:
            out["onPremisesDistinguishedName"] = self.distinguished_name
        if self.start_date is not None:
            out["startDate"] = format_time(self.start_date)
        if self.teams is not None:
            out["teams"] = self.teams.to_json()
        return out


def request_id_of(document: Any) -> str | None:
    """The requestId of a decoded message when it is present and valid, else None."""
    if isinstance(document, Mapping):
        value = document.get("requestId")
        if isinstance(value, str) and REQUEST_ID.fullmatch(value):
            return value
    return None


def request_id_in(content: str) -> str | None:
    """The requestId of a request message, or of the request inside a pending state."""
    try:
        document = decode_body(content)
    except InvalidRequest:
        return None
    inner = document.get("request") if isinstance(document, dict) else None
    return request_id_of(document) or request_id_of(inner)


def upn_in(content: str) -> str | None:
    """The userPrincipalName of a valid request message, for the events about it."""
    try:
        return parse_request(content).identifiers.user_principal_name
    except Exception:  # a poisoned message may hold anything
        return None


def parse_request(body: bytes | str) -> OnboardingRequest:
    """Validate a `user-onboard` message body; InvalidRequest lists every problem found."""
    document = decode_body(body)
    try:
        return validate_request(document)
    except InvalidRequest as exc:
        raise InvalidRequest(exc.errors, request_id=request_id_of(document)) from None


def validate_request(document: Any) -> OnboardingRequest:
    """Validate an already decoded request document."""
    if not isinstance(document, Mapping):
        raise InvalidRequest([FieldError("", "message must be a JSON object")])
    errors = [
        FieldError(str(name)[:200], "unknown field")
        for name in sorted(set(document) - _KNOWN_FIELDS)
    ]
    request_id = _string(document, "requestId", errors, required=True)
    if request_id is not None and not REQUEST_ID.fullmatch(request_id):
        errors.append(FieldError("requestId", "must be 1 to 128 letters, digits or . _ - : /"))
    identifiers = _identifiers(document, errors)
    usage_location = _checked(document, "usageLocation", _usage_location_problem, errors)
    licenses = _licenses(document, errors)
    deadline = _moment(document, "syncDeadline", parse_time, errors)
    start = _moment(document, "startDate", parse_start_date, errors)
    dn = _checked(document, "onPremisesDistinguishedName", dn_problem, errors)
    teams = parse_teams(document, errors)
    if errors:
        raise InvalidRequest(errors)
    assert request_id is not None
    return OnboardingRequest(
        request_id=request_id,
        identifiers=identifiers,
        usage_location=usage_location,
        licenses=licenses,
        sync_deadline=deadline,
        distinguished_name=dn,
        start_date=start,
        teams=teams,
    )


def _identifiers(document: Mapping[str, Any], errors: list[FieldError]) -> UserIdentifiers:
    upn = _checked(document, "userPrincipalName", upn_problem, errors)
    employee_id = _checked(document, "employeeId", _employee_id_problem, errors)
    immutable_id = _checked(document, "onPremisesImmutableId", _immutable_id_problem, errors)
    if not any(name in document for name in _IDENTIFIERS):
        errors.append(
            FieldError(
                "userPrincipalName",
                "at least one of userPrincipalName, employeeId, onPremisesImmutableId is required",
            )
        )
    return UserIdentifiers(upn, employee_id, immutable_id)


def _employee_id_problem(value: str) -> str | None:
    return None if EMPLOYEE_ID.fullmatch(value) else "must be 1 to 16 letters, digits or . _ -"


def _immutable_id_problem(value: str) -> str | None:
    if 1 <= len(value) <= 256 and all(" " <= ch <= "~" for ch in value):
        return None
    return "must be 1 to 256 printable ASCII characters"


def _usage_location_problem(value: str) -> str | None:
    if value in ISO_3166_ALPHA2:
        return None
    return "must be an upper-case ISO 3166-1 alpha-2 country code"


_MOMENT_PROBLEMS: Final = {
    "syncDeadline": "must be an RFC 3339 timestamp with offset",
    "startDate": "must be a date (YYYY-MM-DD) or an RFC 3339 timestamp with offset",
}


def _moment(
    document: Mapping[str, Any],
    name: str,
    parse: Callable[[str], datetime],
    errors: list[FieldError],
) -> datetime | None:
    text = _string(document, name, errors)
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError:
        errors.append(FieldError(name, _MOMENT_PROBLEMS[name]))
        return None


def _checked(
    document: Mapping[str, Any],
    name: str,
    problem_of: Callable[[str], str | None],
    errors: list[FieldError],
) -> str | None:
    """A string field and its own rule: the value, with its problem (if any) recorded."""
    value = _string(document, name, errors)
    if value is not None:
        problem = problem_of(value)
        if problem:
            errors.append(FieldError(name, problem))
    return value


def parse_start_date(text: str) -> datetime:
    """`startDate`: a date (its 00:00 UTC) or an RFC 3339 timestamp; ValueError otherwise."""
    if _DATE.fullmatch(text):
        return datetime.fromisoformat(text + "T00:00:00+00:00")
    return parse_time(text)


def _string(
    document: Mapping[str, Any], name: str, errors: list[FieldError], *, required: bool = False
) -> str | None:
    if name not in document:
        if required:
            errors.append(FieldError(name, "is required"))
        return None
    value = document[name]
    if not isinstance(value, str):
        errors.append(FieldError(name, "must be a string"))
        return None
    return value


def _licenses(
    document: Mapping[str, Any], errors: list[FieldError]
) -> tuple[LicenseRequest, ...] | None:
    if "licenses" not in document:
        return None
    value = document["licenses"]
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_LICENSES:
        errors.append(FieldError("licenses", f"must be a list of 1 to {MAX_LICENSES} entries"))
        return None
    out: list[LicenseRequest] = []
    seen: set[str] = set()
    for index, entry in enumerate(value):
        license_request = _license(entry, f"licenses[{index}]", seen, errors)
        if license_request is not None:
            out.append(license_request)
    return tuple(out)


def _license(
    entry: Any, where: str, seen: set[str], errors: list[FieldError]
) -> LicenseRequest | None:
    if not isinstance(entry, Mapping):
        errors.append(FieldError(where, "must be an object"))
        return None
    for name in sorted(set(entry) - {"skuPartNumber", "disabledPlans"}):
        errors.append(FieldError(f"{where}.{str(name)[:200]}", "unknown field"))
    sku = entry.get("skuPartNumber")
    if not isinstance(sku, str) or not SKU_PART.fullmatch(sku):
        errors.append(FieldError(f"{where}.skuPartNumber", "must be a skuPartNumber such as MCOEV"))
        return None
    if sku.upper() in seen:
        errors.append(FieldError(f"{where}.skuPartNumber", "is listed twice"))
    seen.add(sku.upper())
    plans = entry.get("disabledPlans", [])
    if not isinstance(plans, list) or len(plans) > MAX_DISABLED_PLANS:
        errors.append(
            FieldError(
                f"{where}.disabledPlans",
                f"must be a list of at most {MAX_DISABLED_PLANS} servicePlanName values",
            )
        )
        return None
    if any(not isinstance(p, str) or not PLAN_NAME.fullmatch(p) for p in plans):
        errors.append(FieldError(f"{where}.disabledPlans", "each entry must be a servicePlanName"))
        return None
    return LicenseRequest(sku, tuple(dict.fromkeys(plans)))


def parse_license_list(text: str) -> tuple[LicenseRequest, ...]:
    """The `DEFAULT_LICENSES` setting: comma-separated skuPartNumbers; ValueError if bad."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not 1 <= len(names) <= MAX_LICENSES:
        raise ValueError(f"must list 1 to {MAX_LICENSES} skuPartNumbers separated by commas")
    for name in names:
        if not SKU_PART.fullmatch(name):
            raise ValueError(f"{name!r} is not a skuPartNumber")
    if len({n.upper() for n in names}) != len(names):
        raise ValueError("lists a skuPartNumber twice")
    return tuple(LicenseRequest(name) for name in names)
