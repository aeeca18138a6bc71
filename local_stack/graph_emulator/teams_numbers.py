"""The tenant's telephone number inventory as Teams shows it: records, ids, filters, bodies.

Pure data and wire shapes; `teams.TeamsTenant` owns the inventory. Sources
(microsoft-graph-docs-contrib, api-reference/v1.0, pages dated 07/2025):

- `numberAssignment` properties and their nullability: the v1.0 CSDL
  (msgraph-metadata schemas/v1.0-Prod.csdl); "The recorded telephone number is
  always displayed with a '+' prefix, regardless of whether it was originally
  assigned with one." (resources/teamsadministration-numberassignment.md).
- Ids: the docs' ids are base64url, without padding, of `<guid>|<+number>`
  (e.g. `YmMyNjMy...` is `bc2632e3-...|+12023456789`); the emulator uses the
  tenant id as the guid. Default `operatorId`, `capabilities` and
  `supportedCustomerActions` by number type are the docs' examples (list page).
- `$filter`: "All fields from the number assignments can be filtered except
  `id` and `city`", examples `numberType eq 'DirectRouting'` (sic),
  `telephoneNumber eq '+12052582895'` and `assignmentStatus eq 'unassigned' and
  capabilities/any(c:c eq 'userAssignment')`; `$top` "Default number of results
  is 500 entries and maximum 1,000"; `$skip` (list-numberassignments page).
  The emulator takes `eq` clauses (a value or `null`) joined by `and`; enum
  values compare case-insensitively, as the docs' `'DirectRouting'` suggests;
  a lambda (`any`/`all`), `or`, `ne` and functions are refused with a 400.
- Telephone numbers: `Set-CsPhoneNumberAssignment` "Supports E.164 format like
  +12065551234 and non-E.164 format like 12065551234. The phone number can't
  have "tel:" prefixed." and Direct Routing numbers with `;ext=1234`
  (office-docs-powershell teams/teams-ps/MicrosoftTeams/Set-CsPhoneNumberAssignment.md);
  the Graph page's own example sends `"12061234567"`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from shared.domain.teams import (
    ActivationState,
    AssignmentCategory,
    AssignmentStatus,
    NumberType,
)

from .errors import DirectoryFormatError, GraphRefusal
from .odata import Token, tokenize

#: A number as assignNumber takes it: optional '+', 2 to 15 digits, optional ';ext=' digits.
NUMBER_RE = re.compile(r"^\+?([1-9][0-9]{1,14})(;ext=[0-9]{1,10})?$")
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

#: Operator ids of the docs' examples (Direct Routing and Calling Plan numbers); the Operator
#: Connect one is the emulator's own stand-in.
DEFAULT_OPERATORS = {
    NumberType.DIRECT_ROUTING: "7a205197-8e59-487d-b9fa-3fc1b108f1e5",
    NumberType.CALLING_PLAN: "0019adbc-b82a-47b4-a799-4e993a9982f1",
    NumberType.OPERATOR_CONNECT: "5e0a1c3b-2d4f-4b6a-8c9e-0f1a2b3c4d5e",
}
DEFAULT_CAPABILITIES = {
    NumberType.DIRECT_ROUTING: [
        "conferenceAssignment",
        "voiceApplicationAssignment",
        "userAssignment",
    ],
    NumberType.CALLING_PLAN: ["userAssignment"],
    NumberType.OPERATOR_CONNECT: ["userAssignment"],
}
CAPABILITIES = frozenset(
    {"conferenceAssignment", "voiceApplicationAssignment", "userAssignment", "teamsPhoneMobile"}
)
NUMBER_PROPERTIES: tuple[str, ...] = (
    "telephoneNumber",
    "operatorId",
    "numberType",
    "activationState",
    "capabilities",
    "locationId",
    "civicAddressId",
    "networkSiteId",
    "assignmentTargetId",
    "assignmentCategory",
    "portInStatus",
    "assignmentStatus",
    "isoCountryCode",
    "city",
    "numberSource",
    "supportedCustomerActions",
    "reverseNumberLookupOptions",
)
_NULLABLE_STRINGS = ("locationId", "civicAddressId", "networkSiteId", "isoCountryCode", "city")
_ENUMS: Mapping[str, frozenset[str]] = {
    "numberType": frozenset(NumberType),
    "activationState": frozenset(ActivationState),
    "assignmentStatus": frozenset(AssignmentStatus),
    "assignmentCategory": frozenset(AssignmentCategory),
    "numberSource": frozenset({"online", "onPremises", "unknownFutureValue"}),
    "portInStatus": frozenset({"completed", "firmOrderCommitmentAccepted", "unknownFutureValue"}),
}
FILTERABLE = {p.lower(): p for p in NUMBER_PROPERTIES if p != "city"}
DEFAULT_TOP = 500
MAX_TOP = 1000


def normalize(number: str) -> str | None:
    """The number as Teams records it ('+' prefixed), or None when it is not one."""
    match = NUMBER_RE.match(number)
    if match is None:
        return None
    return "+" + match.group(1) + (match.group(2) or "")


def number_id(tenant_id: str, number: str) -> str:
    """The numberAssignment id: base64url of `<tenant id>|<number>` without padding."""
    raw = f"{tenant_id}|{number}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def parse_number(spec: Any, resolve_target: Any) -> dict[str, Any]:
    """A `teams.numberAssignments` entry of the directory file, as a full Graph record.

    `resolve_target(key)` turns a user id or UPN into a user id (None: not a user).
    """
    if not isinstance(spec, Mapping):
        raise DirectoryFormatError("each teams.numberAssignments entry must be an object")
    unknown = set(spec) - set(NUMBER_PROPERTIES)
    if unknown:
        raise DirectoryFormatError(f"teams.numberAssignments: unknown keys {sorted(unknown)}")
    raw = spec.get("telephoneNumber")
    number = normalize(raw) if isinstance(raw, str) else None
    if number is None:
        raise DirectoryFormatError(f"teams.numberAssignments: bad telephoneNumber {raw!r}")
    what = f"teams number {number}"
    number_type = spec.get("numberType")
    if number_type not in {str(t) for t in DEFAULT_OPERATORS}:
        raise DirectoryFormatError(
            f"{what}: numberType must be directRouting, callingPlan or operatorConnect"
        )
    kind = NumberType(number_type)
    target = spec.get("assignmentTargetId")
    if target is not None:
        if not isinstance(target, str):
            raise DirectoryFormatError(f"{what}: assignmentTargetId must be a string")
        resolved = resolve_target(target)
        if resolved is None and not GUID_RE.match(target):
            raise DirectoryFormatError(f"{what}: assignmentTargetId {target!r} is no user or GUID")
        target = resolved or target.lower()
    record: dict[str, Any] = {
        "telephoneNumber": number,
        "operatorId": spec.get("operatorId", DEFAULT_OPERATORS[kind]),
        "numberType": str(kind),
        "activationState": spec.get("activationState", str(ActivationState.ACTIVATED)),
        "capabilities": list(spec.get("capabilities", DEFAULT_CAPABILITIES[kind])),
        "assignmentTargetId": target,
        "assignmentCategory": spec.get(
            "assignmentCategory", None if target is None else str(AssignmentCategory.PRIMARY)
        ),
        "portInStatus": spec.get("portInStatus"),
        "assignmentStatus": spec.get(
            "assignmentStatus",
            str(AssignmentStatus.UNASSIGNED if target is None else AssignmentStatus.USER_ASSIGNED),
        ),
        "numberSource": spec.get("numberSource", "online"),
        "supportedCustomerActions": list(spec.get("supportedCustomerActions", ["locationUpdate"])),
        "reverseNumberLookupOptions": list(spec.get("reverseNumberLookupOptions", [])),
        **{name: spec.get(name) for name in _NULLABLE_STRINGS},
    }
    _check_record(record, what)
    return record


def _check_record(record: Mapping[str, Any], what: str) -> None:
    for name, allowed in _ENUMS.items():
        value = record[name]
        nullable = name not in {"numberType", "activationState"}
        if not (value is None and nullable) and value not in allowed:
            raise DirectoryFormatError(f"{what}: {name} {value!r} is not one of {sorted(allowed)}")
    for name in (*_NULLABLE_STRINGS, "operatorId"):
        if record[name] is not None and not isinstance(record[name], str):
            raise DirectoryFormatError(f"{what}: {name} must be a string")
    if not isinstance(record["operatorId"], str):
        raise DirectoryFormatError(f"{what}: operatorId must be a string")
    if not set(record["capabilities"]) <= CAPABILITIES:
        raise DirectoryFormatError(f"{what}: capabilities are among {sorted(CAPABILITIES)}")
    if (record["assignmentTargetId"] is None) != (
        record["assignmentStatus"] == AssignmentStatus.UNASSIGNED
    ):
        raise DirectoryFormatError(
            f"{what}: an assigned number needs an assignmentTargetId, an unassigned one none"
        )


def new_direct_routing_number(number: str) -> dict[str, Any]:
    """The record Teams creates when a Direct Routing number unknown to it is assigned."""
    return parse_number(
        {"telephoneNumber": number, "numberType": str(NumberType.DIRECT_ROUTING)},
        lambda key: None,
    )


def to_graph(record: Mapping[str, Any], tenant_id: str) -> dict[str, Any]:
    """A record as Graph's numberAssignment, `id` first."""
    return {"id": number_id(tenant_id, record["telephoneNumber"]), **record}


