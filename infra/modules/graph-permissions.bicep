// Microsoft Graph application permissions (app roles) for the app's managed identity.
// Needs a deployer allowed to grant them: Privileged Role Administrator (or Global
// Administrator), or AppRoleAssignment.ReadWrite.All + Application.Read.All.
// Without that, deploy with grantGraphPermissions=false and have a tenant admin run
// infra/scripts/grant-graph-permissions.sh, which grants the same list.
//
// Offline checkers (tree-sitter-bicep 1.1, checkov's pycep) do not know the
// `extension` statement below: tests/infra blanks exactly that line before parsing.
extension microsoftGraphV1

@description('Object id of the managed identity\'s service principal.')
param principalId string

@description('Also grant User.ReadWrite.All, needed only to write usageLocation (SET_USAGE_LOCATION).')
param setUsageLocation bool

// Least privilege (README "Graph permissions"): read users with their sync fields,
// read subscribedSkus, assign licenses.
var alwaysGranted = [
  'User.Read.All'
  'LicenseAssignment.Read.All'
  'LicenseAssignment.ReadWrite.All'
]
// PATCH /users/{id} {"usageLocation": ...}
var grantedToSetUsageLocation = [
  'User.ReadWrite.All'
]
var permissions = setUsageLocation ? concat(alwaysGranted, grantedToSetUsageLocation) : alwaysGranted

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
