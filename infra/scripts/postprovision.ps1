# azd postprovision hook (Windows): same as postprovision.sh, whose grant script is bash:
# it runs under Git for Windows' bash (or any bash on PATH with the Azure CLI signed in).
$ErrorActionPreference = 'Stop'

$grant = Join-Path $PSScriptRoot 'grant-graph-permissions.sh'
$principal = $env:AZURE_IDENTITY_PRINCIPAL_ID
$usage = if ($env:SET_USAGE_LOCATION) { $env:SET_USAGE_LOCATION } else { 'true' }
$mode = if ($env:LICENSING_MODE) { $env:LICENSING_MODE } else { 'direct' }
$teams = if ($env:TEAMS_PHONE) { $env:TEAMS_PHONE } else { 'false' }
$settings = "SET_USAGE_LOCATION=$usage LICENSING_MODE=$mode CLOUD_SYNC_JOB='$($env:CLOUD_SYNC_JOB)' TEAMS_PHONE=$teams"
$command = "$settings ./infra/scripts/grant-graph-permissions.sh --prune $principal"

if ($env:GRANT_GRAPH_PERMISSIONS -eq 'false') {
    Write-Host ""
    Write-Host "Graph permissions were NOT granted (GRANT_GRAPH_PERMISSIONS=false)."
    Write-Host "A tenant admin (Privileged Role Administrator) must run, from a bash shell with az CLI:"
    Write-Host "  $command"
    Write-Host "See docs/deploy.md, 'Graph permissions'."
    exit 0
}

function Fail([string] $why) {
    Write-Host ""
    Write-Host "ERROR: the Microsoft Graph permissions of the app's identity were not granted: $why"
    Write-Host "The infrastructure is provisioned, but azd stops here (the app is not deployed"
    Write-Host "or updated) until they are. Then run 'azd up' (or 'azd provision') again."
    Write-Host "  - Not allowed to grant them? Sign in to az as a Privileged Role Administrator,"
    Write-Host "    or set GRANT_GRAPH_PERMISSIONS=false and have a tenant admin run, in bash:"
    Write-Host "      $command"
    Write-Host "  - See docs/deploy.md, 'Graph permissions'."
    exit 1
}

if (-not $principal) { Fail 'AZURE_IDENTITY_PRINCIPAL_ID is not set (did provisioning finish?)' }
if (-not (Get-Command az -ErrorAction SilentlyContinue)) { Fail 'the Azure CLI (az) is not installed' }
$tenant = az account show --query tenantId -o tsv 2>$null
if ($LASTEXITCODE -ne 0) { Fail 'the Azure CLI is not signed in (az login)' }
if ($env:AZURE_TENANT_ID -and $tenant -ne $env:AZURE_TENANT_ID) {
    Fail "the Azure CLI is signed in to tenant $tenant, the deployment is in $($env:AZURE_TENANT_ID) (az login --tenant $($env:AZURE_TENANT_ID))"
}

# Git for Windows' bash first: C:\Windows\System32\bash.exe is WSL, which has its own az.
$bash = @(
    (Join-Path $env:ProgramFiles 'Git\bin\bash.exe'),
    (Get-Command bash -ErrorAction SilentlyContinue | Select-Object -First 1 -ExpandProperty Source)
) | Where-Object { $_ -and (Test-Path $_) } | Select-Object -First 1
if (-not $bash) { Fail 'no bash found: install Git for Windows, or run the command below from WSL' }

Write-Host "Granting the app's identity its Microsoft Graph permissions (GRANT_GRAPH_PERMISSIONS=true)..."
$grantPath = $grant.Replace('\', '/')  # MSYS bash reads C:/... paths
& $bash $grantPath --prune $principal
if ($LASTEXITCODE -ne 0) { Fail 'grant-graph-permissions.sh failed (see above)' }