def parse_filter(source: str) -> list[tuple[str, str | None]]:
    """`prop eq 'value'` (or `eq null`) clauses joined by `and`; anything else is a 400."""
    lowered = source.lower()
    if "/any(" in lowered or "/all(" in lowered:
        raise _unsupported("lambda operators (any/all)")
    tokens = tokenize(source)

    def at(i: int) -> Token:
        return tokens[min(i, len(tokens) - 1)]

    clauses: list[tuple[str, str | None]] = []
    index = 0
    while True:
        prop, operator, value = at(index), at(index + 1), at(index + 2)
        if prop.kind != "ident":
            raise _syntax(source, prop.pos)
        name = FILTERABLE.get(prop.text.lower())
        if name is None:
            raise GraphRefusal(
                400,
                "BadRequest",
                f"Invalid filter clause: Could not find a filterable property named '{prop.text}' "
                "on type 'microsoft.graph.teamsAdministration.numberAssignment'.",
            )
        if operator.kind != "ident" or operator.text != "eq":
            raise _unsupported(f"the operator '{operator.text}'")
        if value.kind == "string":
            literal: str | None = value.text
        elif value.kind == "ident" and value.text == "null":
            literal = None
        else:
            raise _syntax(source, value.pos)
        if name == "telephoneNumber" and literal is not None:
            literal = normalize(literal) or literal
        clauses.append((name, literal))
        following = at(index + 3)
        if following.kind == "end":
            return clauses
        if following.kind != "ident" or following.text != "and":
            raise _unsupported(f"'{following.text}' between clauses")
        index += 4


