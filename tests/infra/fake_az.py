"""A stand-in for the Azure CLI, for infra/scripts/*.sh: `az rest` on a tiny in-memory
Microsoft Graph (service principals and app role assignments), and `az account show`.

Run as `az` from a temporary PATH by tests/infra/test_infra_graph_permissions.py. Its
tenant lives in the JSON file named by FAKE_AZ_STATE; every call is appended to its
`calls`. `signed_in_as` ({type: user | servicePrincipal, name}) is who `az account
show` says is signed in; `me_roles` and a service principal's `directoryRoles` are the
active directory roles (template ids) Graph lists under transitiveMemberOf. `--query`
is evaluated with jmespath, as the real CLI does, so the script's JMESPath is checked
too. Entra ID's replication lag is simulated per principal:
`lag[<principal id>]` calls that involve it fail the way Graph fails for an object it
has not replicated yet. Anything it does not know fails, naming what it was asked.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import jmespath

GRAPH = "https://graph.microsoft.com/v1.0"


class Refused(Exception):
    def __init__(self, status: str, code: str, message: str) -> None:
        super().__init__(f"{status}({json.dumps({'error': {'code': code, 'message': message}})})")


def _not_found(object_id: str) -> Refused:
    return Refused(
        "Not Found",
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


def _lagging(state: dict[str, Any], principal_id: str) -> bool:
    remaining = state["lag"].get(principal_id, 0)
    if remaining > 0:
        state["lag"][principal_id] = remaining - 1
        return True
    return False


def _principal(state: dict[str, Any], object_id: str) -> dict[str, Any]:
    if _lagging(state, object_id) or object_id not in state["servicePrincipals"]:
        raise _not_found(object_id)
    principal: dict[str, Any] = state["servicePrincipals"][object_id]
    return principal


def _directory_roles(state: dict[str, Any], roles: list[str]) -> dict[str, Any]:
    if state.get("refuse_reads"):
        raise Refused(
            "Forbidden",
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    return {"value": [{"roleTemplateId": role} for role in roles]}


def rest(state: dict[str, Any], method: str, url: str, body: str | None) -> Any:
    path = url.removeprefix(GRAPH)
    if method == "get" and path == "/me/transitiveMemberOf/microsoft.graph.directoryRole":
        return _directory_roles(state, state.get("me_roles", []))
    if method == "get" and (
        match := re.fullmatch(
            r"/servicePrincipals/([\w-]+)/transitiveMemberOf/microsoft.graph.directoryRole", path
        )
    ):
        return _directory_roles(state, _principal(state, match.group(1)).get("directoryRoles", []))
    if method == "get" and (match := re.fullmatch(r"/servicePrincipals\(appId='([\w-]+)'\)", path)):
        for principal in state["servicePrincipals"].values():
            if principal["appId"] == match.group(1):
                return principal
        raise _not_found(match.group(1))
    if method == "get" and (match := re.fullmatch(r"/servicePrincipals/([\w-]+)", path)):
        return _principal(state, match.group(1))
    if method == "get" and (
        match := re.fullmatch(r"/servicePrincipals/([\w-]+)/appRoleAssignments", path)
    ):
        principal = _principal(state, match.group(1))
        held = [a for a in state["assignments"] if a["principalId"] == principal["id"]]
        return {"value": held}
    if method == "post" and (
        match := re.fullmatch(r"/servicePrincipals/([\w-]+)/appRoleAssignedTo", path)
    ):
        if state.get("refuse_writes"):
            raise Refused(
                "Forbidden",
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        assignment = json.loads(body or "{}")
        if _lagging(state, assignment["principalId"]):
            raise Refused("Bad Request", "Request_BadRequest", "Not a valid reference update.")
        resource = _principal(state, match.group(1))
        assert assignment["resourceId"] == resource["id"], "resourceId is not the URL's"
        roles = {role["id"] for role in resource["appRoles"]}
        assert assignment["appRoleId"] in roles, "no such app role"
        if any(
            a["principalId"] == assignment["principalId"]
            and a["appRoleId"] == assignment["appRoleId"]
            for a in state["assignments"]
        ):
            raise Refused(
                "Bad Request",
                "Request_BadRequest",
                "Permission being assigned already exists on the object",
            )
        assignment["id"] = str(uuid.uuid4())
        state["assignments"].append(assignment)
        return assignment
    if method == "delete" and (
        match := re.fullmatch(r"/servicePrincipals/([\w-]+)/appRoleAssignedTo/([\w-]+)", path)
    ):
        before = len(state["assignments"])
        state["assignments"] = [
            a
            for a in state["assignments"]
            if not (a["id"] == match.group(2) and a["resourceId"] == match.group(1))
        ]
        if len(state["assignments"]) == before:
            raise _not_found(match.group(2))
        return None
    raise SystemExit(f"fake az: unsupported {method.upper()} {url}")


def _options(args: list[str]) -> dict[str, str]:
    options = {}
    for i, arg in enumerate(args):
        if arg.startswith("-"):
            options[arg] = args[i + 1] if i + 1 < len(args) else ""
    return options


def _print(result: Any, output: str) -> None:
    if output == "none" or result is None:
        return
    if output != "tsv":
        print(json.dumps(result, indent=2))
        return
    for item in result if isinstance(result, list) else [result]:
        if item is None:
            continue
        print("\t".join(map(str, item)) if isinstance(item, list) else item)


def main(args: list[str]) -> int:
    state_file = Path(os.environ["FAKE_AZ_STATE"])
    state = json.loads(state_file.read_text(encoding="utf-8"))
    state["calls"].append(args)
    options = _options(args)
    output = options.get("-o") or options.get("--output") or "json"
    try:
        if args[:2] == ["account", "show"]:
            if not state.get("signed_in", True):
                print("ERROR: Please run 'az login' to setup account.", file=sys.stderr)
                return 1
            signed_in = state.get("signed_in_as", {"type": "user", "name": "admin"})
            result: Any = {"tenantId": state["tenantId"], "user": signed_in}
        elif args[:1] == ["rest"]:
            result = rest(
                state, options["--method"].lower(), options["--url"], options.get("--body")
            )
        else:
            print(f"fake az: unsupported command {args}", file=sys.stderr)
            return 2
        if "--query" in options:
            result = jmespath.search(options["--query"], result)
        _print(result, output)
        return 0
    except Refused as refused:
        print(f"ERROR: {refused}", file=sys.stderr)
        return 1
    finally:
        state_file.write_text(json.dumps(state, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
