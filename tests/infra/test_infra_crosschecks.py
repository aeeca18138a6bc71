"""The infrastructure agrees with the app, the contract, the docs and itself.

Values come from the Bicep syntax tree (infra_support), not from regexes over the
text. Each test names one pair of things that must not drift apart.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_support import (
    INFRA,
    REPO,
    Declaration,
    Expr,
    bicep_tree,
    modules_of,
    params_of,
    resources_of,
    variables_of,
)

from shared import names

QUEUE_TYPE = "Microsoft.Storage/storageAccounts/queueServices/queues"
ROLE_ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
# Built-in role ids (azure-facts.md) and the names their comments must give.
ROLE_NAMES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}


def _resources(module: str) -> list[Declaration]:
    return resources_of(bicep_tree(INFRA / module))


def _of_type(declarations: list[Declaration], resource_type: str) -> list[Declaration]:
    return [d for d in declarations if d.target.split("@")[0] == resource_type]


def _app_settings() -> dict[str, Any]:
    (site,) = _of_type(_resources("modules/functionapp.bicep"), "Microsoft.Web/sites")
    settings = site.body["properties"]["siteConfig"]["appSettings"]
    names_ = [setting["name"] for setting in settings]
    assert len(names_) == len(set(names_)), "an app setting is set twice"
    return {setting["name"]: setting["value"] for setting in settings}


# Stand-ins for what only exists once deployed (module outputs main.bicep passes on).
DEPLOYED_VALUES = {
    "identity.outputs.clientId": "00000000-0000-0000-0000-0000000000c1",
    "storage.outputs.blobEndpoint": "https://stexample.blob.core.windows.net/",
    "storage.outputs.queueEndpoint": "https://stexample.queue.core.windows.net/",
    "storage.outputs.tableEndpoint": "https://stexample.table.core.windows.net/",
    "monitoring.outputs.connectionString": "InstrumentationKey=0000;IngestionEndpoint=https://example/",
}
# Prints the bindings of every function, as the Functions host indexes them.
INDEX_FUNCTIONS = """
import json, function_app
print(json.dumps([json.loads(f.get_function_json()) for f in function_app.app.get_functions()]))
"""


def _deployed_app_settings() -> dict[str, str]:
    """The function app's settings as a default `azd up` sets them, expressions resolved."""
    main = bicep_tree(INFRA / "main.bicep")
    main_params = params_of(main)
    (module,) = [m for m in modules_of(main) if m.target == "modules/functionapp.bicep"]

    def main_value(expression: str) -> str:
        if expression in DEPLOYED_VALUES:
            return DEPLOYED_VALUES[expression]
        default = main_params[expression].default
        return ("true" if default else "false") if isinstance(default, bool) else str(default)

    resolved = {}
    for name, value in _app_settings().items():
        if isinstance(value, Expr):
            text = value.text
            if ternary := re.fullmatch(r"(\w+) \? '(.*)' : '(.*)'", text):
                chosen = main_value(module.body["params"][ternary.group(1)].text) == "true"
                text, value = "", ternary.group(2) if chosen else ternary.group(3)
            elif interpolated := re.fullmatch(r"'(.*)'", text):
                text, value = (
                    "",
                    re.sub(
                        r"\$\{(\w+)\}",
                        lambda m: main_value(module.body["params"][m.group(1)].text),
                        interpolated.group(1),
                    ),
                )
            if text:
                value = main_value(module.body["params"][text].text)
        resolved[name] = value
    return resolved


