#!/bin/sh
# azd postprovision hook: runs after every `azd provision` (and in `azd up`, before the
# app is deployed), with the environment's values exported (.azure/<env>/.env).
#
# Grants the app's identity exactly the Microsoft Graph permissions its settings need,
# and revokes the ones they no longer need (grant-graph-permissions.sh --prune), retrying
# while Entra ID replicates a newly created identity. If that fails, the hook fails, and
# so does azd: the app is not deployed with permissions it does not have.
# GRANT_GRAPH_PERMISSIONS=false: nothing is granted here; say who must do what.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
grant="$here/grant-graph-permissions.sh"
principal=${AZURE_IDENTITY_PRINCIPAL_ID:-}
settings="SET_USAGE_LOCATION=${SET_USAGE_LOCATION:-true} LICENSING_MODE=${LICENSING_MODE:-direct} CLOUD_SYNC_JOB='${CLOUD_SYNC_JOB:-}' TEAMS_PHONE=${TEAMS_PHONE:-false}"

if [ "${GRANT_GRAPH_PERMISSIONS:-true}" = "false" ]; then
  cat <<MSG

Graph permissions were NOT granted (GRANT_GRAPH_PERMISSIONS=false).
The app cannot read users or assign licenses until a tenant admin
(Privileged Role Administrator) runs, from this repository:

  $settings \\
    ./infra/scripts/grant-graph-permissions.sh --prune ${principal:-<identity principal id>}

See docs/deploy.md, "Graph permissions".
MSG
  exit 0
fi

fail() {
  cat >&2 <<MSG

ERROR: the Microsoft Graph permissions of the app's identity were not granted: $1
The infrastructure is provisioned, but azd stops here (the app is not deployed
or updated) until they are. Then run \`azd up\` (or \`azd provision\`) again.
  - Not allowed to grant them? Sign in to az as a Privileged Role Administrator
    (az login), or set GRANT_GRAPH_PERMISSIONS=false and have a tenant admin run:
      $settings \\
        ./infra/scripts/grant-graph-permissions.sh --prune ${principal:-<identity principal id>}
  - See docs/deploy.md, "Graph permissions".
MSG
  exit 1
}

[ -n "$principal" ] || fail "AZURE_IDENTITY_PRINCIPAL_ID is not set (did provisioning finish?)"
command -v az >/dev/null 2>&1 || fail "the Azure CLI (az) is not installed"
command -v bash >/dev/null 2>&1 || fail "bash is not installed"
az_tenant=$(az account show --query tenantId -o tsv 2>/dev/null) || fail "the Azure CLI is not signed in (az login)"
if [ -n "${AZURE_TENANT_ID:-}" ] && [ "$az_tenant" != "$AZURE_TENANT_ID" ]; then
  fail "the Azure CLI is signed in to tenant $az_tenant, the deployment is in $AZURE_TENANT_ID (az login --tenant $AZURE_TENANT_ID)"
fi

echo "Granting the app's identity its Microsoft Graph permissions (GRANT_GRAPH_PERMISSIONS=true)..."
bash "$grant" --prune "$principal" || fail "grant-graph-permissions.sh failed (see above)"
