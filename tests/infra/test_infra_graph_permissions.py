"""The Graph permissions granted are least privilege for each feature, the same in every
place that grants or documents them, and the grant script behaves as deploy.md says.

Three things grant or describe the identity's Microsoft Graph application permissions:
infra/modules/graph-permissions.bicep (opt-in), infra/scripts/grant-graph-permissions.sh
(the postprovision hook's default, and the tenant admin's fallback), and the tables in
docs/deploy.md and README.md. `least_privilege` below is the reference: each is checked
against it for every combination of LICENSING_MODE, SET_USAGE_LOCATION, CLOUD_SYNC_JOB and
TEAMS_PHONE.
The Bicep expression is evaluated from its syntax tree; the script is run against
`fake_az.py`, a stand-in Azure CLI with a small in-memory Microsoft Graph.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from infra_support import (
    INFRA,
    REPO,
    Expr,
    bicep_tree,
    checkov_executable,
    evaluate,
    modules_of,
    params_of,
    variable_nodes_of,
)

SCRIPT = INFRA / "scripts" / "grant-graph-permissions.sh"
HOOK = INFRA / "scripts" / "postprovision.sh"
PRECHECK = INFRA / "scripts" / "preprovision.sh"
# Directory role template ids (Entra ID's built-in roles reference).
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMIN = "e8611ab8-c189-46e8-94e1-60213ab1f814"
CLOUD_APP_ADMIN = "158c047a-c907-4556-b7ef-446551a6b5f7"
APPLICATION_DEVELOPER = "cf1c38e5-3621-4004-a7cb-879624dced7c"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
TENANT = "11111111-1111-1111-1111-111111111111"

# (LICENSING_MODE, SET_USAGE_LOCATION, CLOUD_SYNC_JOB set, TEAMS_PHONE)
Features = tuple[str, bool, bool, bool]
COMBINATIONS: list[Features] = list(
    itertools.product(("direct", "group"), (True, False), (True, False), (True, False))
)
DEFAULTS: Features = ("direct", True, False, False)
TEAMS_PHONE_PERMISSIONS = {"TeamsUserConfiguration.Read.All", "TeamsTelephoneNumber.ReadWrite.All"}
CLOUD_SYNC_JOB = (
    "0d8f4a2c-6b1e-4f3a-9c5d-7e2b1a0f9c8d/AD2AADProvisioning.fd1c9b9e8077402c8bc03a7186c8f976"
    ".e9287a7367e444c88dc67a531c36d8ec"
)


def least_privilege(features: Features) -> set[str]:
    """What each feature needs (graph.md §3, the app's calls): the reference."""
    mode, set_usage_location, force_sync, teams_phone = features
    wanted = {"User.Read.All", "LicenseAssignment.Read.All"}  # users, subscribedSkus
    if mode == "direct":
        wanted |= {"LicenseAssignment.ReadWrite.All"}  # assignLicense
    else:  # group membership; reprocessLicenseAssignment needs User.ReadWrite.All
        wanted |= {"GroupMember.ReadWrite.All", "User.ReadWrite.All"}
    if set_usage_location:
        wanted |= {"User.ReadWrite.All"}  # PATCH usageLocation
    if force_sync:
        wanted |= {"Synchronization.ReadWrite.All"}  # provisionOnDemand
    if teams_phone:  # userConfigurations (readiness), assignNumber and its operation
        wanted |= TEAMS_PHONE_PERMISSIONS
    return wanted


ALL_PERMISSIONS = set().union(*(least_privilege(f) for f in COMBINATIONS))


def _ids(features: Features) -> str:
    mode, usage, sync, teams = features
    return f"{mode}-usage_{str(usage).lower()}-sync_{str(sync).lower()}-teams_{str(teams).lower()}"


# --- Bicep ---------------------------------------------------------------------------


def bicep_permissions(features: Features) -> list[str]:
    """graph-permissions.bicep's `permissions`, evaluated for these features."""
    tree = bicep_tree(INFRA / "modules" / "graph-permissions.bicep")
    mode, set_usage_location, force_sync, teams_phone = features
    names: dict[str, Any] = {
        "licensingMode": mode,
        "setUsageLocation": set_usage_location,
        "forceSync": force_sync,
        "teamsPhone": teams_phone,
    }
    for name, node in variable_nodes_of(tree).items():  # in declaration order, as Bicep reads
        names[name] = evaluate(node, names)
    permissions: list[str] = names["permissions"]
    return permissions


@pytest.mark.parametrize("features", COMBINATIONS, ids=_ids)
def test_bicep_grants_least_privilege_for_each_feature(features: Features) -> None:
    """The module's list is exactly what the features need, each permission once."""
    granted = bicep_permissions(features)
    assert len(granted) == len(set(granted))
    assert set(granted) == least_privilege(features)


def test_main_feeds_the_module_the_settings_and_makes_it_opt_in() -> None:
    """Granted from Bicep only when asked to; with the same inputs as the app settings."""
    (module,) = [
        m for m in modules_of(bicep_tree(INFRA / "main.bicep")) if m.name == "graphPermissions"
    ]
    assert module.condition == "grantGraphPermissions && grantGraphPermissionsWithBicep"
    assert module.body["params"] == {
        "principalId": Expr("identity.outputs.principalId"),
        "setUsageLocation": Expr("setUsageLocation"),
        "licensingMode": Expr("licensingMode"),
        "forceSync": Expr("!empty(cloudSyncJob)"),
        "teamsPhone": Expr("teamsPhone"),
    }
    params = params_of(bicep_tree(INFRA / "main.bicep"))
    assert params["grantGraphPermissions"].default is True
    assert params["grantGraphPermissionsWithBicep"].default is False


# --- docs ----------------------------------------------------------------------------


def _graph_permissions_section(markdown: Path) -> str:
    text = markdown.read_text(encoding="utf-8")
    section = re.search(r"^## Graph permissions[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"{markdown.name} has no '## Graph permissions' section"
    return section.group(1)


def _table_rows(section: str) -> list[list[str]]:
    """The cells of the section's first table (header included, separator dropped)."""
    lines = section[section.index("\n|") + 1 :].split("\n")
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
            rows.append(cells)
    return rows


def _permissions_column(markdown: Path) -> set[str]:
    """Backticked first-column entries of the first table under '## Graph permissions'."""
    permissions = set()
    for cells in _table_rows(_graph_permissions_section(markdown))[1:]:
        if match := re.fullmatch(r"`([\w.]+)`", cells[0]):
            permissions.add(match.group(1))
    assert permissions, f"{markdown.name}: no permission in the Graph permissions table"
    return permissions


@pytest.mark.parametrize("document", ["README.md", "docs/deploy.md"])
def test_documented_graph_permissions_are_those_bicep_can_grant(document: str) -> None:
    """The '## Graph permissions' table lists every permission any feature can need."""
    assert _permissions_column(REPO / document) == ALL_PERMISSIONS


def _documented_matrix() -> Callable[[Features], set[str]]:
    """deploy.md's matrix: which column marks ('yes') grant each permission."""
    header, *rows = _table_rows(_graph_permissions_section(REPO / "docs" / "deploy.md"))
    columns = {
        "always": next(i for i, h in enumerate(header) if h == "always"),
        "direct": next(i for i, h in enumerate(header) if "direct" in h),
        "group": next(i for i, h in enumerate(header) if "group" in h),
        "usage": next(i for i, h in enumerate(header) if "SET_USAGE_LOCATION" in h),
        "sync": next(i for i, h in enumerate(header) if "CLOUD_SYNC_JOB" in h),
        "teams": next(i for i, h in enumerate(header) if "TEAMS_PHONE" in h),
    }
    marks = {
        row[0].strip("`"): {name for name, i in columns.items() if row[i] == "yes"} for row in rows
    }

    def granted(features: Features) -> set[str]:
        mode, usage, sync, teams = features
        on = {"always", mode} | ({"usage"} if usage else set()) | ({"sync"} if sync else set())
        on |= {"teams"} if teams else set()
        return {permission for permission, when in marks.items() if when & on}

    return granted


@pytest.mark.parametrize("features", COMBINATIONS, ids=_ids)
def test_deploy_md_matrix_matches_least_privilege(features: Features) -> None:
    """Reading deploy.md's table for these features gives exactly what Bicep grants."""
    assert _documented_matrix()(features) == least_privilege(features)


# --- the grant script, on a fake Azure CLI ----------------------------------------------


def _python_with_jmespath() -> str:
    """An interpreter that can run fake_az.py (jmespath: the CLI's own query library)."""
    candidates = [sys.executable, str(checkov_executable().parent / "python")]
    for python in candidates:
        probe = subprocess.run(  # noqa: S603 - our interpreters
            [python, "-c", "import jmespath"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return python
    raise AssertionError(f"no interpreter with jmespath among {candidates}")


class Tenant:
    """A tenant of the fake Azure CLI: Graph, the app's identity, and another API."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state_file = directory / "state.json"
        self.identity = str(uuid.uuid4())
        self.graph_sp = str(uuid.uuid4())
        self.other_sp = str(uuid.uuid4())
        roles = sorted(
            ALL_PERMISSIONS
            | {"Mail.Send", "Directory.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"}
            | {"Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"}
        )
        self.role_ids = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, name)) for name in roles}
        graph_roles = [
            {"id": role_id, "value": name, "allowedMemberTypes": ["Application"]}
            for name, role_id in self.role_ids.items()
        ]
        # A delegated-only scope of the same name must never be picked.
        graph_roles.append(
            {"id": str(uuid.uuid4()), "value": "User.Read.All", "allowedMemberTypes": ["User"]}
        )
        self.other_role = str(uuid.uuid4())
        self.state: dict[str, Any] = {
            "tenantId": TENANT,
            "servicePrincipals": {
                self.graph_sp: {
                    "id": self.graph_sp,
                    "appId": GRAPH_APP_ID,
                    "displayName": "Microsoft Graph",
                    "appRoles": graph_roles,
                },
                self.identity: {
                    "id": self.identity,
                    "appId": str(uuid.uuid4()),
                    "displayName": "id-onboarding",
                    "appRoles": [],
                },
                self.other_sp: {
                    "id": self.other_sp,
                    "appId": str(uuid.uuid4()),
                    "displayName": "Some other API",
                    "appRoles": [
                        {
                            "id": self.other_role,
                            "value": "Thing.Read",
                            "allowedMemberTypes": ["Application"],
                        }
                    ],
                },
            },
            "assignments": [],
            "lag": {},
            "calls": [],
        }
        self.save()
        bin_dir = directory / "bin"
        bin_dir.mkdir()
        az = bin_dir / "az"
        az.write_text(
            f"#!{_python_with_jmespath()}\n"
            + (Path(__file__).parent / "fake_az.py").read_text(encoding="utf-8"),
            encoding="utf-8",
        )
        az.chmod(0o755)
        self.path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state), encoding="utf-8")

    def load(self) -> dict[str, Any]:
        self.state = json.loads(self.state_file.read_text(encoding="utf-8"))
        return self.state

    def hold(self, *permissions: str) -> None:
        for permission in permissions:
            self.state["assignments"].append(
                {
                    "id": str(uuid.uuid4()),
                    "principalId": self.identity,
                    "resourceId": self.graph_sp,
                    "appRoleId": self.role_ids[permission],
                }
            )
        self.save()

    def held(self) -> set[str]:
        names = {role_id: name for name, role_id in self.role_ids.items()}
        return {
            names[a["appRoleId"]]
            for a in self.load()["assignments"]
            if a["principalId"] == self.identity and a["resourceId"] == self.graph_sp
        }

    def writes(self) -> list[list[str]]:
        return [
            call
            for call in self.load()["calls"]
            if call[:1] == ["rest"] and call[call.index("--method") + 1] in ("post", "delete")
        ]

    def run(
        self, command: list[str], features: Features = DEFAULTS, **env: str
    ) -> subprocess.CompletedProcess[str]:
        mode, usage, sync, teams = features
        environment = {
            "PATH": self.path,
            "HOME": str(self.directory),
            "FAKE_AZ_STATE": str(self.state_file),
            "LICENSING_MODE": mode,
            "SET_USAGE_LOCATION": "true" if usage else "false",
            "CLOUD_SYNC_JOB": CLOUD_SYNC_JOB if sync else "",
            "TEAMS_PHONE": "true" if teams else "false",
            "GRANT_RETRY_FIRST_DELAY": "0",
            **env,
        }
        return subprocess.run(  # noqa: S603 - our scripts
            command,
            cwd=REPO,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def grant(
        self, *options: str, features: Features = DEFAULTS, **env: str
    ) -> subprocess.CompletedProcess[str]:
        bash = shutil.which("bash")
        assert bash, "bash is needed to run the grant script"
        return self.run([bash, str(SCRIPT), *options, self.identity], features, **env)


@pytest.fixture
def tenant(tmp_path: Path) -> Tenant:
    return Tenant(tmp_path)


@pytest.mark.parametrize("features", COMBINATIONS, ids=_ids)
def test_the_script_grants_exactly_what_bicep_grants(tenant: Tenant, features: Features) -> None:
    """From nothing, the identity ends with the Bicep module's list for the same settings."""
    completed = tenant.grant(features=features)
    assert completed.returncode == 0, completed.stderr
    assert tenant.held() == set(bicep_permissions(features)) == least_privilege(features)
    for permission in least_privilege(features):
        assert f"granted:         {permission}" in completed.stdout


def test_the_script_defaults_are_biceps(tenant: Tenant) -> None:
    """Without the settings in the environment, the script grants what Bicep's defaults do."""
    params = params_of(bicep_tree(INFRA / "main.bicep"))
    defaults: Features = (
        params["licensingMode"].default,
        params["setUsageLocation"].default,
        params["cloudSyncJob"].default != "",
        params["teamsPhone"].default,
    )
    bash = shutil.which("bash")
    assert bash
    completed = tenant.run(
        ["env", "-u", "LICENSING_MODE", "-u", "SET_USAGE_LOCATION", "-u", "CLOUD_SYNC_JOB",
         "-u", "TEAMS_PHONE", bash, str(SCRIPT), tenant.identity]
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert tenant.held() == set(bicep_permissions(defaults))


def test_unset_inputs_come_from_the_azd_environment(tenant: Tenant) -> None:
    """Run by hand in the repository, the script reads what the environment lacks from azd
    (so `--prune` cannot fall back to defaults and revoke what group mode needs); what the
    environment sets wins."""
    azd_env = tenant.directory / "azd.env"
    azd_env.write_text(
        f"LICENSING_MODE=group\nCLOUD_SYNC_JOB={CLOUD_SYNC_JOB}\nTEAMS_PHONE=true\n"
        f"AZURE_IDENTITY_PRINCIPAL_ID={tenant.identity}\n",
        encoding="utf-8",
    )
    azd = tenant.directory / "bin" / "azd"
    azd.write_text(
        "#!/usr/bin/env bash\n"
        "# fake azd: `azd env get-value NAME` from the file $FAKE_AZD_ENV (NAME=value lines)\n"
        '[ "$1 $2" = "env get-value" ] || exit 2\n'
        'line=$(grep "^$3=" "$FAKE_AZD_ENV") || { echo "ERROR: key $3 not found" >&2; exit 1; }\n'
        "printf '%s\\n' \"${line#*=}\"\n",
        encoding="utf-8",
    )
    azd.chmod(0o755)
    bash = shutil.which("bash")
    assert bash
    unset = ["env", "-u", "LICENSING_MODE", "-u", "CLOUD_SYNC_JOB", "-u", "SET_USAGE_LOCATION"]
    unset += ["-u", "TEAMS_PHONE"]
    completed = tenant.run([*unset, bash, str(SCRIPT), "--prune"], FAKE_AZD_ENV=str(azd_env))
    assert completed.returncode == 0, completed.stderr
    assert tenant.held() == least_privilege(("group", True, True, True))
    completed = tenant.run(
        ["env", "-u", "CLOUD_SYNC_JOB", bash, str(SCRIPT), "--prune"],
        features=("direct", True, False, False),
        FAKE_AZD_ENV=str(azd_env),
    )
    assert completed.returncode == 0, completed.stderr
    assert tenant.held() == least_privilege(("direct", True, True, False))


def test_a_second_run_changes_nothing(tenant: Tenant) -> None:
    """Idempotent: everything is reported as already granted, nothing is written."""
    assert tenant.grant("--prune").returncode == 0
    writes = len(tenant.writes())
    completed = tenant.grant("--prune")
    assert completed.returncode == 0, completed.stderr
    assert len(tenant.writes()) == writes
    assert completed.stdout.count("already granted:") == len(least_privilege(DEFAULTS))
    assert "revoked" not in completed.stdout


def test_prune_revokes_graph_roles_no_longer_needed(tenant: Tenant) -> None:
    """Turning SET_USAGE_LOCATION off (and a stray role) really drops the permission;
    roles on other APIs are not Graph's and stay."""
    tenant.hold(*least_privilege(DEFAULTS), "Mail.Send")
    tenant.state["assignments"].append(
        {
            "id": str(uuid.uuid4()),
            "principalId": tenant.identity,
            "resourceId": tenant.other_sp,
            "appRoleId": tenant.other_role,
        }
    )
    tenant.save()
    features: Features = ("direct", False, False, False)
    completed = tenant.grant("--prune", features=features)
    assert completed.returncode == 0, completed.stderr
    assert tenant.held() == least_privilege(features)
    assert "revoked:         User.ReadWrite.All" in completed.stdout
    assert "revoked:         Mail.Send" in completed.stdout
    assert any(a["resourceId"] == tenant.other_sp for a in tenant.load()["assignments"])
    assert "24 hours" in completed.stdout


def test_switching_to_group_mode_swaps_the_license_permission(tenant: Tenant) -> None:
    """direct → group: GroupMember.ReadWrite.All in, LicenseAssignment.ReadWrite.All out."""
    assert tenant.grant("--prune").returncode == 0
    group: Features = ("group", False, False, False)
    completed = tenant.grant("--prune", features=group)
    assert completed.returncode == 0, completed.stderr
    assert tenant.held() == least_privilege(group)
    assert "granted:         GroupMember.ReadWrite.All" in completed.stdout
    assert "revoked:         LicenseAssignment.ReadWrite.All" in completed.stdout


def test_without_prune_extra_roles_are_kept_and_named(tenant: Tenant) -> None:
    """The admin sees what --prune would revoke; nothing is revoked."""
    tenant.hold("Mail.Send")
    completed = tenant.grant()
    assert completed.returncode == 0, completed.stderr
    assert "Mail.Send" in tenant.held()
    assert "not needed, kept (--prune revokes it): Mail.Send" in completed.stdout


def test_dry_run_writes_nothing(tenant: Tenant) -> None:
    """--dry-run says what it would grant and revoke, and only reads."""
    tenant.hold("Mail.Send")
    completed = tenant.grant("--prune", "--dry-run")
    assert completed.returncode == 0, completed.stderr
    assert tenant.writes() == []
    assert "would grant:     LicenseAssignment.ReadWrite.All" in completed.stdout
    assert "would revoke:    Mail.Send" in completed.stdout


def test_replication_lag_of_a_new_identity_is_waited_out(tenant: Tenant) -> None:
    """The first calls about a just-created identity fail as Graph fails for an object it
    has not replicated (404 on reads, 'Not a valid reference update' on a write): retried."""
    tenant.state["lag"][tenant.identity] = 3
    tenant.save()
    completed = tenant.grant()
    assert completed.returncode == 0, completed.stderr
    assert tenant.held() == least_privilege(DEFAULTS)
    assert "Entra ID has not replicated the identity yet" in completed.stderr


def test_a_write_refused_for_replication_is_retried(tenant: Tenant) -> None:
    """The identity reads fine, but the first grant is refused 'Not a valid reference update'."""
    completed = tenant.run(["bash", "-c", _lag_on_first_write(tenant)])
    assert completed.returncode == 0, completed.stderr
    assert tenant.held() == least_privilege(DEFAULTS)
    assert "Not a valid reference update" in completed.stderr


def _lag_on_first_write(tenant: Tenant) -> str:
    """A shell line running the script with a wrapper around the fake `az` that makes the
    identity lag once, on the first POST (after the script's reads went through)."""
    wrapper = tenant.directory / "wrap" / "az"
    wrapper.parent.mkdir()
    real = tenant.directory / "bin" / "az"
    wrapper.write_text(
        "#!/usr/bin/env bash\n"
        'if [[ " $* " == *" --method post "* ]] && [ ! -e "$FAKE_AZ_STATE.armed" ]; then\n'
        '  touch "$FAKE_AZ_STATE.armed"\n'
        f"  {_python_with_jmespath()} - \"$FAKE_AZ_STATE\" {tenant.identity} <<'PY'\n"
        "import json, sys\n"
        "path, principal = sys.argv[1], sys.argv[2]\n"
        "state = json.load(open(path))\n"
        "state['lag'][principal] = 1\n"
        "json.dump(state, open(path, 'w'))\n"
        "PY\n"
        "fi\n"
        f'exec {real} "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    return f'PATH="{wrapper.parent}:$PATH" bash {SCRIPT} {tenant.identity}'


def test_replication_lag_gives_up_after_the_retry_budget(tenant: Tenant) -> None:
    """An identity Entra ID never finds fails the script, non-zero, saying so."""
    tenant.state["lag"][tenant.identity] = 10**6
    tenant.save()
    completed = tenant.grant(GRANT_RETRY_SECONDS="2", GRANT_RETRY_FIRST_DELAY="1")
    assert completed.returncode != 0
    assert "still does not know the identity after 2s" in completed.stderr
    assert tenant.writes() == []


def test_other_errors_fail_at_once(tenant: Tenant) -> None:
    """A refusal that is not replication lag (no right to grant) is not retried."""
    tenant.state["refuse_writes"] = True
    tenant.save()
    completed = tenant.grant()
    assert completed.returncode != 0
    assert "Authorization_RequestDenied" in completed.stderr
    assert "could not grant" in completed.stderr
    assert len(tenant.writes()) == 1
    assert "waiting" not in completed.stderr


def test_an_unknown_licensing_mode_is_refused(tenant: Tenant) -> None:
    """A typo in LICENSING_MODE stops the script before it touches anything."""
    completed = tenant.grant(LICENSING_MODE="groups")
    assert completed.returncode != 0
    assert "LICENSING_MODE must be direct or group" in completed.stderr
    assert tenant.load()["calls"] == []


def test_turning_teams_phone_off_revokes_its_permissions(tenant: Tenant) -> None:
    """TEAMS_PHONE true then false: the two Teams permissions come, then go with --prune."""
    teams: Features = ("direct", True, False, True)
    completed = tenant.grant("--prune", features=teams)
    assert completed.returncode == 0, completed.stderr
    assert tenant.held() >= TEAMS_PHONE_PERMISSIONS
    completed = tenant.grant("--prune")
    assert completed.returncode == 0, completed.stderr
    assert tenant.held() == least_privilege(DEFAULTS)
    for permission in TEAMS_PHONE_PERMISSIONS:
        assert f"revoked:         {permission}" in completed.stdout


def test_an_unknown_teams_phone_value_is_refused(tenant: Tenant) -> None:
    """A typo in TEAMS_PHONE (yes) stops the script before it touches anything."""
    completed = tenant.grant(TEAMS_PHONE="yes")
    assert completed.returncode != 0
    assert "TEAMS_PHONE must be true or false" in completed.stderr
    assert tenant.load()["calls"] == []


# --- the postprovision hook ----------------------------------------------------------------


def _hook(tenant: Tenant, **env: str) -> subprocess.CompletedProcess[str]:
    azd_values = {"AZURE_IDENTITY_PRINCIPAL_ID": tenant.identity, "AZURE_TENANT_ID": TENANT}
    return tenant.run(["sh", str(HOOK)], **{**azd_values, **env})


def test_the_hook_grants_and_prunes_by_default(tenant: Tenant) -> None:
    """GRANT_GRAPH_PERMISSIONS unset: the hook runs the grant with --prune."""
    tenant.hold("Mail.Send")
    completed = _hook(tenant)
    assert completed.returncode == 0, completed.stderr
    assert tenant.held() == least_privilege(DEFAULTS)


def test_the_hook_fails_azd_when_the_grant_fails(tenant: Tenant) -> None:
    """No right to grant: the hook exits non-zero (azd stops before deploying) and says why."""
    tenant.state["refuse_writes"] = True
    tenant.save()
    completed = _hook(tenant)
    assert completed.returncode == 1
    assert "were not granted" in completed.stderr
    assert "azd stops here" in completed.stderr
    assert "GRANT_GRAPH_PERMISSIONS=false" in completed.stderr


def test_the_hook_refuses_another_tenant_at_once(tenant: Tenant) -> None:
    """az signed in elsewhere would look like endless replication lag: refused up front."""
    completed = _hook(tenant, AZURE_TENANT_ID="22222222-2222-2222-2222-222222222222")
    assert completed.returncode == 1
    assert "az login --tenant 22222222-2222-2222-2222-222222222222" in completed.stderr
    assert tenant.writes() == []


def test_the_hook_with_grants_off_prints_the_admins_command(tenant: Tenant) -> None:
    """GRANT_GRAPH_PERMISSIONS=false: nothing is called; the command carries the settings."""
    completed = _hook(
        tenant, GRANT_GRAPH_PERMISSIONS="false", LICENSING_MODE="group", TEAMS_PHONE="true"
    )
    assert completed.returncode == 0, completed.stderr
    assert tenant.load()["calls"] == []
    assert "LICENSING_MODE=group" in completed.stdout
    assert "TEAMS_PHONE=true" in completed.stdout
    assert f"grant-graph-permissions.sh --prune {tenant.identity}" in completed.stdout


def test_the_windows_hook_runs_the_same_script_the_same_way() -> None:
    """postprovision.ps1 hands the same script --prune and the identity, and fails azd too."""
    text = (INFRA / "scripts" / "postprovision.ps1").read_text(encoding="utf-8")
    assert "'grant-graph-permissions.sh'" in text
    assert "--prune $principal" in text
    assert "TEAMS_PHONE=$teams" in text
    assert "$env:GRANT_GRAPH_PERMISSIONS -eq 'false'" in text
    assert re.search(r"if \(\$LASTEXITCODE -ne 0\) \{ Fail ", text)


# --- the preprovision check ----------------------------------------------------------------


def _precheck(tenant: Tenant, **env: str) -> subprocess.CompletedProcess[str]:
    return tenant.run(["sh", str(PRECHECK)], **{"AZURE_TENANT_ID": TENANT, **env})


def _graph_reads(tenant: Tenant) -> list[list[str]]:
    return [call for call in tenant.load()["calls"] if call[:1] == ["rest"]]


def _sign_in_as_service_principal(
    tenant: Tenant, *app_roles: str, roles: tuple[str, ...] = ()
) -> str:
    """A pipeline's service principal, signed in to az, holding these Graph app roles."""
    app_id, object_id = str(uuid.uuid4()), str(uuid.uuid4())
    tenant.state["signed_in_as"] = {"type": "servicePrincipal", "name": app_id}
    tenant.state["servicePrincipals"][object_id] = {
        "id": object_id,
        "appId": app_id,
        "displayName": "github-onboarding-deploy",
        "appRoles": [],
        "directoryRoles": list(roles),
    }
    for role in app_roles:
        tenant.state["assignments"].append(
            {
                "id": str(uuid.uuid4()),
                "principalId": object_id,
                "resourceId": tenant.graph_sp,
                "appRoleId": tenant.role_ids[role],
            }
        )
    tenant.save()
    return app_id


def test_the_precheck_lets_a_privileged_admin_through(tenant: Tenant) -> None:
    """Privileged Role Administrator and Cloud Application Administrator: both the grant and
    the API registration are possible; nothing is written."""
    tenant.state["me_roles"] = [PRIVILEGED_ROLE_ADMIN, CLOUD_APP_ADMIN]
    tenant.save()
    completed = _precheck(tenant)
    assert completed.returncode == 0, completed.stderr
    assert "may grant the Graph permissions and create the API's app registration" in (
        completed.stdout
    )
    assert tenant.writes() == []


def test_an_owner_without_entra_roles_is_stopped_before_provisioning(tenant: Tenant) -> None:
    """The defaults need Entra rights: a subscription Owner without them hears at once how to
    split the Graph grant off as an admin's step."""
    tenant.state["me_roles"] = [APPLICATION_DEVELOPER]
    tenant.save()
    completed = _precheck(tenant)
    assert completed.returncode == 1
    assert "may not grant Microsoft Graph application permissions" in completed.stderr
    assert "azd env set GRANT_GRAPH_PERMISSIONS false" in completed.stderr
    assert "azd stops before provisioning anything" in completed.stderr


def test_a_role_administrator_without_app_rights_is_told_about_api_client_id(
    tenant: Tenant,
) -> None:
    """Privileged Role Administrator may grant, not create app registrations: the check
    names the existing-registration fallback; with API_CLIENT_ID set it passes."""
    tenant.state["me_roles"] = [PRIVILEGED_ROLE_ADMIN]
    tenant.save()
    completed = _precheck(tenant)
    assert completed.returncode == 1
    assert "may not create the HTTP front door's app registration" in completed.stderr
    assert "azd env set API_CLIENT_ID" in completed.stderr
    completed = _precheck(tenant, API_CLIENT_ID=str(uuid.uuid4()))
    assert completed.returncode == 0, completed.stderr


def test_nothing_privileged_asked_means_nothing_checked(tenant: Tenant) -> None:
    """GRANT_GRAPH_PERMISSIONS=false and an existing registration: no Entra right is needed,
    and no directory read is made."""
    completed = _precheck(tenant, GRANT_GRAPH_PERMISSIONS="false", API_CLIENT_ID="x")
    assert completed.returncode == 0, completed.stderr
    assert _graph_reads(tenant) == []


def test_a_pipeline_principal_with_the_graph_app_roles_passes(tenant: Tenant) -> None:
    """A service principal's rights are Graph application permissions: it may grant with
    AppRoleAssignment.ReadWrite.All, and register with Application.ReadWrite.OwnedBy too."""
    app_id = _sign_in_as_service_principal(
        tenant, "AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.OwnedBy"
    )
    completed = _precheck(tenant, AZURE_PRINCIPAL_TYPE="ServicePrincipal")
    assert completed.returncode == 0, completed.stderr
    assert f"preprovision: {app_id} may grant" in completed.stdout


def test_a_pipeline_principal_without_them_is_stopped(tenant: Tenant) -> None:
    """Application.ReadWrite.OwnedBy alone cannot assign roles: both steps are refused, the
    first one named."""
    _sign_in_as_service_principal(tenant, "Application.ReadWrite.OwnedBy")
    completed = _precheck(tenant)
    assert completed.returncode == 1
    assert "may not grant Microsoft Graph application permissions" in completed.stderr


def test_a_pipeline_signed_in_as_a_user_type_is_stopped(tenant: Tenant) -> None:
    """AZURE_PRINCIPAL_TYPE=User with a service principal would end in UnmatchedPrincipalType."""
    _sign_in_as_service_principal(tenant, "AppRoleAssignment.ReadWrite.All")
    completed = _precheck(tenant, AZURE_PRINCIPAL_TYPE="User", API_CLIENT_ID="x")
    assert completed.returncode == 1
    assert "UnmatchedPrincipalType" in completed.stderr
    assert "azd env set AZURE_PRINCIPAL_TYPE ServicePrincipal" in completed.stderr


def test_the_precheck_refuses_another_tenant(tenant: Tenant) -> None:
    """az signed in to another tenant than the deployment's: said at once."""
    completed = _precheck(tenant, AZURE_TENANT_ID="22222222-2222-2222-2222-222222222222")
    assert completed.returncode == 1
    assert "az login --tenant 22222222-2222-2222-2222-222222222222" in completed.stderr


def test_unreadable_roles_stop_the_check_with_graphs_answer(tenant: Tenant) -> None:
    """When Graph refuses to list the roles, the check fails with Graph's error, not a guess."""
    tenant.state["refuse_reads"] = True
    tenant.save()
    completed = _precheck(tenant)
    assert completed.returncode == 1
    assert "could not read what admin may do" in completed.stderr
    assert "Authorization_RequestDenied" in completed.stderr


def test_the_precheck_can_be_skipped_for_custom_roles(tenant: Tenant) -> None:
    """PREPROVISION_CHECK=false: nothing is called."""
    completed = _precheck(tenant, PREPROVISION_CHECK="false")
    assert completed.returncode == 0, completed.stderr
    assert tenant.load()["calls"] == []


def test_azd_runs_the_precheck_before_provisioning_and_stops_on_failure() -> None:
    """azure.yaml's preprovision hook runs the check on both platforms, never ignoring it."""
    import yaml

    azure_yaml = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    hook = azure_yaml["hooks"]["preprovision"]
    assert hook["posix"]["run"] == "./infra/scripts/preprovision.sh"
    assert hook["windows"]["run"] == "./infra/scripts/preprovision.ps1"
    for platform in hook.values():
        assert (REPO / platform["run"]).is_file()
        assert platform["continueOnError"] is False
    windows = (INFRA / "scripts" / "preprovision.ps1").read_text(encoding="utf-8")
    assert "'preprovision.sh'" in windows
    assert "exit $LASTEXITCODE" in windows