@pytest.fixture(scope="module")
def function_json() -> list[dict[str, Any]]:
    """function_app's functions, indexed in a fresh interpreter with the Bicep app settings.

    A separate process: the app reads its settings once, at import, and must start
    with exactly what Azure gives it (nothing from this test session leaks in).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(names.STORAGE_CONNECTION) and key not in names.APP_SETTINGS
    }
    env.update(_deployed_app_settings())
    completed = subprocess.run(  # noqa: S603 - our interpreter, fixed code
        [sys.executable, "-c", INDEX_FUNCTIONS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    functions: list[dict[str, Any]] = json.loads(completed.stdout.strip().splitlines()[-1])
    return functions


def _bindings(function_json: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [binding for function in function_json for binding in function["bindings"]]


def _graph_permissions_in_bicep() -> tuple[set[str], set[str]]:
    variables = variables_of(bicep_tree(INFRA / "modules" / "graph-permissions.bicep"))
    return set(variables["alwaysGranted"]), set(variables["grantedToSetUsageLocation"])


def _permissions_table(markdown: Path) -> set[str]:
    """Backticked first-column entries of the table under '## Graph permissions'."""
    text = markdown.read_text(encoding="utf-8")
    section = re.search(r"^## Graph permissions[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"{markdown.name} has no '## Graph permissions' section"
    permissions = set()
    for line in section.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and (match := re.fullmatch(r"`([\w.]+)`", cells[0])):
            permissions.add(match.group(1))
    assert permissions, f"{markdown.name}: no permission in the Graph permissions table"
    return permissions


# --- queues --------------------------------------------------------------------------


def test_bicep_declares_exactly_the_contract_queues() -> None:
    """The queues in storage.bicep are shared.names.ALL_QUEUES, each declared once."""
    queues = [d.body["name"] for d in _of_type(_resources("modules/storage.bicep"), QUEUE_TYPE)]
    assert sorted(queues) == sorted(names.ALL_QUEUES)


def test_bicep_declares_the_request_ledger_table() -> None:
    """The ledger table in storage.bicep is shared.names.TABLE_REQUESTS."""
    tables = _of_type(
        _resources("modules/storage.bicep"),
        "Microsoft.Storage/storageAccounts/tableServices/tables",
    )
    assert [d.body["name"] for d in tables] == [names.TABLE_REQUESTS]
    assert all(d.body.get("parent") == Expr("tableService") for d in tables)


def test_queues_are_top_level_resources_with_a_parent() -> None:
    """Nested child resources are invisible to checkov's parser; `parent:` ones are not."""
    queues = _of_type(_resources("modules/storage.bicep"), QUEUE_TYPE)
    assert queues
    assert all(d.body.get("parent") == Expr("queueService") for d in queues)


def test_the_host_poison_queue_is_declared() -> None:
    """The host moves failed requests to '<queue>-poison' (host.json maxDequeueCount)."""
    host = json.loads((REPO / "host.json").read_text(encoding="utf-8"))
    assert host["extensions"]["queues"]["maxDequeueCount"] >= 1
    assert f"{names.QUEUE_REQUESTS}-poison" == names.QUEUE_POISON
    queues = {d.body["name"] for d in _of_type(_resources("modules/storage.bicep"), QUEUE_TYPE)}
    assert names.QUEUE_POISON in queues


def test_the_function_app_binds_only_declared_queues_over_the_storage_connection(
    function_json: list[dict[str, Any]],
) -> None:
    """function_app.py triggers on user-onboard; every queue it binds exists in Bicep."""
    bindings = _bindings(function_json)
    queue_bindings = [b for b in bindings if "queueName" in b]
    triggers = {b["queueName"] for b in queue_bindings if b["type"] == "queueTrigger"}
    declared = {d.body["name"] for d in _of_type(_resources("modules/storage.bicep"), QUEUE_TYPE)}
    assert triggers == {names.QUEUE_REQUESTS}
    assert {b["queueName"] for b in queue_bindings} <= declared
    assert {b.get("connection") for b in queue_bindings} == {names.STORAGE_CONNECTION}


def test_every_setting_a_binding_references_is_an_app_setting(
    function_json: list[dict[str, Any]],
) -> None:
    """`%NAME%` in a binding (the sweep's schedule) resolves to an app setting in Bicep."""
    referenced = {
        match
        for binding in _bindings(function_json)
        for value in binding.values()
        if isinstance(value, str)
        for match in re.findall(r"%(\w+)%", value)
    }
    assert "SWEEP_SCHEDULE" in referenced
    assert referenced - set(_app_settings()) == set()


# --- app settings --------------------------------------------------------------------


def test_the_app_starts_with_the_settings_bicep_gives_it(
    function_json: list[dict[str, Any]],
) -> None:
    """Importing function_app (which validates every setting) succeeds on Bicep's defaults."""
    assert {f["bindings"][0]["type"] for f in function_json} >= {"queueTrigger", "timerTrigger"}


