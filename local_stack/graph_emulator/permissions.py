"""Application permissions: which Graph route needs which app role, and what the app holds.

A real tenant refuses a call whose token carries none of the application
permissions the operation accepts: 403 `Authorization_RequestDenied`,
"Insufficient privileges to complete the operation." (the body real apps log,
e.g. github.com/Azure-Samples/ms-identity-python-daemon/issues/8 and
github.com/BakkerJan/M365Portal/issues/1). The emulator holds the set of
permissions granted to the app (`None` = every permission, the default, so
directories without a `"permissions"` key keep working) and `GraphService`
checks it after auth and faults, before throttling.

`ROUTE_PERMISSIONS` is data: a route name -> the application permissions that
each suffice (ANY ONE of them), least privileged first, as Microsoft's API
pages list them ("Permissions" section, application row). Route names (all
served except `groups.get`, named for whoever adds that route):

- `users.get`: `GET /users/{id or upn}`, `GET /users('{upn}')`
- `users.list`: `GET /users?$filter=...`
- `users.update`: `PATCH /users/{id}`
- `users.assignLicense`: `POST /users/{id}/assignLicense`
- `users.reprocessLicenseAssignment`: `POST /users/{id}/reprocessLicenseAssignment`
- `subscribedSkus.list`: `GET /subscribedSkus`
- `groups.get`: `GET /groups/{id}`
- `groups.members.add`: `POST /groups/{id}/members/$ref`
- `servicePrincipals.synchronization.jobs.schema.get`:
  `GET /servicePrincipals/{sp}/synchronization/jobs/{job}/schema`
- `servicePrincipals.synchronization.jobs.provisionOnDemand`:
  `POST /servicePrincipals/{sp}/synchronization/jobs/{job}/provisionOnDemand`
- `teams.userConfigurations.get`: `GET /admin/teams/userConfigurations/{userId}`
- `teams.numberAssignments.list`: `GET /admin/teams/telephoneNumberManagement/numberAssignments`
- `teams.numberAssignments.get`: `GET .../telephoneNumberManagement/numberAssignments/{id}`
- `teams.numberAssignments.assignNumber`: `POST .../numberAssignments/assignNumber`
- `teams.operations.get`: `GET .../telephoneNumberManagement/operations/{id}`

A route in `ROUTE_REFUSALS` is refused with that status, code and message
instead of the 403: the synchronization APIs answer an app without the
permission 401 `UnknownError` with an empty message (observed:
github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/8800).

A route whose name is not in the table (e.g. `$batch`, which needs no
permission of its own: each item is checked) is not checked.

Not modelled: Microsoft Entra roles and delegated (user) tokens, permissions
that cover only some properties (`User.EnableDisableAccount.All`,
`User-PasswordProfile.ReadWrite.All`, ...), the agent-identity permissions
(`AgentIdUser.*`, which apply only to agent users), and the delay before a
grant or revocation reaches a token (see README).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from .errors import GraphRefusal

_READ_USERS = (
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)

#: Route name -> application permissions that each allow the call, least privileged first.
ROUTE_PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    # learn.microsoft.com/graph/api/user-get and /user-list, "Permissions", application row.
    "users.get": (
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    "users.list": (
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    # learn.microsoft.com/graph/api/user-update: User.ReadUpdate.All in the current page (older
    # pages: User.ReadWrite.All), higher User.ReadWrite.All, Directory.ReadWrite.All
    # (User.EnableDisableAccount.All / User.ManageIdentities.All cover only some properties).
    "users.update": ("User.ReadUpdate.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
    # learn.microsoft.com/graph/api/user-assignlicense (includes/permissions/
    # user-assignlicense-permissions.md): LicenseAssignment.ReadWrite.All least privileged.
    "users.assignLicense": (
        "LicenseAssignment.ReadWrite.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ),
    # learn.microsoft.com/graph/api/user-reprocesslicenseassignment: User.ReadWrite.All, higher
    # Directory.ReadWrite.All (LicenseAssignment.ReadWrite.All is not listed).
    "users.reprocessLicenseAssignment": ("User.ReadWrite.All", "Directory.ReadWrite.All"),
    # learn.microsoft.com/graph/api/subscribedsku-list: LicenseAssignment.Read.All, higher
    # Directory.Read.All, Directory.ReadWrite.All, Organization.Read.All, Organization.ReadWrite.All
    # (older pages named Organization.Read.All the least privileged).
    "subscribedSkus.list": (
        "LicenseAssignment.Read.All",
        "Organization.Read.All",
        "Organization.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    # learn.microsoft.com/graph/api/group-get (includes/permissions/group-get-permissions.md).
    "groups.get": (
        "GroupMember.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    # learn.microsoft.com/graph/api/group-post-members: GroupMember.ReadWrite.All for a user member;
    # Group.ReadWrite.All and Directory.ReadWrite.All were the higher ones in earlier versions.
    "groups.members.add": (
        "GroupMember.ReadWrite.All",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
    ),
    # learn.microsoft.com/graph/api/synchronization-synchronizationschema-get, application row.
    "servicePrincipals.synchronization.jobs.schema.get": (
        "CustomSecAttributeProvisioning.Read.All",
        "Synchronization.Read.All",
        "Application.ReadWrite.OwnedBy",
        "CustomSecAttributeProvisioning.ReadWrite.All",
        "Synchronization.ReadWrite.All",
    ),
    # learn.microsoft.com/graph/api/synchronization-synchronizationjob-provisionondemand.
    "servicePrincipals.synchronization.jobs.provisionOnDemand": (
        "Application.ReadWrite.OwnedBy",
        "Synchronization.ReadWrite.All",
    ),
    # learn.microsoft.com/graph/api/teamsadministration-teamsuserconfiguration-get: application
    # TeamsUserConfiguration.Read.All, higher "Not available".
    "teams.userConfigurations.get": ("TeamsUserConfiguration.Read.All",),
    # .../teamsadministration-telephonenumbermanagementroot-list-numberassignments: least
    # TeamsTelephoneNumber.Read.All, higher TeamsTelephoneNumber.ReadWrite.All; the get page
    # names no table of its own in the docs repository, the list's is assumed.
    "teams.numberAssignments.list": (
        "TeamsTelephoneNumber.Read.All",
        "TeamsTelephoneNumber.ReadWrite.All",
    ),
    "teams.numberAssignments.get": (
        "TeamsTelephoneNumber.Read.All",
        "TeamsTelephoneNumber.ReadWrite.All",
    ),
    # .../teamsadministration-numberassignment-assignnumber: TeamsTelephoneNumber.ReadWrite.All,
    # higher "Not available".
    "teams.numberAssignments.assignNumber": ("TeamsTelephoneNumber.ReadWrite.All",),
    # .../teamsadministration-telephonenumberlongrunningoperation-get.
    "teams.operations.get": (
        "TeamsTelephoneNumber.Read.All",
        "TeamsTelephoneNumber.ReadWrite.All",
    ),
}

#: Routes whose refusal is not the usual 403 (see the module docstring): (status, code, message).
ROUTE_REFUSALS: Mapping[str, tuple[int, str, str]] = {
    "servicePrincipals.synchronization.jobs.schema.get": (401, "UnknownError", ""),
    "servicePrincipals.synchronization.jobs.provisionOnDemand": (401, "UnknownError", ""),
}

#: Every permission name the emulator accepts in a directory file or the control API.
KNOWN_PERMISSIONS: frozenset[str] = frozenset(
    {name for names in ROUTE_PERMISSIONS.values() for name in names}
    | {
        # Related Graph application permissions a team may grant, which cover none of the
        # routes above (learn.microsoft.com/graph/permissions-reference).
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Device.Read.All",
        "GroupMember.Read.All",
        "OrgContact.Read.All",
        "User.EnableDisableAccount.All",
        "User.ManageIdentities.All",
        "User-LifeCycleInfo.Read.All",
        "User-LifeCycleInfo.ReadWrite.All",
    }
)

INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."


class PermissionFormatError(ValueError):
    """A permission name the emulator does not know (a 400 in the control API)."""


def checked_names(names: Iterable[object], what: str = "permissions") -> frozenset[str]:
    """Validate permission names against `KNOWN_PERMISSIONS` (exact spelling, as in tokens)."""
    if isinstance(names, str | bytes):
        raise PermissionFormatError(f"{what} must be a list of permission names")
    out: set[str] = set()
    for name in names:
        if not isinstance(name, str) or name not in KNOWN_PERMISSIONS:
            known = ", ".join(sorted(KNOWN_PERMISSIONS))
            raise PermissionFormatError(f"{what}: unknown permission {name!r}; known: {known}")
        out.add(name)
    return frozenset(out)


class Permissions:
    """The application permissions granted to the app; `None` means all of them."""

    def __init__(self, granted: Iterable[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._granted: frozenset[str] | None = None if granted is None else checked_names(granted)

    def granted(self) -> list[str] | None:
        """Granted names, sorted, or None when every permission is granted."""
        with self._lock:
            return None if self._granted is None else sorted(self._granted)

    def set(self, granted: Iterable[str] | None) -> None:
        """Replace the grant (None = every permission)."""
        checked = None if granted is None else checked_names(granted)
        with self._lock:
            self._granted = checked

    def grant(self, name: str) -> None:
        """Grant one permission (a no-op when everything is granted)."""
        (checked,) = checked_names([name], "permission")
        with self._lock:
            if self._granted is not None:
                self._granted = self._granted | {checked}

    def revoke(self, name: str) -> None:
        """Revoke one permission; revoking from 'everything' leaves every other known one."""
        (checked,) = checked_names([name], "permission")
        with self._lock:
            current = KNOWN_PERMISSIONS if self._granted is None else self._granted
            self._granted = current - {checked}

    def require(self, route_name: str) -> None:
        """Raise Graph's 403 unless one permission that allows `route_name` is granted."""
        needed = ROUTE_PERMISSIONS.get(route_name)
        with self._lock:
            granted = self._granted
        if needed is None or granted is None or granted.intersection(needed):
            return
        # Entra ID's refusal for an app token without the role (see the module docstring).
        status, code, message = ROUTE_REFUSALS.get(
            route_name, (403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)
        )
        raise GraphRefusal(status, code, message)
