"""The HTTP front door's infrastructure: the API's app registration with its two app roles
(infra/modules/api-registration.bicep), who holds them, the settings the app validates
tokens with (API_AUDIENCE, API_TENANT_ID), and App Service built-in authentication in
front of it (functionapp.bicep).
"""

from __future__ import annotations

import json
import re
from typing import Any

from infra_support import (
    INFRA,
    Declaration,
    Expr,
    bicep_tree,
    evaluate,
    modules_of,
    params_of,
    resources_of,
    variable_nodes_of,
)

from shared import names

REGISTRATION = bicep_tree(INFRA / "modules" / "api-registration.bicep")
MAIN = bicep_tree(INFRA / "main.bicep")


def _resource(tree: Any, name: str) -> Declaration:
    (found,) = [d for d in resources_of(tree) if d.name == name]
    return found


def _roles() -> dict[str, dict[str, Any]]:
    roles = _resource(REGISTRATION, "api").body["appRoles"]
    return {role["value"]: role for role in roles}


def test_the_api_declares_the_two_app_roles_of_the_contract() -> None:
    """Onboarding.Submit for applications only; Onboarding.Read for applications and users
    (operators), both enabled, with stable ids."""
    roles = _roles()
    assert set(roles) == {"Onboarding.Submit", "Onboarding.Read"}
    assert roles["Onboarding.Submit"]["allowedMemberTypes"] == ["Application"]
    assert roles["Onboarding.Read"]["allowedMemberTypes"] == ["Application", "User"]
    assert all(role["isEnabled"] is True for role in roles.values())
    assert roles["Onboarding.Submit"]["id"] == Expr("submitRoleId")
    assert roles["Onboarding.Read"]["id"] == Expr("readRoleId")
    # guid() of fixed inputs: the ids survive re-deployment, and assignments with them.
    variables = variable_nodes_of(REGISTRATION)
    ids = {name: (variables[name].text or b"").decode() for name in ("submitRoleId", "readRoleId")}
    assert ids == {
        "submitRoleId": "guid(uniqueName, 'Onboarding.Submit')",
        "readRoleId": "guid(uniqueName, 'Onboarding.Read')",
    }


def test_the_api_issues_v2_tokens_for_this_tenant_only() -> None:
    """requestedAccessTokenVersion 2 (aud = client id), single tenant, an identifier URI of
    a format Entra ID's identifier URI restrictions accept."""
    api = _resource(REGISTRATION, "api")
    assert api.target == "Microsoft.Graph/applications@v1.0"
    assert api.body["api"] == {"requestedAccessTokenVersion": 2}
    assert api.body["signInAudience"] == "AzureADMyOrg"
    assert api.body["uniqueName"] == Expr("uniqueName")
    (module,) = [m for m in modules_of(MAIN) if m.target == "modules/api-registration.bicep"]
    uri = module.body["params"]["identifierUri"].text
    assert re.fullmatch(r"'api://\$\{tenant\(\)\.tenantId\}/[\w$.{}-]+'", uri), uri


def test_only_callers_holding_a_role_get_tokens() -> None:
    """The service principal requires an app role assignment before Entra ID issues a token."""
    principal = _resource(REGISTRATION, "apiPrincipal")
    assert principal.body == {"appId": Expr("api.appId"), "appRoleAssignmentRequired": True}


def _assignments(**params: Any) -> dict[str, Any]:
    values: dict[str, Any] = {name: p.default for name, p in params_of(REGISTRATION).items()}
    values.update(params)
    for name, node in variable_nodes_of(REGISTRATION).items():
        if name == "submitters":
            values[name] = evaluate(node, values)
    return values


def test_hr_service_principals_get_submit_and_operators_get_read() -> None:
    """Onboarding.Submit to each HR service principal (an Application role cannot go to a
    group or user); Onboarding.Read to every operator principal."""
    values = _assignments(
        hrPrincipals=[
            {"principalId": "hr-1", "principalType": "ServicePrincipal"},
            {"principalId": "hr-group", "principalType": "Group"},
        ]
    )
    assert values["submitters"] == [{"principalId": "hr-1", "principalType": "ServicePrincipal"}]
    submit = _resource(REGISTRATION, "submitAssignments")
    read = _resource(REGISTRATION, "readAssignments")
    assert str(submit.loop).startswith("[for hr in submitters:")
    assert str(read.loop).startswith("[for operator in operatorPrincipals:")
    assert submit.body == {
        "principalId": Expr("hr.principalId"),
        "resourceId": Expr("apiPrincipal.id"),
        "appRoleId": Expr("submitRoleId"),
    }
    assert read.body == {
        "principalId": Expr("operator.principalId"),
        "resourceId": Expr("apiPrincipal.id"),
        "appRoleId": Expr("readRoleId"),
    }
    (module,) = [m for m in modules_of(MAIN) if m.target == "modules/api-registration.bicep"]
    assert module.body["params"]["hrPrincipals"] == Expr("hrPrincipals")
    assert module.body["params"]["operatorPrincipals"] == Expr("operatorPrincipals")