def test_every_setting_the_app_reads_is_set_in_bicep() -> None:
    """Each name in shared.names.APP_SETTINGS is an app setting of the function app."""
    assert set(names.APP_SETTINGS) - set(_app_settings()) == set()


def test_host_storage_is_identity_based() -> None:
    """AzureWebJobsStorage uses the managed identity and endpoints, never a key."""
    settings = _app_settings()
    prefix = f"{names.STORAGE_CONNECTION}__"
    assert names.STORAGE_CONNECTION not in settings
    assert settings[f"{prefix}credential"] == "managedidentity"
    assert settings[f"{prefix}clientId"] == Expr("identityClientId")
    for service in ("blob", "queue", "table"):
        assert f"{prefix}{service}ServiceUri" in settings
    assert settings["AZURE_CLIENT_ID"] == Expr("identityClientId")
    assert "Authorization=AAD" in settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].text


def test_azd_parameter_defaults_match_the_bicep_defaults() -> None:
    """A `${VAR=default}` in main.parameters.json repeats main.bicep's default exactly."""
    params = params_of(bicep_tree(INFRA / "main.bicep"))
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    mismatched = {}
    for name, entry in mapped["parameters"].items():
        match = re.fullmatch(r"\$\{(\w+)(?:=(.*))?\}", entry["value"])
        assert match, f"{name}: not an azd ${{VARIABLE}} reference"
        if match.group(2) is None:
            continue
        default: object = params[name].default
        if isinstance(default, bool):
            default = "true" if default else "false"
        if str(default) != match.group(2):
            mismatched[name] = (params[name].default, match.group(2))
    assert mismatched == {}


def test_azd_parameters_name_only_main_bicep_params_and_all_required_ones() -> None:
    """main.parameters.json maps existing params and every param without a default."""
    params = params_of(bicep_tree(INFRA / "main.bicep"))
    mapped = set(json.loads((INFRA / "main.parameters.json").read_text())["parameters"])
    assert mapped - set(params) == set()
    assert {name for name, p in params.items() if not p.has_default} - mapped == set()


def test_contract_settings_are_parameters_mapped_from_azd() -> None:
    """Every contract setting but AZURE_CLIENT_ID can be set with `azd env set NAME`."""
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    variables = {re.sub(r"^\$\{(\w+).*", r"\1", entry["value"]) for entry in mapped.values()}
    assert set(names.APP_SETTINGS) - {"AZURE_CLIENT_ID"} - variables == set()


# --- composition -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module", modules_of(bicep_tree(INFRA / "main.bicep")), ids=lambda module: module.name
)
def test_main_passes_each_module_the_params_it_declares(module: Declaration) -> None:
    """No unknown param, no missing required one (what `bicep build` would catch)."""
    declared = params_of(bicep_tree(INFRA / module.target))
    passed = set(module.body.get("params", {}))
    assert passed - set(declared) == set()
    assert {name for name, p in declared.items() if not p.has_default} - passed == set()


def test_the_site_carries_the_azd_service_name_of_azure_yaml() -> None:
    """azd deploys to the resource tagged with azure.yaml's service name."""
    azure_yaml = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    service_name = variables_of(bicep_tree(INFRA / "main.bicep"))["serviceName"]
    assert list(azure_yaml["services"]) == [service_name]
    assert azure_yaml["services"][service_name]["host"] == "function"
    (site,) = _of_type(_resources("modules/functionapp.bicep"), "Microsoft.Web/sites")
    assert "'azd-service-name': serviceName" in site.body["tags"].text


def test_every_tracked_resource_is_tagged() -> None:
    """Resources that take tags get the azd-env-name tags (child resources cannot)."""
    assert "azd-env-name" in variables_of(bicep_tree(INFRA / "main.bicep"))["tags"]
    untagged = [
        f"{path.name}:{d.name}"
        for path in [INFRA / "main.bicep", *sorted((INFRA / "modules").glob("*.bicep"))]
        for d in resources_of(bicep_tree(path))
        if not d.existing
        and d.target.count("/") == 1  # a top-level type, not a child resource
        and not d.target.startswith(("Microsoft.Authorization/", "Microsoft.Graph/"))
        and "tags" not in d.body
    ]
    assert untagged == []


# --- roles ---------------------------------------------------------------------------------


