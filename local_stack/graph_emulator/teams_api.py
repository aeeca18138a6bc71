"""Graph's Teams admin routes: user configurations, number assignments, assignment orders.

`GraphService` routes `/admin/teams/...` here (`route`) and runs each call
through its usual pipeline (auth, faults, permissions, throttling against
Teams' own budget, the log). Handlers take the request's headers, body,
decoded path segments and query, and return (status, body, headers). Shapes:
the v1.0 CSDL and the API pages (sources in `teams`, `teams_numbers` and
`docs/teams-phone.md`):

- `GET /admin/teams/userConfigurations/{userId}` (`$select`): the user's
  teamsUserConfiguration, or 404 `NotFound` while Teams does not know the user
  (code and message are the emulator's choice: no capture is published);
- `GET /admin/teams/telephoneNumberManagement/numberAssignments` (`$filter`,
  `$top`, `$skip`) and `.../numberAssignments/{id}`;
- `POST .../numberAssignments/assignNumber` (also spelt
  `microsoft.graph.teamsAdministration.assignNumber`, as msgraph-sdk sends it):
  body errors are a 400 at once, otherwise 202 with `Location:
  {base}/admin/teams/telephoneNumberManagement/operations('{id}')`, the form of
  the assignNumber page's example;
- `GET .../operations/{id}` and `.../operations('{id}')`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from shared.domain.teams import (
    ASSIGNABLE_NUMBER_TYPES,
    INCLUDE_UNKNOWN_ENUM_MEMBERS,
    AssignmentCategory,
    NumberType,
)

from . import teams_numbers
from .clock import Clock
from .directory import Directory
from .errors import GraphRefusal, bad_request, selected_properties

Answer = tuple[int, Any, dict[str, str]]
Handler = Callable[[Mapping[str, str], Any, list[str], dict[str, str]], Answer]

CONFIG_PROPERTIES = (
    "id",
    "userPrincipalName",
    "tenantId",
    "accountType",
    "featureTypes",
    "isEnterpriseVoiceEnabled",
    "telephoneNumbers",
    "effectivePolicyAssignments",
    "createdDateTime",
    "modifiedDateTime",
)
ASSIGN_PARAMETERS = frozenset(
    {"telephoneNumber", "assignmentTargetId", "numberType", "assignmentCategory", "locationId"}
)
ASSIGN_ACTIONS = frozenset({"assignNumber", "teamsAdministration.assignNumber"})
NUMBERS_PATH = ["admin", "teams", "telephoneNumberManagement", "numberAssignments"]
OPERATIONS_PATH = ["admin", "teams", "telephoneNumberManagement", "operations"]


class TeamsApi:
    """The Teams admin handlers over a `Directory` (which holds `TeamsTenant`)."""

    def __init__(self, directory: Directory, clock: Clock, base_url: Callable[[], str]) -> None:
        self.directory = directory
        self.clock = clock
        self.base_url = base_url

    def route(self, segments: list[str]) -> dict[str, tuple[Handler, str]] | None:
        """Method -> (handler, permissions route name) for a path under /admin/teams, or None."""
        if len(segments) == 4 and segments[:3] == ["admin", "teams", "userConfigurations"]:
            return {"GET": (self.get_configuration, "teams.userConfigurations.get")}
        if segments == NUMBERS_PATH:
            return {"GET": (self.list_numbers, "teams.numberAssignments.list")}
        if len(segments) == 5 and segments[:4] == NUMBERS_PATH:
            if segments[4] in ASSIGN_ACTIONS:
                return {"POST": (self.assign_number, "teams.numberAssignments.assignNumber")}
            return {"GET": (self.get_number, "teams.numberAssignments.get")}
        if len(segments) == 5 and segments[:4] == OPERATIONS_PATH:
            return {"GET": (self.get_operation, "teams.operations.get")}
        return None

    def _context(self, fragment: str) -> str:
        return f"{self.base_url()}/$metadata#{fragment}"

    # ---------------------------------------------------------- configurations

    def get_configuration(
        self, headers: Mapping[str, str], body: Any, segments: list[str], query: dict[str, str]
    ) -> Answer:
        """The user's Teams configuration, by Entra object id only (the page's key)."""
        _only(query, {"$select"})
        selected = None
        if "$select" in query:
            selected = selected_properties(
                query["$select"], CONFIG_PROPERTIES, "teamsAdministration.teamsUserConfiguration"
            )
        key = segments[3]
        prefer = {p.strip().lower() for p in headers.get("prefer", "").split(",")}
        with self.directory.observed():
            teams = self.directory.teams
            teams.advance(self.clock.now(), self.directory.teams_facts)
            facts = self.directory.teams_facts(key) if teams_numbers.GUID_RE.match(key) else None
            config = (
                None
                if facts is None
                else teams.configuration(
                    facts, self.clock.now(), include_unknown=INCLUDE_UNKNOWN_ENUM_MEMBERS in prefer
                )
            )
        if config is None:
            raise GraphRefusal(404, "NotFound", f"User '{key}' was not found in Microsoft Teams.")
        if selected is None:
            return (
                200,
                {
                    "@odata.context": self._context("admin/teams/userConfigurations/$entity"),
                    **config,
                },
                {},
            )
        fragment = f"admin/teams/userConfigurations({','.join(selected)})/$entity"
        return (
            200,
            {"@odata.context": self._context(fragment), **{p: config[p] for p in selected}},
            {},
        )

    # ------------------------------------------------------------------ numbers

    def list_numbers(
        self, headers: Mapping[str, str], body: Any, segments: list[str], query: dict[str, str]
    ) -> Answer:
        """The inventory, filtered and paged as the list page documents."""
        _only(query, {"$filter", "$top", "$skip"})
        clauses = teams_numbers.parse_filter(query["$filter"]) if "$filter" in query else []
        skip, top = teams_numbers.page_bounds(query.get("$top"), query.get("$skip"))
        with self.directory.observed():
            teams = self.directory.teams
            now = self.clock.now()
            teams.advance(now, self.directory.teams_facts)
            found = [
                teams.number_view(r, now)
                for r in teams.numbers.values()
                if teams_numbers.matches(r, clauses)
            ]
        answer: dict[str, Any] = {
            "@odata.context": self._context(
                "admin/teams/telephoneNumberManagement/numberAssignments"
            ),
            "value": found[skip : skip + top],
        }
        if skip + top < len(found):
            link = f"{self.base_url()}/{'/'.join(NUMBERS_PATH)}?$top={top}&$skip={skip + top}"
            if "$filter" in query:
                link += "&$filter=" + quote(query["$filter"], safe="")
            answer["@odata.nextLink"] = link
        return 200, answer, {}

    def get_number(
        self, headers: Mapping[str, str], body: Any, segments: list[str], query: dict[str, str]
    ) -> Answer:
        """One number by its numberAssignment id (what an operation's resourceLocation names)."""
        _only(query, set())
        with self.directory.observed():
            teams = self.directory.teams
            now = self.clock.now()
            teams.advance(now, self.directory.teams_facts)
            record = next(
                (
                    r
                    for r in teams.numbers.values()
                    if teams_numbers.number_id(teams.tenant_id, r["telephoneNumber"]) == segments[4]
                ),
                None,
            )
            view = None if record is None else teams.number_view(record, now)
        if view is None:
            raise GraphRefusal(
                404, "NotFound", f"Telephone number assignment '{segments[4]}' was not found."
            )
        context = self._context("admin/teams/telephoneNumberManagement/numberAssignments/$entity")
        return 200, {"@odata.context": context, **view}, {}

    def assign_number(
        self, headers: Mapping[str, str], body: Any, segments: list[str], query: dict[str, str]
    ) -> Answer:
        """Accept an order: 400 for a bad body, else 202 with the operation's Location."""
        _only(query, set())
        number, target, kind, category, location = parse_assign_body(body)
        with self.directory.observed():
            teams = self.directory.teams
            now = self.clock.now()
            teams.advance(now, self.directory.teams_facts)
            operation = teams.order(now, number, target, kind, category, location)
        location_url = (
            f"{self.base_url()}/admin/teams/telephoneNumberManagement/operations('{operation.id}')"
        )
        return 202, None, {"Location": location_url}

    def get_operation(
        self, headers: Mapping[str, str], body: Any, segments: list[str], query: dict[str, str]
    ) -> Answer:
        """An order's status; decided when its time has come."""
        _only(query, set())
        with self.directory.observed():
            teams = self.directory.teams
            now = self.clock.now()
            teams.advance(now, self.directory.teams_facts)
            operation = teams.orders.operations.get(segments[4])
            view = (
                None if operation is None else teams.operation_view(operation, now, self.base_url())
            )
        if view is None:
            raise GraphRefusal(404, "NotFound", f"Operation '{segments[4]}' was not found.")
        context = self._context("admin/teams/telephoneNumberManagement/operations/$entity")
        return 200, {"@odata.context": context, **view}, {}


def parse_assign_body(
    body: Any,
) -> tuple[str, str, NumberType, AssignmentCategory, str | None]:
    """The assignNumber parameters, or the 400 Graph (or the emulator) answers at once.

    Wording: missing and unknown parameters and enum literals are OData's (as for
    assignLicense); an invalid number or target id is the emulator's own ("Invalid
    DirectRoutingTelephoneNumber '1'" was seen from the number service, docs-powershell#10042).
    """
    if not isinstance(body, dict):
        raise _missing("telephoneNumber, assignmentTargetId, numberType")
    unknown = sorted(k for k in body if k not in ASSIGN_PARAMETERS and not k.startswith("@odata"))
    if unknown:
        raise bad_request(
            f"The parameter '{unknown[0]}' in the request payload is not a valid parameter for "
            "the operation 'assignNumber'.",
            "BadRequest",
        )
    missing = [
        p for p in ("telephoneNumber", "assignmentTargetId", "numberType") if body.get(p) is None
    ]
    if missing:
        raise _missing(", ".join(missing))
    kind = _enum(body["numberType"], NumberType, "numberType")
    if kind not in ASSIGNABLE_NUMBER_TYPES:
        raise bad_request(
            f"numberType '{kind}' cannot be assigned: use directRouting, callingPlan or "
            "operatorConnect.",
            "BadRequest",
        )
    category = AssignmentCategory.PRIMARY
    if body.get("assignmentCategory") is not None:
        category = _enum(body["assignmentCategory"], AssignmentCategory, "assignmentCategory")
        if category == AssignmentCategory.UNKNOWN_FUTURE_VALUE:
            raise bad_request(
                "assignmentCategory 'unknownFutureValue' cannot be assigned.", "BadRequest"
            )
    raw = body["telephoneNumber"]
    number = teams_numbers.normalize(raw) if isinstance(raw, str) else None
    if number is None or (";ext=" in number and kind != NumberType.DIRECT_ROUTING):
        raise bad_request(f"Invalid TelephoneNumber '{raw}'.", "BadRequest")
    target = body["assignmentTargetId"]
    if not isinstance(target, str) or not teams_numbers.GUID_RE.match(target):
        raise bad_request(
            f"Invalid assignmentTargetId '{target}': the object id of a user is expected.",
            "BadRequest",
        )
    location = body.get("locationId")
    if location is not None and (not isinstance(location, str) or not location.strip()):
        raise bad_request("Invalid value specified for parameter 'locationId'.", "BadRequest")
    return number, target.lower(), kind, category, location


def _enum(value: Any, kind: Any, name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise bad_request(
            f"Cannot convert the literal '{value}' to the expected type "
            f"'microsoft.graph.teamsAdministration.{name}'.",
            "BadRequest",
        ) from None


def _missing(names: str) -> GraphRefusal:
    return bad_request(
        "One or more parameters of the operation 'assignNumber' are missing from the request "
        f"payload. The missing parameters are: {names}.",
        "BadRequest",
    )


def _only(query: Mapping[str, str], allowed: set[str]) -> None:
    for name in query:
        if name.startswith("$") and name not in allowed:
            raise GraphRefusal(
                400, "BadRequest", f"The query parameter '{name}' is not supported here."
            )
