# azd preprovision hook (Windows): runs the same check as preprovision.sh under Git for
# Windows' bash (or any bash on PATH with the Azure CLI signed in).
$ErrorActionPreference = 'Stop'

$check = (Join-Path $PSScriptRoot 'preprovision.sh').Replace('\', '/')  # MSYS bash reads C:/... paths
# Git for Windows' bash first: C:\Windows\System32\bash.exe is WSL, which has its own az.
$bash = @(
    (Join-Path $env:ProgramFiles 'Git\bin\bash.exe'),
    (Get-Command bash -ErrorAction SilentlyContinue | Select-Object -First 1 -ExpandProperty Source)
) | Where-Object { $_ -and (Test-Path $_) } | Select-Object -First 1
if (-not $bash) {
    Write-Host "ERROR: no bash found to run the preprovision check: install Git for Windows, or set PREPROVISION_CHECK=false (docs/deploy.md, 'Who may deploy')."
    exit 1
}
& $bash $check
exit $LASTEXITCODE
