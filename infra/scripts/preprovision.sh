#!/bin/sh
# azd preprovision hook: runs before `azd provision` (and `azd up`) changes anything, with
# the environment's values exported. It stops azd at once, saying what to do instead,
# when the principal signed in to az could not finish what this provision will ask of it:
#   - GRANT_GRAPH_PERMISSIONS=true (the default): granting the app's identity its Microsoft
#     Graph application permissions (the postprovision hook) needs Privileged Role
#     Administrator or Global Administrator, or for a service principal the Graph
#     application permission AppRoleAssignment.ReadWrite.All;
#   - API_CLIENT_ID empty (the default): creating the HTTP front door's app registration
#     and assigning its roles (Bicep, Microsoft Graph extension) needs Cloud Application
#     Administrator, Application Administrator or Global Administrator, or for a service
#     principal Application.ReadWrite.All (or .OwnedBy) and AppRoleAssignment.ReadWrite.All.
# Without this check a subscription Owner who lacks the Entra role would learn it only
# after the infrastructure is provisioned. It reads the directory roles that are active
# now (an eligible PIM role counts only once activated). Rights granted another way (a
# custom directory role) are not seen: PREPROVISION_CHECK=false skips the check.
# docs/deploy.md, "Who may deploy".
set -eu

GRAPH=https://graph.microsoft.com/v1.0
GRAPH_APP_ID=00000003-0000-0000-c000-000000000000
# Directory role template ids (learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).
GLOBAL_ADMIN=62e90394-69f5-4237-9190-012177145e10
PRIVILEGED_ROLE_ADMIN=e8611ab8-c189-46e8-94e1-60213ab1f814
CLOUD_APP_ADMIN=158c047a-c907-4556-b7ef-446551a6b5f7
APP_ADMIN=9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3

fail() {
  cat >&2 <<MSG

ERROR: azd stops before provisioning anything: $1
$2
Rights you hold another way (a custom directory role): PREPROVISION_CHECK=false skips
this check. See docs/deploy.md, "Who may deploy".
MSG
  exit 1
}

if [ "${PREPROVISION_CHECK:-true}" = "false" ]; then
  echo "preprovision: check skipped (PREPROVISION_CHECK=false)"
  exit 0
fi
grant=${GRANT_GRAPH_PERMISSIONS:-true}
register=false
[ -n "${API_CLIENT_ID:-}" ] || register=true

command -v az >/dev/null 2>&1 || fail "the Azure CLI (az) is not installed" \
  "The hooks grant the Graph permissions with it: install it and run az login."
# One tab-separated row (a list of scalars would print one per line).
account=$(az account show --query "[[tenantId, user.type, user.name]]" -o tsv 2>/dev/null) ||
  fail "the Azure CLI is not signed in" "Run az login (az login --tenant <tenant id>), as the same principal as azd."
tenant=$(printf '%s\n' "$account" | cut -f1)
kind=$(printf '%s\n' "$account" | cut -f2)
name=$(printf '%s\n' "$account" | cut -f3)
if [ -n "${AZURE_TENANT_ID:-}" ] && [ "$tenant" != "$AZURE_TENANT_ID" ]; then
  fail "the Azure CLI is signed in to tenant $tenant, the deployment is in $AZURE_TENANT_ID" \
    "Run az login --tenant $AZURE_TENANT_ID."
fi
if [ "$kind" = "servicePrincipal" ] && [ "${AZURE_PRINCIPAL_TYPE:-}" = "User" ]; then
  fail "AZURE_PRINCIPAL_TYPE is User, but the signed-in principal is a service principal" \
    "Role assignments would fail with UnmatchedPrincipalType: azd env set AZURE_PRINCIPAL_TYPE ServicePrincipal."
fi
[ "$grant" != "false" ] || [ "$register" = "true" ] || exit 0

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
graph() {
  az rest --method get --url "$1" --query "$2" -o tsv 2>"$errors" </dev/null ||
    fail "could not read what $name may do in Microsoft Entra ID ($(tr '\n' ' ' <"$errors" | cut -c1-200))" \
      "The principal needs at least to read its own roles (a service principal: Application.Read.All)."
}

app_roles=
if [ "$kind" = "servicePrincipal" ]; then
  # az names a service principal by its application (client) id.
  me=$(graph "$GRAPH/servicePrincipals(appId='$name')" id)
  roles=$(graph "$GRAPH/servicePrincipals/$me/transitiveMemberOf/microsoft.graph.directoryRole" "value[].roleTemplateId")
  graph_sp=$(graph "$GRAPH/servicePrincipals(appId='$GRAPH_APP_ID')" id)
  held=$(graph "$GRAPH/servicePrincipals/$me/appRoleAssignments" "value[?resourceId=='$graph_sp'].appRoleId")
  for role_id in $held; do
    app_roles="$app_roles $(graph "$GRAPH/servicePrincipals/$graph_sp" "appRoles[?id=='$role_id'].value | [0]")"
  done
else
  roles=$(graph "$GRAPH/me/transitiveMemberOf/microsoft.graph.directoryRole" "value[].roleTemplateId")
fi
has_role() { printf '%s\n' "$roles" | grep -qxF "$1"; }
has_app_role() { printf ' %s \n' "$app_roles" | grep -qF " $1 "; }

if [ "$grant" != "false" ] &&
  ! { has_role "$GLOBAL_ADMIN" || has_role "$PRIVILEGED_ROLE_ADMIN" || has_app_role AppRoleAssignment.ReadWrite.All; }; then
  fail "$name may not grant Microsoft Graph application permissions (GRANT_GRAPH_PERMISSIONS=true)" \
    "Either sign in as a Privileged Role Administrator (activate the role if it is eligible in PIM),
or let a tenant admin grant them after provisioning, as a separate step:
  azd env set GRANT_GRAPH_PERMISSIONS false
  azd up        # the postprovision hook prints the command the admin runs
(docs/deploy.md, \"Graph permissions\")."
fi
if [ "$register" = "true" ] &&
  ! { has_role "$GLOBAL_ADMIN" || has_role "$CLOUD_APP_ADMIN" || has_role "$APP_ADMIN" ||
    { { has_app_role Application.ReadWrite.All || has_app_role Application.ReadWrite.OwnedBy; } &&
      has_app_role AppRoleAssignment.ReadWrite.All; }; }; then
  fail "$name may not create the HTTP front door's app registration (API_CLIENT_ID is empty)" \
    "Either sign in as a Cloud Application Administrator (or Application Administrator),
or have one create the registration and give its client id:
  azd env set API_CLIENT_ID <application (client) id>
(docs/deploy.md, \"HTTP front door\")."
fi
echo "preprovision: $name may $([ "$grant" != "false" ] && echo "grant the Graph permissions")$([ "$grant" != "false" ] && [ "$register" = "true" ] && echo " and ")$([ "$register" = "true" ] && echo "create the API's app registration")."
