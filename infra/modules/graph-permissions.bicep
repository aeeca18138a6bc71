// Microsoft Graph application permissions (app roles) for the app's managed identity,
// when granted from Bicep (GRANT_GRAPH_PERMISSIONS_WITH_BICEP=true). By default the
// azd postprovision hook grants the same list with infra/scripts/grant-graph-permissions.sh,
// which also waits out Entra ID's replication of a new identity and can revoke what is no
// longer needed (--prune); this module only adds. Needs a deployer allowed to grant them:
// Privileged Role Administrator (or Global Administrator), or
// AppRoleAssignment.ReadWrite.All + Application.Read.All.
//
// Offline checkers (tree-sitter-bicep 1.1, checkov's pycep) do not know the
// `extension` statement below: tests/infra blanks exactly that line before parsing.
extension microsoftGraphV1

@description('Object id of the managed identity\'s service principal.')
param principalId string

@description('SET_USAGE_LOCATION: the app writes usageLocation.')
param setUsageLocation bool

@description('LICENSING_MODE: direct (assignLicense) or group (licensing groups).')
param licensingMode string

@description('CLOUD_SYNC_JOB is set: the app forces syncs with provisionOnDemand.')
param forceSync bool

@description('TEAMS_PHONE: the app checks Teams readiness and assigns phone numbers.')
param teamsPhone bool

// Least privilege, per feature (docs/deploy.md "Graph permissions"); tests/infra checks
// the grant script and the docs against this list for every combination.
// Read users with their sync fields and licenseAssignmentStates; read subscribedSkus.
var alwaysGranted = [
  'User.Read.All'
  'LicenseAssignment.Read.All'
]
// POST /users/{id}/assignLicense
var grantedInDirectMode = [
  'LicenseAssignment.ReadWrite.All'
]
// POST /groups/{id}/members/$ref, and POST /users/{id}/reprocessLicenseAssignment (whose
// least-privileged application permission is User.ReadWrite.All).
var grantedInGroupMode = [
  'GroupMember.ReadWrite.All'
  'User.ReadWrite.All'
]
// PATCH /users/{id} {"usageLocation": ...}
var grantedToSetUsageLocation = [
  'User.ReadWrite.All'
]
// POST /servicePrincipals/{id}/synchronization/jobs/{jobId}/provisionOnDemand (the app
// does not own the Cloud Sync service principal, so Application.ReadWrite.OwnedBy cannot do).
var grantedToForceSync = [
  'Synchronization.ReadWrite.All'
]
// GET /admin/teams/userConfigurations/{userId} (readiness), and POST
// /admin/teams/telephoneNumberManagement/numberAssignments/assignNumber with the
// operation it returns (ReadWrite covers reading it), docs/graph-facts.md "Teams Phone".
var grantedForTeamsPhone = [
  'TeamsUserConfiguration.Read.All'
  'TeamsTelephoneNumber.ReadWrite.All'
]
var licensePermissions = licensingMode == 'group' ? grantedInGroupMode : grantedInDirectMode
var usageLocationPermissions = setUsageLocation ? grantedToSetUsageLocation : []
var forceSyncPermissions = forceSync ? grantedToForceSync : []
var teamsPhonePermissions = teamsPhone ? grantedForTeamsPhone : []
// union, not concat: User.ReadWrite.All can be wanted twice and is granted once.
var permissions = union(alwaysGranted, licensePermissions, usageLocationPermissions, forceSyncPermissions, teamsPhonePermissions)

// Microsoft Graph's own service principal in this tenant (its appId is the same everywhere).
resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000003-0000-0000-c000-000000000000'
}

// App role ids are looked up by name rather than hard-coded.
resource grants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [for permission in permissions: {
  principalId: principalId
  resourceId: graph.id
  appRoleId: filter(graph.appRoles, role => role.value == permission && contains(role.allowedMemberTypes, 'Application'))[0].id
}]

output granted array = permissions
