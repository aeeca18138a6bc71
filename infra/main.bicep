// user-onboarding: everything `azd up` provisions, in one resource group.
// Each module is named for what it creates; settings with their contract defaults
// are parameters here (override with `azd env set <VARIABLE> <value>`, see main.parameters.json).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name: names and tags every resource.')
param environmentName string

@minLength(1)
@description('Azure region for every resource (one that offers Flex Consumption).')
param location string

@description('Object id of the deploying user (azd sets AZURE_PRINCIPAL_ID); gets queue access for test messages. Empty to skip.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Grant the Graph app roles from Bicep. Needs Entra rights (docs/deploy.md); false: a tenant admin runs infra/scripts/grant-graph-permissions.sh.')
param grantGraphPermissions bool = true

@description('Flex Consumption scale-out limit; each instance also spends Graph throttling budget.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// The app's settings, with the contract's defaults.
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'
param sweepSchedule string = '0 */5 * * * *'
param syncTimeout string = 'PT24H'
param recheckInitialDelay string = 'PT5M'
param recheckMaxDelay string = 'PT30M'
@description('ISO 3166-1 alpha-2 code used when neither message nor user has one; empty for none.')
param defaultUsageLocation string = ''
@description('Write usageLocation on users that have none; also decides whether User.ReadWrite.All is granted.')
param setUsageLocation bool = true
@description('Comma-separated skuPartNumbers for messages without licenses; empty for none.')
param defaultLicenses string = ''

var serviceName = 'onboarding'
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package-${resourceToken}'
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    identityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    planName: 'plan-${resourceToken}'
    functionAppName: 'func-${resourceToken}'
    location: location
    tags: tags
    serviceName: serviceName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    graphBaseUrl: graphBaseUrl
    sweepSchedule: sweepSchedule
    syncTimeout: syncTimeout
    recheckInitialDelay: recheckInitialDelay
    recheckMaxDelay: recheckMaxDelay
    defaultUsageLocation: defaultUsageLocation
    setUsageLocation: setUsageLocation
    defaultLicenses: defaultLicenses
  }
  // The host starts with identity-based storage: let its roles exist first.
  dependsOn: [
    roles
  ]
}

module graphPermissions 'modules/graph-permissions.bicep' = if (grantGraphPermissions) {
  name: 'graph-permissions'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    setUsageLocation: setUsageLocation
  }
}

// azd stores these in .azure/<env>/.env; docs/deploy.md and the hooks use them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_QUEUE_ENDPOINT string = storage.outputs.queueEndpoint
output AZURE_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