def _role_assignments() -> list[tuple[Declaration, str, str]]:
    """(assignment, variable holding its role id, role name) for each role assignment."""
    tree = bicep_tree(INFRA / "modules" / "roles.bicep")
    variables = variables_of(tree)
    found = []
    for d in _of_type(resources_of(tree), ROLE_ASSIGNMENT_TYPE):
        role = re.fullmatch(
            r"subscriptionResourceId\('Microsoft\.Authorization/roleDefinitions', (\w+)\)",
            d.body["properties"]["roleDefinitionId"].text,
        )
        assert role, f"{d.name}: roleDefinitionId is not a built-in role variable"
        found.append((d, role.group(1), ROLE_NAMES[variables[role.group(1)]]))
    assert found
    return found


def test_role_assignments_are_named_from_scope_principal_and_role() -> None:
    """Each name is guid(scope.id, principalId, roleId) of that very assignment."""
    for d, role_variable, _ in _role_assignments():
        scope, principal = d.body["scope"].text, d.body["properties"]["principalId"].text
        assert d.body["name"] == Expr(f"guid({scope}.id, {principal}, {role_variable})"), d.name


def test_each_role_assignment_is_commented_with_the_role_name() -> None:
    """The comment above every assignment names the built-in role it grants."""
    source = (INFRA / "modules" / "roles.bicep").read_text(encoding="utf-8").splitlines()
    uncommented = []
    for d, _, role_name in _role_assignments():
        line = next(i for i, text in enumerate(source) if text.startswith(f"resource {d.name} "))
        comment = []
        while line > 0 and source[line - 1].startswith("//"):
            line -= 1
            comment.insert(0, source[line])
        if role_name not in " ".join(comment):
            uncommented.append((d.name, role_name))
    assert uncommented == []


def test_the_app_identity_gets_exactly_the_roles_it_needs() -> None:
    """Blob owner, queue and table contributor on storage; metrics publisher on App Insights."""
    granted = {
        (d.body["scope"].text, role_name)
        for d, _, role_name in _role_assignments()
        if d.body["properties"]["principalId"] == Expr("identityPrincipalId")
    }
    assert granted == {
        ("storage", "Storage Blob Data Owner"),
        ("storage", "Storage Queue Data Contributor"),
        ("storage", "Storage Table Data Contributor"),
        ("appInsights", "Monitoring Metrics Publisher"),
    }


# --- Graph permissions -------------------------------------------------------------------


def test_graph_permissions_are_least_privilege() -> None:
    """Read users and SKUs, assign licenses; User.ReadWrite.All only to set usageLocation."""
    always, for_usage_location = _graph_permissions_in_bicep()
    assert always == {
        "User.Read.All",
        "LicenseAssignment.Read.All",
        "LicenseAssignment.ReadWrite.All",
    }
    assert for_usage_location == {"User.ReadWrite.All"}
    (module,) = [
        m for m in modules_of(bicep_tree(INFRA / "main.bicep")) if m.name == "graphPermissions"
    ]
    assert module.condition == "grantGraphPermissions"
    assert module.body["params"]["setUsageLocation"] == Expr("setUsageLocation")


@pytest.mark.parametrize("document", ["README.md", "docs/deploy.md"])
def test_documented_graph_permissions_match_bicep(document: str) -> None:
    """The '## Graph permissions' table lists exactly the permissions Bicep grants."""
    always, for_usage_location = _graph_permissions_in_bicep()
    assert _permissions_table(REPO / document) == always | for_usage_location


def test_the_fallback_script_grants_the_same_permissions_as_bicep() -> None:
    """grant-graph-permissions.sh: the same list, User.ReadWrite.All under the same condition."""
    script = (INFRA / "scripts" / "grant-graph-permissions.sh").read_text(encoding="utf-8")
    always = re.findall(r"^PERMISSIONS=\(([^)]*)\)", script, re.M)
    conditional = re.findall(
        r'^if \[ "\$\{SET_USAGE_LOCATION:-true\}" = "true" \]; then\n\s+PERMISSIONS\+=\(([^)]*)\)',
        script,
        re.M,
    )
    assert len(always) == 1
    assert len(conditional) == 1
    assert (set(always[0].split()), set(conditional[0].split())) == _graph_permissions_in_bicep()
