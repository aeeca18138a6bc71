"""The request's `teams` field (contract v1.2, "Teams Phone"): the phone number to assign
once the licenses are on, validated field by field (errors `teams`, `teams.phoneNumber`,
`teams.numberType`, `teams.locationId`, `teams.<unknown>`). Standard library only.

Whether a deployment accepts the field at all (`TEAMS_PHONE`) is admission's business
(`shared.decisions.admission`), not this module's: a parked request keeps its `teams`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from shared.domain.errors import FieldError
from shared.domain.teams import ASSIGNABLE_NUMBER_TYPES, NumberType

# E.164: a '+', then the country code's first digit (never 0), at most 15 digits in all
# (ITU-T E.164; Graph records every number with the '+': docs/teams-phone.md, "Numbers").
PHONE_NUMBER: Final = re.compile(r"\+[1-9][0-9]{1,14}")
# Teams emergency location ids are GUIDs (Get-CsOnlineLisLocation's LocationId); any id of
# letters, digits, '.', '_' and '-' up to 64 characters is taken (it travels only in
# assignNumber's JSON body, never in a URL or a filter).
LOCATION_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
TEAMS_FIELDS: Final = ("phoneNumber", "numberType", "locationId")
NUMBER_TYPES: Final = tuple(sorted(str(t) for t in ASSIGNABLE_NUMBER_TYPES))


@dataclass(frozen=True)
class TeamsRequest:
    """The number to assign: `phone_number` in E.164 with its '+', its type, and an
    optional emergency location."""

    phone_number: str
    number_type: NumberType
    location_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "phoneNumber": self.phone_number,
            "numberType": str(self.number_type),
        }
        if self.location_id is not None:
            out["locationId"] = self.location_id
        return out


def parse_teams(document: Mapping[str, Any], errors: list[FieldError]) -> TeamsRequest | None:
    """`teams` of a request document, or None (absent, or invalid: `errors` says why)."""
    if "teams" not in document:
        return None
    value = document["teams"]
    if not isinstance(value, Mapping):
        errors.append(FieldError("teams", "must be an object with phoneNumber and numberType"))
        return None
    found = len(errors)
    for name in sorted(set(value) - set(TEAMS_FIELDS)):
        errors.append(FieldError(f"teams.{str(name)[:200]}", "unknown field"))
    number = _text(value, "phoneNumber", errors, required=True)
    if number is not None and not PHONE_NUMBER.fullmatch(number):
        errors.append(
            FieldError("teams.phoneNumber", "must be an E.164 number: '+' then 2 to 15 digits")
        )
    kind = _text(value, "numberType", errors, required=True)
    if kind is not None and kind not in NUMBER_TYPES:
        errors.append(FieldError("teams.numberType", f"must be one of {', '.join(NUMBER_TYPES)}"))
    location = _text(value, "locationId", errors)
    if location is not None and not LOCATION_ID.fullmatch(location):
        errors.append(
            FieldError("teams.locationId", "must be 1 to 64 letters, digits or . _ - (a GUID)")
        )
    if len(errors) > found or number is None or kind is None:
        return None
    return TeamsRequest(number, NumberType(kind), location)


def _text(
    value: Mapping[str, Any], name: str, errors: list[FieldError], *, required: bool = False
) -> str | None:
    if name not in value:
        if required:
            errors.append(FieldError(f"teams.{name}", "is required"))
        return None
    text = value[name]
    if not isinstance(text, str):
        errors.append(FieldError(f"teams.{name}", "must be a string"))
        return None
    return text
