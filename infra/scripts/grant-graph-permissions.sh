#!/usr/bin/env bash
# Grants the app's managed identity its Microsoft Graph application permissions
# with `az rest`: the fallback when Bicep does not grant them
# (GRANT_GRAPH_PERMISSIONS=false). Run by a tenant admin: Privileged Role
# Administrator (or Global Administrator), signed in with `az login`.
#
#   SET_USAGE_LOCATION=true ./infra/scripts/grant-graph-permissions.sh <identity-principal-id>
#
# Without an argument it takes AZURE_IDENTITY_PRINCIPAL_ID from the azd environment.
# Idempotent: permissions already granted are reported and left alone.
# Keep PERMISSIONS in sync with infra/modules/graph-permissions.bicep (tests/infra checks it).
set -euo pipefail

GRAPH_APP_ID=00000003-0000-0000-c000-000000000000
GRAPH=https://graph.microsoft.com/v1.0

principal_id=${1:-$(azd env get-value AZURE_IDENTITY_PRINCIPAL_ID)}

PERMISSIONS=(User.Read.All LicenseAssignment.Read.All LicenseAssignment.ReadWrite.All)
# Writing usageLocation (SET_USAGE_LOCATION, default true) needs User.ReadWrite.All.
if [ "${SET_USAGE_LOCATION:-true}" = "true" ]; then
  PERMISSIONS+=(User.ReadWrite.All)
fi

graph_sp_id=$(az ad sp show --id "$GRAPH_APP_ID" --query id -o tsv)
granted=$(az rest --method get \
  --url "$GRAPH/servicePrincipals/$principal_id/appRoleAssignments" \
  --query "value[?resourceId=='$graph_sp_id'].appRoleId" -o tsv)

for permission in "${PERMISSIONS[@]}"; do
  role_id=$(az ad sp show --id "$GRAPH_APP_ID" \
    --query "appRoles[?value=='$permission' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)
  if [ -z "$role_id" ]; then
    echo "error: Microsoft Graph has no application permission named $permission" >&2
    exit 1
  fi
  if grep -qx "$role_id" <<<"$granted"; then
    echo "already granted: $permission"
    continue
  fi
  az rest --method post \
    --url "$GRAPH/servicePrincipals/$graph_sp_id/appRoleAssignedTo" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\": \"$principal_id\", \"resourceId\": \"$graph_sp_id\", \"appRoleId\": \"$role_id\"}" \
    --output none
  echo "granted: $permission"
done
