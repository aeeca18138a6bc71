"""The GitHub Actions workflow (.github/workflows/azure-dev.yml) deploys as `azd pipeline
config` sets it up: OpenID Connect, no secret, tests first, and every setting azure.yaml
hands to the pipeline reaches azd only when it is set.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from infra_support import INFRA, REPO

WORKFLOW = REPO / ".github" / "workflows" / "azure-dev.yml"


def _workflow() -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return workflow


def _steps(job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = _workflow()["jobs"][job]["steps"]
    return steps


def test_the_workflow_signs_in_with_federated_credentials_only() -> None:
    """id-token: write for OIDC, read-only contents, no secret anywhere; azd and az both
    sign in as the repository variables' client id with GitHub's federated credential."""
    workflow = _workflow()
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}
    assert "secrets." not in WORKFLOW.read_text(encoding="utf-8")
    runs = " ".join(step.get("run", "") for step in _steps("deploy"))
    assert '--federated-credential-provider "github"' in runs
    assert '--client-id "$AZURE_CLIENT_ID"' in runs
    (login,) = [s for s in _steps("deploy") if s.get("uses", "").startswith("azure/login@")]
    assert login["with"] == {
        "client-id": "${{ vars.AZURE_CLIENT_ID }}",
        "tenant-id": "${{ vars.AZURE_TENANT_ID }}",
        "subscription-id": "${{ vars.AZURE_SUBSCRIPTION_ID }}",
    }


def test_the_workflow_tests_before_it_provisions_and_deploys() -> None:
    """make test first; then azd provision and azd deploy, without prompts, in that order."""
    workflow = _workflow()
    assert [s.get("run") for s in _steps("test") if "run" in s] == ["make test"]
    assert workflow["jobs"]["deploy"]["needs"] == "test"
    runs = [s["run"] for s in _steps("deploy") if "run" in s]
    assert runs[-2:] == ["azd provision --no-prompt", "azd deploy --no-prompt"]
    assert set(workflow[True]) == {"workflow_dispatch", "push"}  # YAML reads `on` as True


def _export_program() -> str:
    (step,) = [s for s in _steps("deploy") if "REPOSITORY_VARIABLES" in s.get("env", {})]
    assert step["env"]["REPOSITORY_VARIABLES"] == "${{ toJSON(vars) }}"
    match = re.search(r"jq -r '(.*)' <<<", step["run"], re.S)
    assert match, step["run"]
    return match.group(1)


def _exported(repository_variables: dict[str, str]) -> dict[str, str]:
    """What the workflow's export step writes to $GITHUB_ENV for these variables."""
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq (preinstalled on GitHub's runners) is not installed here")
    completed = subprocess.run(  # noqa: S603 - a fixed program from our workflow
        [jq, "-r", _export_program()],
        input=json.dumps(repository_variables),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return dict(
        re.findall(r"^(\w+)<<__AZD_VALUE__\n(.*?)\n__AZD_VALUE__$", completed.stdout, re.M | re.S)
    )


def test_only_variables_that_are_set_reach_azd() -> None:
    """An unset repository variable stays unset (main.parameters.json's default applies);
    the pipeline grants no Graph permission unless told to, and says it is a service
    principal."""
    exported = _exported(
        {"AZURE_ENV_NAME": "onboarding-prod", "VNET_ENABLED": "", "API_CLIENT_ID": "abc"}
    )
    assert exported == {
        "AZURE_ENV_NAME": "onboarding-prod",
        "API_CLIENT_ID": "abc",
        "GRANT_GRAPH_PERMISSIONS": "false",
        "AZURE_PRINCIPAL_TYPE": "ServicePrincipal",
    }
    assert _exported({"GRANT_GRAPH_PERMISSIONS": "true"})["GRANT_GRAPH_PERMISSIONS"] == "true"


def test_a_multi_line_or_json_variable_survives_the_export() -> None:
    """AZURE_TAGS is JSON; it reaches azd whole."""
    tags = '{"costCenter": "4711", "owner": "identity team"}'
    assert _exported({"AZURE_TAGS": tags})["AZURE_TAGS"] == tags


def test_azure_yaml_hands_the_pipeline_only_settings_main_parameters_maps() -> None:
    """Each of azure.yaml's pipeline.variables is an azd variable of main.parameters.json."""
    azure_yaml = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    assert azure_yaml["pipeline"]["provider"] == "github"
    variables = azure_yaml["pipeline"]["variables"]
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    azd_variables = {
        re.sub(r"^\$\{(\w+).*", r"\1", entry["value"])
        for entry in mapped["parameters"].values()
        if isinstance(entry["value"], str)
    }
    assert set(variables) - azd_variables == set()
    assert {"GRANT_GRAPH_PERMISSIONS", "API_CLIENT_ID", "AZURE_TAGS"} <= set(variables)
