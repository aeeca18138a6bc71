// The HTTP front door's app registration (contract v1.2, "HTTP front door"): the API HR
// systems get tokens for, its app roles, its service principal, and who holds which role.
// Created from Bicep with the Microsoft Graph extension unless API_CLIENT_ID names an
// existing registration (docs/deploy.md "HTTP front door"). Needs a deployer allowed to
// create app registrations and assign their roles: Cloud Application Administrator (or
// Application Administrator).
//
// Offline checkers (tree-sitter-bicep 1.1, checkov's pycep) do not know the
// `extension` statement below: tests/infra blanks exactly that line before parsing.
extension microsoftGraphV1

@description('Immutable key of the registration for the Graph extension (idempotent re-deploys).')
param uniqueName string
param displayName string
@description('Application ID URI: api://<tenant id>/<name>, a format Entra ID accepts under its identifier URI restrictions.')
param identifierUri string
@description('Object id of the deploying principal, made an owner of the registration; empty for none.')
param ownerId string = ''

@description('HR systems: [{principalId, principalType}]; the service principals among them get Onboarding.Submit.')
param hrPrincipals array = []
@description('On-call operators: [{principalId, principalType}]; each gets Onboarding.Read.')
param operatorPrincipals array = []

// Stable role ids: the same on every deployment, so assignments keep pointing at them.
var submitRoleId = guid(uniqueName, 'Onboarding.Submit')
var readRoleId = guid(uniqueName, 'Onboarding.Read')
// Onboarding.Submit is for machines only (client credentials tokens); app roles of type
// Application cannot be given to groups or users.
var submitters = filter(hrPrincipals, hr => hr.principalType == 'ServicePrincipal')

resource api 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  // Whoever deploys (AZURE_PRINCIPAL_ID) can manage the registration afterwards.
  owners: {
    relationships: empty(ownerId) ? [] : [
      ownerId
    ]
  }
  identifierUris: [
    identifierUri
  ]
  api: {
    // v2 access tokens: `aud` is the client id (API_AUDIENCE), `iss`
    // https://login.microsoftonline.com/<tenant>/v2.0 (API_TENANT_ID).
    requestedAccessTokenVersion: 2
  }
  appRoles: [
    {
      id: submitRoleId
      value: 'Onboarding.Submit'
      displayName: 'Submit onboarding requests'
      description: 'Post onboarding requests and read their status (HR systems).'
      allowedMemberTypes: [
        'Application'
      ]
      isEnabled: true
    }
    {
      id: readRoleId
      value: 'Onboarding.Read'
      displayName: 'Read onboarding requests'
      description: 'Read the status of onboarding requests (operators, integration platforms).'
      // Application: a service principal; User: a user, or a group of users (group
      // assignment needs Microsoft Entra ID P1).
      allowedMemberTypes: [
        'Application'
        'User'
      ]
      isEnabled: true
    }
  ]
}

resource apiPrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: api.appId
  // Entra ID issues tokens only to callers that hold one of the API's roles.
  appRoleAssignmentRequired: true
}

// Onboarding.Submit to each HR system's service principal.
resource submitAssignments 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [for hr in submitters: {
  principalId: hr.principalId
  resourceId: apiPrincipal.id
  appRoleId: submitRoleId
}]

// Onboarding.Read to each operator principal (a group usually).
resource readAssignments 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [for operator in operatorPrincipals: {
  principalId: operator.principalId
  resourceId: apiPrincipal.id
  appRoleId: readRoleId
}]

output clientId string = api.appId
output identifierUri string = identifierUri
output servicePrincipalId string = apiPrincipal.id
