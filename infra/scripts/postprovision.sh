#!/bin/sh
# azd postprovision hook: azd exports the environment's values (.azure/<env>/.env).
# When the Graph permissions were not granted by Bicep, say who must do what.
set -eu

if [ "${GRANT_GRAPH_PERMISSIONS:-true}" = "false" ]; then
  cat <<MSG

Graph permissions were NOT granted (GRANT_GRAPH_PERMISSIONS=false).
The app cannot read users or assign licenses until a tenant admin
(Privileged Role Administrator) runs, from this repository:

  SET_USAGE_LOCATION=${SET_USAGE_LOCATION:-true} \\
    ./infra/scripts/grant-graph-permissions.sh ${AZURE_IDENTITY_PRINCIPAL_ID:-<identity principal id>}

See docs/deploy.md, "Graph permissions".
MSG
fi
