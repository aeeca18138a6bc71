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
from typing import Any

import pytest
import yaml
from infra_support import (
    INFRA,
    REPO,
    Declaration,
    Expr,
    bicep_tree,
    evaluate,
    modules_of,
    param_decorators_of,
    params_of,
    resources_of,
    variable_nodes_of,
    variables_of,
)

from shared import names

QUEUE_TYPE = "Microsoft.Storage/storageAccounts/queueServices/queues"
ROLE_ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
# Built-in role ids (docs/azure-facts.md, "Built-in role ids") and the names their
# comments must give.
ROLE_NAMES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a": "Storage Queue Data Message Sender",
    "8a0f0c08-91a1-4084-bc3d-661d67233fed": "Storage Queue Data Message Processor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "43d0d8ad-25c7-4714-9337-8ba259a9fe05": "Monitoring Reader",
    "d5a91429-5739-47e2-a06b-3470a27159e7": "EventGrid Data Sender",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
}
ROLES_FILE = "modules/roles.bicep"


def _files_with_role_assignments() -> list[str]:
    return [
        path.relative_to(INFRA).as_posix()
        for path in [INFRA / "main.bicep", *sorted((INFRA / "modules").glob("*.bicep"))]
        if _of_type(resources_of(bicep_tree(path)), ROLE_ASSIGNMENT_TYPE)
    ]


# main.parameters.json values that are literals, not `${VARIABLE}` references: the list of
# Event Grid consumers is edited in that file (docs/deploy.md "Adding an event consumer").
LITERAL_PARAMETERS = {"eventConsumers"}
# App settings Bicep derives instead of taking from azd.
DERIVED_SETTINGS = {"AZURE_CLIENT_ID", "API_AUDIENCE", "API_TENANT_ID"}
# Contract v1.1 settings: each an app setting, a main.bicep param with this default,
# mapped from the azd variable of the same name.
CONTRACT_V11_SETTINGS = {
    "LICENSE_LEAD_TIME": "P1D",
    "CLOUD_SYNC_JOB": "",
    "LICENSING_MODE": "direct",
    "LICENSE_GROUPS": "",
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
    "apiRegistration.outputs.clientId": "00000000-0000-0000-0000-0000000000a1",
    "tenant().tenantId": "00000000-0000-0000-0000-0000000000d1",
}
# Prints the name and bindings of every function, as the Functions host indexes them.
INDEX_FUNCTIONS = """
import json, function_app
print(json.dumps([{"name": f.get_function_name(), **json.loads(f.get_function_json())}
                  for f in function_app.app.get_functions()]))
"""


def _deployed_app_settings() -> dict[str, str]:
    """The function app's settings as a default `azd up` sets them, expressions resolved."""
    main = bicep_tree(INFRA / "main.bicep")
    main_params = params_of(main)
    main_variables = variables_of(main)
    (module,) = [m for m in modules_of(main) if m.target == "modules/functionapp.bicep"]

    def main_value(expression: str) -> str:
        if expression in DEPLOYED_VALUES:
            return DEPLOYED_VALUES[expression]
        if isinstance(main_variables.get(expression), Expr):
            return main_value(main_variables[expression].text)
        if choice := re.fullmatch(r"empty\((\w+)\) \? ([\w.]+) : ([\w.]+)", expression):
            chosen = main_params[choice.group(1)].default == ""
            return main_value(choice.group(2) if chosen else choice.group(3))
        if choice := re.fullmatch(r"(\w+) \? ([\w.]+) : ([\w.]+)", expression):
            chosen = main_params[choice.group(1)].default is True
            return main_value(choice.group(2) if chosen else choice.group(3))
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
        if name in LITERAL_PARAMETERS:
            assert entry["value"] == params[name].default, name
            continue
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