def matches(record: Mapping[str, Any], clauses: list[tuple[str, str | None]]) -> bool:
    """Whether a record satisfies every clause (enum values compared case-insensitively)."""
    for name, value in clauses:
        actual = record[name]
        if value is None or actual is None:
            if actual is not value:
                return False
        elif name in _ENUMS:
            if str(actual).lower() != value.lower():
                return False
        elif actual != value:
            return False
    return True


def page_bounds(top: str | None, skip: str | None) -> tuple[int, int]:
    """(skip, top) from `$skip` / `$top` (default 500, at most 1,000)."""
    size = DEFAULT_TOP if top is None else _bounded(top, "$top", 1, MAX_TOP)
    offset = 0 if skip is None else _bounded(skip, "$skip", 0, 10**9)
    return offset, size


def _bounded(raw: str, name: str, low: int, high: int) -> int:
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise GraphRefusal(
            400, "BadRequest", f"Invalid value '{raw}' for {name}: between {low} and {high}."
        )
    return int(raw)


def _syntax(source: str, position: int) -> GraphRefusal:
    return GraphRefusal(
        400,
        "BadRequest",
        f"Invalid filter clause: Syntax error at position {position} in '{source}'.",
    )


def _unsupported(what: str) -> GraphRefusal:
    return GraphRefusal(
        400,
        "BadRequest",
        f"The emulator's numberAssignments $filter does not support {what}: use eq clauses "
        "joined by and.",
    )
