#!/usr/bin/env bash
# Grants the app's managed identity the Microsoft Graph application permissions its
# settings need (docs/deploy.md, "Graph permissions"), with `az rest`. The azd
# postprovision hook runs it (with --prune) after every provision; a tenant admin runs it
# by hand when the deployment may not grant (GRANT_GRAPH_PERMISSIONS=false). Needs, signed
# in with `az login`: Privileged Role Administrator (or Global Administrator), or
# AppRoleAssignment.ReadWrite.All + Application.Read.All.
#
#   SET_USAGE_LOCATION=true LICENSING_MODE=direct CLOUD_SYNC_JOB= TEAMS_PHONE=false \
#     ./infra/scripts/grant-graph-permissions.sh [--prune] [--dry-run] [<identity-principal-id>]
#
# Inputs: the app settings SET_USAGE_LOCATION (default true), LICENSING_MODE (direct or
# group, default direct), CLOUD_SYNC_JOB (default empty) and TEAMS_PHONE (default false),
# with Bicep's defaults, each
# from the environment, else from the azd environment. The principal id defaults to
# AZURE_IDENTITY_PRINCIPAL_ID, found the same way.
#   --prune    also revoke the identity's other Microsoft Graph app roles, so that turning
#              a feature off really drops its permission
#   --dry-run  print what would be granted and revoked; change nothing
# Idempotent; prints what it grants, keeps and revokes. Entra ID takes a while to
# replicate a new identity: calls refused for that reason are retried with backoff for up
# to GRANT_RETRY_SECONDS (300); any other error stops the script with a non-zero exit.
# Written for bash 3.2 too (macOS). Keep the permission list in sync with
# infra/modules/graph-permissions.bicep (tests/infra runs both for every combination).
set -euo pipefail

GRAPH_APP_ID=00000003-0000-0000-c000-000000000000
GRAPH=https://graph.microsoft.com/v1.0
# What Entra ID says about an object it has not replicated everywhere yet (the new
# identity): Graph's 404 and 400 answers, and ARM's wording of the same.
REPLICATION_LAG='does not exist or one of its queried reference-property objects are not present|Not a valid reference update|PrincipalNotFound'

die() {
  echo "grant-graph-permissions: error: $*" >&2
  exit 1
}

prune=false
dry_run=false
principal_id=
for arg in "$@"; do
  case $arg in
    --prune) prune=true ;;
    --dry-run) dry_run=true ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    -*) die "unknown option $arg (--prune, --dry-run)" ;;
    *) principal_id=$arg ;;
  esac
done
# setting NAME: from the environment if set there (even empty), else from the azd
# environment (when run by hand in this repository), else empty.
setting() { printenv "$1" || azd env get-value "$1" 2>/dev/null || true; }
lower() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]'; }

principal_id=${principal_id:-$(setting AZURE_IDENTITY_PRINCIPAL_ID)}
[[ $principal_id =~ ^[0-9a-fA-F-]{36}$ ]] ||
  die "no identity principal id: pass it, or set AZURE_IDENTITY_PRINCIPAL_ID (azd env get-value AZURE_IDENTITY_PRINCIPAL_ID)"

set_usage_location=$(lower "$(setting SET_USAGE_LOCATION)")
set_usage_location=${set_usage_location:-true}
licensing_mode=$(lower "$(setting LICENSING_MODE)")
licensing_mode=${licensing_mode:-direct}
cloud_sync_job=$(setting CLOUD_SYNC_JOB)
teams_phone=$(lower "$(setting TEAMS_PHONE)")
teams_phone=${teams_phone:-false}

# --- the wanted permissions: the same rules as graph-permissions.bicep ------------------
PERMISSIONS=(User.Read.All LicenseAssignment.Read.All)
case $licensing_mode in
  direct) PERMISSIONS+=(LicenseAssignment.ReadWrite.All) ;;
  # group membership, and reprocessLicenseAssignment (least privilege: User.ReadWrite.All)
  group) PERMISSIONS+=(GroupMember.ReadWrite.All User.ReadWrite.All) ;;
  *) die "LICENSING_MODE must be direct or group, not '$licensing_mode'" ;;
esac
case $set_usage_location in
  true) PERMISSIONS+=(User.ReadWrite.All) ;; # write usageLocation
  false) ;;
  *) die "SET_USAGE_LOCATION must be true or false, not '$set_usage_location'" ;;
esac
if [ -n "$cloud_sync_job" ]; then
  PERMISSIONS+=(Synchronization.ReadWrite.All) # provisionOnDemand
fi
case $teams_phone in
  # Teams readiness (userConfigurations), and assignNumber with its operation
  true) PERMISSIONS+=(TeamsUserConfiguration.Read.All TeamsTelephoneNumber.ReadWrite.All) ;;
  false) ;;
  *) die "TEAMS_PHONE must be true or false, not '$teams_phone'" ;;
