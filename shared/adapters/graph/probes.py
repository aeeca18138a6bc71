"""How a user is looked up: one probe per identifier, each one URL, built in one place
(`Probe.relative_url`) for single GETs and `$batch` items alike. A UPN is one
percent-encoded path segment (or `users('...')` when it starts with `$`); every other value
reaches a `$filter` only as an OData literal, `'` doubled (guarantee 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from shared.domain.requests import UserIdentifiers

USER_FIELDS: Final = (
    "id",
    "userPrincipalName",
    "employeeId",
    "accountEnabled",
    "usageLocation",
    "assignedLicenses",
    "onPremisesSyncEnabled",
    "onPremisesLastSyncDateTime",
    "onPremisesImmutableId",
    "licenseAssignmentStates",  # group-based licensing's outcome; only returned on $select
)


def odata_literal(value: str) -> str:
    """An OData string literal: quoted, with `'` doubled."""
    return "'" + value.replace("'", "''") + "'"


def _key_path(upn: str) -> str:
    """`/users('...')`: how Graph wants a UPN that starts with `$`."""
    return "/users(" + quote(odata_literal(upn), safe="'") + ")"


@dataclass(frozen=True)
class Probe:
    """One lookup of one identifier: a key GET (`/users/{upn}`) or a `$filter` query."""

    field: str
    value: str
    key: bool = False

    def relative_url(self) -> str:
        select = "$select=" + ",".join(USER_FIELDS)
        if self.key:
            path = (
                _key_path(self.value)
                if self.value.startswith("$")
                else ("/users/" + quote(self.value, safe=""))
            )
            return f"{path}?{select}"
        expression = f"{self.field} eq {odata_literal(self.value)}"
        return f"/users?$filter={quote(expression, safe='')}&{select}"


def probes_for(ids: UserIdentifiers) -> list[Probe]:
    """UPN by key, then (because a key GET can lag behind the `$filter` index right after
    a user appears: docs/graph-facts.md, "Eventual consistency") by filter; then
    employeeId, then immutableId, by filter."""
    probes = []
    if ids.user_principal_name is not None:
        upn = ids.user_principal_name
        probes += [Probe("userPrincipalName", upn, key=True), Probe("userPrincipalName", upn)]
    if ids.employee_id is not None:
        probes.append(Probe("employeeId", ids.employee_id))
    if ids.immutable_id is not None:
        probes.append(Probe("onPremisesImmutableId", ids.immutable_id))
    return probes
