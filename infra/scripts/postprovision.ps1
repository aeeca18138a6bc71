# azd postprovision hook (Windows): same as postprovision.sh.
if ($env:GRANT_GRAPH_PERMISSIONS -eq 'false') {
    $usage = if ($env:SET_USAGE_LOCATION) { $env:SET_USAGE_LOCATION } else { 'true' }
    Write-Host ""
    Write-Host "Graph permissions were NOT granted (GRANT_GRAPH_PERMISSIONS=false)."
    Write-Host "A tenant admin (Privileged Role Administrator) must run, from a bash shell with az CLI:"
    Write-Host "  SET_USAGE_LOCATION=$usage ./infra/scripts/grant-graph-permissions.sh $($env:AZURE_IDENTITY_PRINCIPAL_ID)"
    Write-Host "See docs/deploy.md, 'Graph permissions'."
}