esac
wanted=$(printf '%s\n' "${PERMISSIONS[@]}" | awk '!seen[$0]++')

# --- Graph calls, retried while Entra ID replicates the identity ------------------------
retry_for=${GRANT_RETRY_SECONDS:-300}
first_delay=${GRANT_RETRY_FIRST_DELAY:-5}
deadline=$((SECONDS + retry_for))
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT

# graph <method> <url> [az rest options]: prints az rest's output.
graph() {
  local method=$1 url=$2 delay=$first_delay output
  shift 2
  while true; do
    # </dev/null: callers loop over here-strings, which az must not read.
    if output=$(az rest --method "$method" --url "$url" "$@" </dev/null 2>"$errors"); then
      [ -z "$output" ] || printf '%s\n' "$output"
      return 0
    fi
    if ! grep -Eq "$REPLICATION_LAG" "$errors"; then
      echo "grant-graph-permissions: error: $method $url failed:" >&2
      cat "$errors" >&2
      return 1
    fi
    if [ $((SECONDS + delay)) -gt "$deadline" ]; then
      echo "grant-graph-permissions: error: Entra ID still does not know the identity after ${retry_for}s ($method $url):" >&2
      cat "$errors" >&2
      return 1
    fi
    echo "waiting ${delay}s: Entra ID has not replicated the identity yet ($(tr '\n' ' ' <"$errors" | cut -c1-160))" >&2
    sleep "$delay"
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
  done
}

# 1. The identity, once Entra ID has it (a new one may take a minute or more).
identity_name=$(graph get "$GRAPH/servicePrincipals/$principal_id" --query displayName -o tsv) ||
  die "cannot read the identity's service principal $principal_id (see above)"
# 2. Microsoft Graph's service principal and its application roles ("<value>\t<id>").
graph_sp_id=$(graph get "$GRAPH/servicePrincipals(appId='$GRAPH_APP_ID')" --query id -o tsv) ||
  die "cannot read Microsoft Graph's service principal (see above)"
roles=$(graph get "$GRAPH/servicePrincipals/$graph_sp_id" \
  --query "appRoles[?contains(allowedMemberTypes, 'Application')].[value, id]" -o tsv) ||
  die "cannot read Microsoft Graph's app roles (see above)"
# 3. What the identity holds on Graph ("<appRoleId>\t<assignment id>").
held=$(graph get "$GRAPH/servicePrincipals/$principal_id/appRoleAssignments" \
  --query "value[?resourceId=='$graph_sp_id'].[appRoleId, id]" -o tsv) ||
  die "cannot read the identity's app role assignments (see above)"

role_id_of() { awk -F'\t' -v name="$1" '$1 == name { print $2; exit }' <<<"$roles"; }
role_name_of() { awk -F'\t' -v id="$1" '$2 == id { print $1; exit }' <<<"$roles"; }
is_held() { awk -F'\t' -v id="$1" '$1 == id { found = 1 } END { exit !found }' <<<"$held"; }

echo "Microsoft Graph permissions for $identity_name ($principal_id):" \
  "LICENSING_MODE=$licensing_mode SET_USAGE_LOCATION=$set_usage_location CLOUD_SYNC_JOB=${cloud_sync_job:-(none)}" \
  "TEAMS_PHONE=$teams_phone"
changed=0
while read -r permission; do
  role_id=$(role_id_of "$permission")
  [ -n "$role_id" ] || die "Microsoft Graph has no application permission named $permission"
  if is_held "$role_id"; then
    echo "  already granted: $permission"
  elif $dry_run; then
    echo "  would grant:     $permission"
  else
    graph post "$GRAPH/servicePrincipals/$graph_sp_id/appRoleAssignedTo" \
      --headers "Content-Type=application/json" \
      --body "{\"principalId\": \"$principal_id\", \"resourceId\": \"$graph_sp_id\", \"appRoleId\": \"$role_id\"}" \
      --output none || die "could not grant $permission (see above)"
    echo "  granted:         $permission"
    changed=$((changed + 1))
  fi
done <<<"$wanted"

while IFS=$'\t' read -r role_id assignment_id; do
  [ -n "$role_id" ] || continue
  permission=$(role_name_of "$role_id")
  permission=${permission:-$role_id}
  if grep -qxF "$permission" <<<"$wanted"; then
    continue
  elif ! $prune; then
    echo "  not needed, kept (--prune revokes it): $permission"
  elif $dry_run; then
    echo "  would revoke:    $permission"
  else
    graph delete "$GRAPH/servicePrincipals/$graph_sp_id/appRoleAssignedTo/$assignment_id" \
      --output none || die "could not revoke $permission (see above)"
    echo "  revoked:         $permission"
    changed=$((changed + 1))
  fi
done <<<"$held"

if [ "$changed" -gt 0 ]; then
  echo "The app's token may keep its previous roles for up to ~24 hours (managed-identity" \
    "token caching; a restart does not help): docs/deploy.md, \"Graph permissions\"."
fi