def test_every_main_parameter_can_be_set_and_is_documented() -> None:
    """Each main.bicep param is mapped in main.parameters.json (from an azd variable, or the
    literal consumer list), and docs/deploy.md names each azd variable."""
    params = params_of(bicep_tree(INFRA / "main.bicep"))
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    assert set(params) - set(mapped["parameters"]) == set()
    deploy = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    azd_set = {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_PRINCIPAL_ID"}  # azd's own
    undocumented = {
        variable
        for name, entry in mapped["parameters"].items()
        if name not in LITERAL_PARAMETERS
        and (variable := re.sub(r"^\$\{(\w+).*", r"\1", entry["value"])) not in azd_set
        and f"`{variable}`" not in deploy
    }
    assert undocumented == set()
    assert "`eventConsumers`" in deploy


def test_contract_settings_are_parameters_mapped_from_azd() -> None:
    """Every contract setting but AZURE_CLIENT_ID can be set with `azd env set NAME`."""
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    variables = {
        re.sub(r"^\$\{(\w+).*", r"\1", entry["value"])
        for name, entry in mapped.items()
        if name not in LITERAL_PARAMETERS
    }
    assert set(names.APP_SETTINGS) - DERIVED_SETTINGS - variables == set()


@pytest.mark.parametrize(("setting", "default"), CONTRACT_V11_SETTINGS.items())
def test_contract_v11_settings_are_set_with_their_defaults(setting: str, default: str) -> None:
    """A v1.1 setting is an app setting fed by a main.bicep param with the contract default,
    which `azd env set <SETTING>` overrides."""
    deployed = _deployed_app_settings()
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    (param,) = [
        name
        for name, entry in mapped.items()
        if name not in LITERAL_PARAMETERS
        and re.fullmatch(rf"\$\{{{setting}(=.*)?\}}", entry["value"])
    ]
    assert deployed[setting] == default
    assert params_of(bicep_tree(INFRA / "main.bicep"))[param].default == default


# Contract v1.2 settings with a plain default (EVENT_GRID_TOPIC_ENDPOINT, API_AUDIENCE and
# API_TENANT_ID depend on what Bicep creates: tested with the topic and the front door).
CONTRACT_V12_SETTINGS = {
    "LEDGER_RETENTION": "P90D",
    "TEAMS_PHONE": "false",
    "TEAMS_READY_TIMEOUT": "PT24H",
}


def _rendered(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


@pytest.mark.parametrize(("setting", "default"), CONTRACT_V12_SETTINGS.items())
def test_contract_v12_settings_are_set_with_their_defaults(setting: str, default: str) -> None:
    """A v1.2 setting is an app setting fed by a main.bicep param whose default is the
    contract's, and `azd env set <SETTING>` (same name) overrides it."""
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    (param,) = [
        name
        for name, entry in mapped.items()
        if name not in LITERAL_PARAMETERS
        and re.fullmatch(rf"\$\{{{setting}=(.*)\}}", entry["value"])
    ]
    assert mapped[param]["value"] == f"${{{setting}={default}}}"
    assert _rendered(params_of(bicep_tree(INFRA / "main.bicep"))[param].default) == default
    assert _deployed_app_settings()[setting] == default


def test_scale_is_mapped_from_azd_and_bounded_by_microsofts_limits() -> None:
    """MAXIMUM_INSTANCE_COUNT within Flex Consumption's 1..1000, INSTANCE_MEMORY_MB one of its
    sizes; both reach the plan's scaleAndConcurrency."""
    main = bicep_tree(INFRA / "main.bicep")
    decorators = param_decorators_of(main)
    assert decorators["maximumInstanceCount"]["minValue"] == 1
    assert decorators["maximumInstanceCount"]["maxValue"] == 1000
    assert decorators["instanceMemoryMB"]["allowed"] == [512, 2048, 4096]
    params = params_of(main)
    assert 1 <= params["maximumInstanceCount"].default <= 1000
    assert params["instanceMemoryMB"].default in decorators["instanceMemoryMB"]["allowed"]
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert mapped["maximumInstanceCount"]["value"].startswith("${MAXIMUM_INSTANCE_COUNT=")
    assert mapped["instanceMemoryMB"]["value"].startswith("${INSTANCE_MEMORY_MB=")
    (site,) = _of_type(_resources("modules/functionapp.bicep"), "Microsoft.Web/sites")
    scale = site.body["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale == {
        "maximumInstanceCount": Expr("maximumInstanceCount"),
        "instanceMemoryMB": Expr("instanceMemoryMB"),
    }
    (module,) = [m for m in modules_of(main) if m.target == "modules/functionapp.bicep"]
    for name in scale:
        assert module.body["params"][name] == Expr(name)


def test_the_scale_out_default_is_the_one_the_benchmark_justifies() -> None:
    """One default everywhere (Bicep, azd's parameters, deploy.md's "Scale"), and the Bicep
    comment says where it comes from."""
    source = (INFRA / "main.bicep").read_text(encoding="utf-8")
    default = params_of(bicep_tree(INFRA / "main.bicep"))["maximumInstanceCount"].default
    note = source[: source.index("param maximumInstanceCount")][-1500:]
    assert f"Default {default}, from the big-day benchmark" in note
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert mapped["maximumInstanceCount"]["value"] == f"${{MAXIMUM_INSTANCE_COUNT={default}}}"
    deploy = (INFRA.parent / "docs" / "deploy.md").read_text(encoding="utf-8")
    scale = deploy[deploy.index("### Scale") :]
    assert f"`MAXIMUM_INSTANCE_COUNT` defaults to {default}" in scale[:3000]


def test_licensing_mode_allows_only_the_contract_modes() -> None:
    """LICENSING_MODE is `direct` or `group`: Bicep refuses anything else before the app does."""
    source = (INFRA / "main.bicep").read_text(encoding="utf-8")
    allowed = re.search(r"@allowed\(\[([^\]]*)\]\)\s*param licensingMode string", source)
    assert allowed, "licensingMode has no @allowed list"
    assert re.findall(r"'(\w+)'", allowed.group(1)) == ["direct", "group"]


def test_intake_can_be_paused_with_the_hosts_function_switch(
    function_json: list[dict[str, Any]],
) -> None:
    """AzureWebJobs.<queue trigger>.Disabled names the function that triggers on user-onboard."""
    (trigger,) = [f["name"] for f in function_json if f["bindings"][0]["type"] == "queueTrigger"]
    settings = _app_settings()
    assert settings[f"AzureWebJobs.{trigger}.Disabled"] == Expr("intakePaused ? 'true' : 'false'")
    assert _deployed_app_settings()[f"AzureWebJobs.{trigger}.Disabled"] == "false"


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


def test_azure_yaml_requires_an_azd_that_honours_funcignore_and_object_parameters() -> None:
    """azd packages with .funcignore from 1.18.0 (older ones would ship tests and tooling),
    and passes AZURE_TAGS' JSON to the object parameter from 1.23.4."""
    azure_yaml = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    assert azure_yaml["requiredVersions"] == {"azd": ">= 1.23.4"}
    assert (REPO / ".funcignore").is_file()


def test_the_postprovision_hook_grants_graph_and_stops_azd_when_it_fails() -> None:
    """Both platforms run a script that exists; a failing hook is never ignored."""
    azure_yaml = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    hook = azure_yaml["hooks"]["postprovision"]
    assert set(hook) == {"posix", "windows"}
    for platform in hook.values():
        assert (REPO / platform["run"]).is_file(), platform["run"]
        assert platform.get("continueOnError", False) is False
    assert hook["posix"]["shell"] == "sh"
    assert hook["windows"]["shell"] == "pwsh"


# Resource types that take no tags, each for a reason: role assignments and Graph objects
# are not ARM-tracked resources (Graph's `tags` are plain strings); the others are child
# resources, which inherit their parent's.
UNTAGGED_TYPES = {
    "Microsoft.Authorization/roleAssignments",
    "Microsoft.Graph/applications",
    "Microsoft.Graph/servicePrincipals",
    "Microsoft.Graph/appRoleAssignedTo",
    "Microsoft.Storage/storageAccounts/blobServices",
    "Microsoft.Storage/storageAccounts/blobServices/containers",
    "Microsoft.Storage/storageAccounts/queueServices",
    "Microsoft.Storage/storageAccounts/queueServices/queues",
    "Microsoft.Storage/storageAccounts/tableServices",
    "Microsoft.Storage/storageAccounts/tableServices/tables",
    "Microsoft.Web/sites/config",
    "Microsoft.EventGrid/topics/eventSubscriptions",
    "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
}


def _all_declarations() -> list[tuple[str, Declaration]]:
    return [
        (path.relative_to(INFRA).as_posix(), d)
        for path in [INFRA / "main.bicep", *sorted((INFRA / "modules").glob("*.bicep"))]
        for d in resources_of(bicep_tree(path))
    ]


def test_every_resource_carries_the_merged_tags() -> None:
    """Walking every resource declaration: each one that takes tags has the module's `tags`
    (alone, or with a tag of its own added), and nothing else is left untagged."""
    untagged, unknown = [], []
    for file, d in _all_declarations():
        kind = d.target.split("@")[0]
        if d.existing or kind in UNTAGGED_TYPES:
            continue
        tags = d.body.get("tags")
        text = tags.text if isinstance(tags, Expr) else None
        if text != "tags" and not (text or "").startswith("union(tags, "):
            untagged.append(f"{file}:{d.name}")
    assert untagged == []
    declared = {d.target.split("@")[0] for _, d in _all_declarations()}
    unknown = sorted(UNTAGGED_TYPES - declared)
    assert unknown == [], "UNTAGGED_TYPES names a type no file declares"


def test_every_module_gets_the_merged_tags_from_main() -> None:
    """Each module that takes `tags` gets main's `tags`, which adds AZURE_TAGS to azd's."""
    main = bicep_tree(INFRA / "main.bicep")
    for module in modules_of(main):
        declared = params_of(bicep_tree(INFRA / module.target))
        if "tags" in declared:
            assert module.body["params"]["tags"] == Expr("tags"), module.name
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    assert mapped["parameters"]["extraTags"]["value"] == "${AZURE_TAGS}"
    assert params_of(main)["extraTags"].default == {}


def test_azure_tags_are_merged_and_cannot_replace_azds_own() -> None:
    """AZURE_TAGS {"costCenter": ...} lands on every resource; an azd-env-name in it loses to
    the environment's (azd finds its resources by that tag)."""
    main = bicep_tree(INFRA / "main.bicep")
    node = variable_nodes_of(main)["tags"]
    extra = {"costCenter": "4711", "owner": "identity", "azd-env-name": "someone-else"}
    merged = evaluate(node, {"extraTags": extra, "environmentName": "onboarding-prod"})
    assert merged == {"costCenter": "4711", "owner": "identity", "azd-env-name": "onboarding-prod"}
    assert evaluate(node, {"extraTags": {}, "environmentName": "dev"}) == {"azd-env-name": "dev"}


def test_an_existing_log_analytics_workspace_replaces_the_new_one() -> None:
    """LOG_ANALYTICS_WORKSPACE_ID set: no workspace is created and Application Insights
    writes to that one; empty (default): a new one."""
    tree = bicep_tree(INFRA / "modules" / "monitoring.bicep")
    (workspace,) = _of_type(resources_of(tree), "Microsoft.OperationalInsights/workspaces")
    assert workspace.condition == "empty(logAnalyticsWorkspaceId)"
    (insights,) = _of_type(resources_of(tree), "Microsoft.Insights/components")
    assert insights.body["properties"]["WorkspaceResourceId"] == Expr(
        "empty(logAnalyticsWorkspaceId) ? logAnalytics.id : logAnalyticsWorkspaceId"
    )
    main = bicep_tree(INFRA / "main.bicep")
    (module,) = [m for m in modules_of(main) if m.name == "monitoring"]
    assert module.body["params"]["logAnalyticsWorkspaceId"] == Expr("logAnalyticsWorkspaceId")
    assert params_of(main)["logAnalyticsWorkspaceId"].default == ""


# --- roles ---------------------------------------------------------------------------------


def _role_assignments(file: str = ROLES_FILE) -> list[tuple[Declaration, str, str]]:
    """(assignment, variable holding its role id, role name) for each role assignment."""
    tree = bicep_tree(INFRA / file)
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


def test_every_module_that_assigns_roles_is_checked() -> None:
    """The role tests below cover every file with a role assignment."""
    assert set(_files_with_role_assignments()) == {ROLES_FILE, "modules/eventgrid.bicep"}


@pytest.mark.parametrize("file", _files_with_role_assignments())
def test_role_assignments_are_named_from_scope_principal_and_role(file: str) -> None:
    """Each name is guid(scope.id, principalId, roleId) of that very assignment; for the
    identity of a resource created in the same deployment, whose principal id is not known
    at its start (as Bicep requires of a name), that resource's id stands in."""
    for d, role_variable, _ in _role_assignments(file):
        scope, principal = d.body["scope"].text, d.body["properties"]["principalId"].text
        principal = re.sub(r"^(\w+)\.identity\.principalId$", r"\1.id", principal)
        assert d.body["name"] == Expr(f"guid({scope}.id, {principal}, {role_variable})"), d.name


@pytest.mark.parametrize("file", _files_with_role_assignments())
def test_role_assignment_names_are_known_at_the_start_of_the_deployment(file: str) -> None:
    """No name reads a value only known once deployed (an identity, a property, a module
    output): Bicep refuses those in a name (BCP120)."""
    runtime = re.compile(r"\.(identity|properties|outputs)\.")
    assert [
        d.name for d, _, _ in _role_assignments(file) if runtime.search(d.body["name"].text)
    ] == []


@pytest.mark.parametrize("file", _files_with_role_assignments())
def test_each_role_assignment_is_commented_with_the_role_name(file: str) -> None:
    """The comment above every assignment names the built-in role it grants."""
    source = (INFRA / file).read_text(encoding="utf-8").splitlines()
    uncommented = []
    for d, _, role_name in _role_assignments(file):
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


def _grantee(d: Declaration) -> str:
    """Whom an assignment is for: the principal expression, or the array a loop runs over."""
    if d.loop:
        match = re.match(r"\[for \w+ in (\w+):", d.loop)
        assert match, d.loop
        return match.group(1)
    return str(d.body["properties"]["principalId"].text)


def _granted_to(grantee: str) -> set[tuple[str, str]]:
    return {
        (d.body["scope"].text, role_name)
        for d, _, role_name in _role_assignments()
        if _grantee(d) == grantee
    }


def test_hr_systems_get_their_two_queues_only() -> None:
    """HR systems send to user-onboard; those without an Event Grid queue of their own read
    (and delete) user-onboard-events."""
    assert _granted_to("hrPrincipals") == {("requestsQueue", "Storage Queue Data Message Sender")}
    assert _granted_to("hrEventsQueueReaders") == {
        ("eventsQueue", "Storage Queue Data Message Processor")
    }


def test_operators_get_the_ledger_the_poison_and_intake_queues_and_monitoring() -> None:
    """The request view and replay (ledger, poison, re-posting) and the workbook."""
    assert _granted_to("operatorPrincipals") == {
        ("ledgerTable", "Storage Table Data Contributor"),
        ("poisonQueue", "Storage Queue Data Message Processor"),
        ("requestsQueue", "Storage Queue Data Message Sender"),
        ("appInsights", "Monitoring Reader"),
        ("workbook", "Monitoring Reader"),
    }


def test_the_deployer_gets_the_queues_of_the_walkthrough_only() -> None:
    """Post a test request, read the events, replay a poisoned message (docs/deploy.md)."""
    assert _granted_to("deployerPrincipalId") == {
        ("requestsQueue", "Storage Queue Data Message Sender"),
        ("eventsQueue", "Storage Queue Data Message Processor"),
        ("poisonQueue", "Storage Queue Data Message Processor"),
    }
    assert {
        d.condition for d, _, _ in _role_assignments() if _grantee(d) == "deployerPrincipalId"
    } == {"!empty(deployerPrincipalId)"}


def test_nothing_but_the_app_identity_is_granted_account_wide() -> None:
    """Every other principal gets one queue, the table, or a monitoring resource."""
    account_wide = {
        _grantee(d) for d, _, _ in _role_assignments() if d.body["scope"] == Expr("storage")
    }
    assert account_wide == {"identityPrincipalId"}


def test_role_scopes_are_the_queues_and_table_storage_declares() -> None:
    """The `existing` queue and table in roles.bicep are the contract's, under the account."""
    expected = {
        "requestsQueue": (QUEUE_TYPE, names.QUEUE_REQUESTS, "queueService"),
        "poisonQueue": (QUEUE_TYPE, names.QUEUE_POISON, "queueService"),
        "eventsQueue": (QUEUE_TYPE, names.QUEUE_EVENTS, "queueService"),
        "ledgerTable": (
            "Microsoft.Storage/storageAccounts/tableServices/tables",
            names.TABLE_REQUESTS,
            "tableService",
        ),
        "queueService": ("Microsoft.Storage/storageAccounts/queueServices", "default", "storage"),
        "tableService": ("Microsoft.Storage/storageAccounts/tableServices", "default", "storage"),
    }
    existing = {
        d.name: (d.target.split("@")[0], d.body["name"], d.body.get("parent"))
        for d in _resources("modules/roles.bicep")
        if d.existing
    }
    assert {name: existing.get(name) for name in expected} == {
        name: (kind, name_, Expr(parent)) for name, (kind, name_, parent) in expected.items()
    }
    declared = {d.body["name"] for d in _of_type(_resources("modules/storage.bicep"), QUEUE_TYPE)}
    assert {existing[q][1] for q in ("requestsQueue", "poisonQueue", "eventsQueue")} <= declared


def test_hr_and_operator_principals_keep_the_type_they_are_given() -> None:
    """Each assignment takes its principalType from the principal, set in main.bicep."""
    loops = [d for d, _, _ in _role_assignments() if d.loop]
    assert loops
    for d in loops:
        item = re.match(r"\[for (\w+) in", str(d.loop))
        assert item, d.loop
        assert d.body["properties"]["principalType"] == Expr(f"{item.group(1)}.principalType")
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    assert "principalType: hrPrincipalType" in main
    assert "principalType: operatorPrincipalType" in main
    (roles,) = [m for m in modules_of(bicep_tree(INFRA / "main.bicep")) if m.name == "roles"]
    assert roles.body["params"]["workbookName"] == Expr("alerts.outputs.workbookName")