def test_an_existing_registration_replaces_the_one_bicep_would_create() -> None:
    """API_CLIENT_ID set: no registration is created and the app's audience is that id;
    empty (the default): Bicep creates it and the audience is its client id."""
    (module,) = [m for m in modules_of(MAIN) if m.target == "modules/api-registration.bicep"]
    assert module.condition == "empty(apiClientId)"
    assert params_of(MAIN)["apiClientId"].default == ""
    nodes = variable_nodes_of(MAIN)
    assert (nodes["apiAudience"].text or b"").decode() == (
        "empty(apiClientId) ? apiRegistration.outputs.clientId : apiClientId"
    )
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    assert mapped["parameters"]["apiClientId"]["value"] == "${API_CLIENT_ID}"


def test_no_output_feeds_back_into_a_parameter_it_does_not_come_from() -> None:
    """azd stores outputs as environment variables: an output named like a mapped variable
    (API_CLIENT_ID) would turn the registration Bicep made into an "existing" one."""
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    variable_of = {
        re.sub(r"^\$\{(\w+).*", r"\1", entry["value"]): name
        for name, entry in mapped["parameters"].items()
        if isinstance(entry["value"], str)
    }
    outputs = re.findall(
        r"^output (\w+) \w+ = (.+)$", (INFRA / "main.bicep").read_text(encoding="utf-8"), re.M
    )
    assert outputs
    fed_back = {
        name: value for name, value in outputs if name in variable_of and value != variable_of[name]
    }
    assert fed_back == {}


def test_the_app_gets_the_audience_and_tenant_it_validates_tokens_with() -> None:
    """API_AUDIENCE is the API's client id and API_TENANT_ID the deployment's tenant."""
    assert {"API_AUDIENCE", "API_TENANT_ID"} <= set(names.APP_SETTINGS)
    (app,) = [m for m in modules_of(MAIN) if m.target == "modules/functionapp.bicep"]
    assert app.body["params"]["apiAudience"] == Expr("apiAudience")
    assert app.body["params"]["apiTenantId"] == Expr("tenant().tenantId")
    (site,) = [
        d
        for d in resources_of(bicep_tree(INFRA / "modules" / "functionapp.bicep"))
        if d.target.startswith("Microsoft.Web/sites@")
    ]
    settings = {s["name"]: s["value"] for s in site.body["properties"]["siteConfig"]["appSettings"]}
    assert settings["API_AUDIENCE"] == Expr("apiAudience")
    assert settings["API_TENANT_ID"] == Expr("apiTenantId")


def test_built_in_authentication_refuses_other_tokens_before_the_app_runs() -> None:
    """Easy Auth (on by default): authentication required, 401 otherwise, Entra ID with the
    tenant's v2 issuer and the API as the only audience; no token store, HTTPS only."""
    auth = _resource(bicep_tree(INFRA / "modules" / "functionapp.bicep"), "authSettings")
    assert auth.target == "Microsoft.Web/sites/config@2024-04-01"
    assert auth.condition == "apiEasyAuthEnabled"
    assert auth.body["name"] == "authsettingsV2"
    assert auth.body["parent"] == Expr("functionApp")
    properties = auth.body["properties"]
    assert properties["platform"] == {"enabled": True}
    assert properties["globalValidation"] == {
        "requireAuthentication": True,
        "unauthenticatedClientAction": "Return401",
    }
    assert properties["httpSettings"] == {"requireHttps": True}
    aad = properties["identityProviders"]["azureActiveDirectory"]
    assert aad["enabled"] is True
    assert aad["registration"] == {
        "openIdIssuer": Expr("'${environment().authentication.loginEndpoint}${apiTenantId}/v2.0'"),
        "clientId": Expr("apiAudience"),
    }
    assert aad["validation"] == {"allowedAudiences": [Expr("apiAudience")]}
    assert properties["login"] == {"tokenStore": {"enabled": False}}
    assert params_of(MAIN)["apiEasyAuthEnabled"].default is True
