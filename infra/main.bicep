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

@description('Extra tags for every resource (azd: AZURE_TAGS, a JSON object such as {"costCenter": "1234"}); azd-env-name is always set.')
param extraTags object = {}

// Enterprise platform options (docs/deploy.md "Enterprise deployment").
@description('An existing Log Analytics workspace (resource id) for Application Insights; empty: one is created.')
param logAnalyticsWorkspaceId string = ''
@description('An existing action group (resource id) every alert notifies, besides ALERT_EMAIL\'s; empty for none.')
param alertActionGroupId string = ''
@description('VNet integration for the function app, and private endpoints for storage (and the Event Grid topic), whose public access is then closed.')
param vnetEnabled bool = false
@description('The virtual network\'s address space (VNET_ENABLED); pick one that does not overlap networks you peer with.')
param vnetAddressPrefix string = '10.0.0.0/16'
@description('The function app\'s integration subnet, delegated to Microsoft.App/environments.')
param vnetAppSubnetPrefix string = '10.0.1.0/24'
@description('The private endpoints\' subnet.')
param vnetPrivateEndpointSubnetPrefix string = '10.0.2.0/24'

@description('Object id of the deploying user (azd sets AZURE_PRINCIPAL_ID); gets queue access for test messages. Empty to skip.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Grant the identity its Graph app roles as part of `azd up` (the postprovision hook, or Bicep with grantGraphPermissionsWithBicep). Needs Entra rights (docs/deploy.md); false: a tenant admin runs infra/scripts/grant-graph-permissions.sh.')
param grantGraphPermissions bool = true

@description('Grant them from Bicep (the Microsoft Graph extension) instead of the postprovision hook. A first deployment can then fail while Entra ID replicates the new identity; a rerun succeeds.')
param grantGraphPermissionsWithBicep bool = false

// Flex Consumption scale (docs/deploy.md "Scale"). Microsoft's current limits: the
// lowest maximum is 1 (it was 40 in the preview), the highest 1000; instance memory 512,
// 2048 or 4096 MB (learn.microsoft.com/azure/azure-functions/flex-consumption-plan,
// "Considerations" and "Instance sizes").
// Default 4, from the big-day benchmark (docs/benchmarks.md "Big day", docs/deploy.md
// "Scale"): Graph allows the app 20 writes/s whatever the number of instances, and the
// instances pace themselves together to that rate (guarantee 8), so beyond what keeps it
// busy an instance only waits for its turn (1, 4 and 8 processes all licensed at Graph's
// rate). One 2,048 MB instance (1 core) already carries 20 writes/s: 16 to 18 ms of CPU per
// request measured, and 24 requests in flight at Graph's latency; 4 is that with room for
// slow or cold instances, keeps a request's wait for its turn under 5 s (4 x 24 / 20), and
// keeps the lookups in flight well inside a small tenant's 3,500 resource units per 10 s.
@description('Flex Consumption scale-out limit (per function). The instances share the app\'s Graph budget (20 writes/s): more than 4 license no faster (docs/deploy.md "Scale").')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 4

@description('Flex Consumption instance memory in MB; 2048 is Microsoft\'s default.')
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
@description('ISO 8601 duration: how long before a request\'s startDate its start window opens; PT0S allowed.')
param licenseLeadTime string = 'P1D'
@description('<servicePrincipalId>/<jobId> of the Entra Cloud Sync provisioning job, to force syncs; empty for none. Also decides whether Synchronization.ReadWrite.All is granted.')
param cloudSyncJob string = ''
@description('direct: assignLicense; group: add users to licensing groups (LICENSE_GROUPS). Also decides which Graph permissions are granted.')
@allowed([
  'direct'
  'group'
])
param licensingMode string = 'direct'
@description('Group mode: skuPartNumber=groupObjectId pairs, comma-separated; empty for none.')
param licenseGroups string = ''
@description('ISO 8601 duration a poisoned message is held (an operator may replay it) before its request is answered rejected/poison; PT0S: at once.')
param poisonHold string = 'PT1H'
@description('ISO 8601 duration the app keeps what it recorded about a request after its terminal event (contract v1.2); then the status query answers 404.')
param ledgerRetention string = 'P90D'
@description('Accept `teams` in requests and assign Teams Phone numbers (contract v1.2). Also decides whether TeamsUserConfiguration.Read.All and TeamsTelephoneNumber.ReadWrite.All are granted.')
param teamsPhone bool = false
@description('ISO 8601 duration the Teams Phone step may wait for Teams once the licenses are on (contract v1.2).')
param teamsReadyTimeout string = 'PT24H'

// Who else reaches the app's data (docs/deploy.md "Access for HR systems and operators").
@description('Object ids of the HR systems\' principals, comma-separated: they post to user-onboard and read user-onboard-events. Empty for none.')
param hrPrincipalIds string = ''
@allowed([
  'ServicePrincipal'
  'Group'
  'User'
])
param hrPrincipalType string = 'ServicePrincipal'
@description('Object ids of the on-call operators (a group, usually), comma-separated: the request ledger, poison and intake queues, and the monitoring workbook. Empty for none.')
param operatorPrincipalIds string = ''
@allowed([
  'Group'
  'User'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'Group'

// Events to every consumer (contract v1.2; modules/eventgrid.bicep, docs/deploy.md
// "Events to every consumer").
@description('Create the Event Grid topic every event is also published to, and its consumers\' subscriptions.')
param eventGridTopicEnabled bool = false
@description('Without eventGridTopicEnabled: the endpoint of an existing topic to publish to (the app\'s identity needs EventGrid Data Sender on it); empty for none.')
param eventGridTopicEndpoint string = ''
@description('The topic\'s consumers, one subscription each: [{name, principalId?, principalType?, webhookUrl?, includedEventTypes?, subjectBeginsWith?, subjectEndsWith?}] (main.parameters.json).')
param eventConsumers array = []

// The HTTP front door (contract v1.2; modules/api-registration.bicep, docs/deploy.md
// "HTTP front door").
@description('Application (client) id of an existing app registration for the API, for deployers without the Entra rights to create one; empty: Bicep creates it with its app roles.')
param apiClientId string = ''
@description('App Service built-in authentication (Easy Auth) in front of the API: tokens for other audiences or tenants are refused with 401 before the app runs. The app validates tokens and roles itself either way.')
param apiEasyAuthEnabled bool = true

// Alerts (modules/alerts.bicep).
@description('Where alerts are emailed; empty: the alert rules still exist and fire in the portal, but notify no one.')
param alertEmail string = ''
@description('Failure-rate alert: fires when more than this percentage of the last hour\'s terminal outcomes are `failed`.')
@minValue(1)
@maxValue(100)
param failureRateAlertPercent int = 20
@description('Failure-rate alert: only when the hour had at least this many terminal outcomes.')
@minValue(1)
param failureRateAlertMinimumCount int = 10
@description('Alert when no sweep has reported for this long: about 3 intervals of SWEEP_SCHEDULE (every 5 minutes: PT15M).')
@allowed([
  'PT10M'
  'PT15M'
  'PT30M'
  'PT45M'
  'PT1H'
  'PT2H'
  'PT3H'
  'PT6H'
])
param sweepHeartbeatWindow string = 'PT15M'
@description('Alert when the oldest request waiting on user-onboard is older than this many minutes: intake paused or stalled. 30: the trigger takes a message within seconds (it polls at least every 10 s), so half an hour means intake is stopped, well before a message expires (7 days).')
@minValue(5)
@maxValue(1440)
param intakeBacklogAlertMinutes int = 30

@description('Pause intake: the queue trigger stops taking user-onboard messages, which wait on the queue (docs/deploy.md "Rollback").')
param intakePaused bool = false

var serviceName = 'onboarding'
// The principal id lists as the roles module takes them ({principalId, principalType}).
var hrPrincipals = [for id in filter(split(hrPrincipalIds, ','), each => !empty(trim(each))): {
  principalId: trim(id)
  principalType: hrPrincipalType
}]
var operatorPrincipals = [for id in filter(split(operatorPrincipalIds, ','), each => !empty(trim(each))): {
  principalId: trim(id)
  principalType: operatorPrincipalType
}]
// An HR system with a queue subscription of its own reads its events there: it no longer
// gets Storage Queue Data Message Processor (read and delete) on the shared events queue.
var queueConsumersWithReaders = eventGridTopicEnabled ? filter(eventConsumers, c => empty(c.?webhookUrl ?? '') && !empty(c.?principalId ?? '')) : []
var consumerPrincipalIds = [for c in queueConsumersWithReaders: c.principalId]
var hrEventsQueueReaders = filter(hrPrincipals, hr => !contains(consumerPrincipalIds, hr.principalId))
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
// The `aud` of the v2 access tokens the front door accepts: the API's client id.
var apiAudience = empty(apiClientId) ? apiRegistration.outputs.clientId : apiClientId
// Every resource's tags: the platform team's, and azd's own (which always wins).
var tags = union(extraTags, {
  'azd-env-name': environmentName
})
// Behind the storage firewall (VNET_ENABLED), Event Grid delivers to its consumer queues
// and dead-letter container as a trusted Azure service, which a storage account with public
// network access disabled refuses too: with a topic, the account keeps its public endpoint
// but denies everything except private endpoints and trusted services (docs/deploy.md
// "Enterprise deployment").
var storageTrustsAzureServices = vnetEnabled && eventGridTopicEnabled

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
    logAnalyticsWorkspaceId: logAnalyticsWorkspaceId
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
    publicNetworkAccess: vnetEnabled && !storageTrustsAzureServices ? 'Disabled' : 'Enabled'
    networkDefaultAction: vnetEnabled ? 'Deny' : 'Allow'
    networkBypass: vnetEnabled && !storageTrustsAzureServices ? 'None' : 'AzureServices'
  }
}

module eventGrid 'modules/eventgrid.bicep' = if (eventGridTopicEnabled) {
  name: 'eventgrid'
  scope: rg
  params: {
    topicName: 'evgt-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    identityPrincipalId: identity.outputs.principalId
    consumers: eventConsumers
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
  }
}

module apiRegistration 'modules/api-registration.bicep' = if (empty(apiClientId)) {
  name: 'api-registration'
  scope: rg
  params: {
    uniqueName: 'user-onboarding-api-${resourceToken}'
    displayName: 'User onboarding API (${environmentName})'
    identifierUri: 'api://${tenant().tenantId}/user-onboarding-${resourceToken}'
    ownerId: principalId
    hrPrincipals: hrPrincipals
    operatorPrincipals: operatorPrincipals
  }
}

module network 'modules/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: rg
  params: {
    name: 'vnet-${resourceToken}'
    location: location
    tags: tags
    addressPrefix: vnetAddressPrefix
    appSubnetPrefix: vnetAppSubnetPrefix
    privateEndpointSubnetPrefix: vnetPrivateEndpointSubnetPrefix
    storageAccountName: storage.outputs.name
    eventGridTopicName: eventGridTopicEnabled ? eventGrid.outputs.topicName : ''
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    appInsightsName: monitoring.outputs.appInsightsName
    namePrefix: 'onboarding-${resourceToken}'
    location: location
    tags: tags
    alertEmail: alertEmail
    existingActionGroupId: alertActionGroupId
    failureRatePercent: failureRateAlertPercent
    failureRateMinimumCount: failureRateAlertMinimumCount
    sweepHeartbeatWindow: sweepHeartbeatWindow
    intakeBacklogMinutes: intakeBacklogAlertMinutes
    eventGridTopicId: eventGridTopicEnabled ? eventGrid.outputs.topicId : ''
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    workbookName: alerts.outputs.workbookName
    identityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
    hrPrincipals: hrPrincipals
    hrEventsQueueReaders: hrEventsQueueReaders
    operatorPrincipals: operatorPrincipals
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
    licenseLeadTime: licenseLeadTime
    cloudSyncJob: cloudSyncJob
    licensingMode: licensingMode
    licenseGroups: licenseGroups
    poisonHold: poisonHold
    ledgerRetention: ledgerRetention
    teamsPhone: teamsPhone
    teamsReadyTimeout: teamsReadyTimeout
    // The topic Bicep creates wins over an existing one's endpoint.
    eventGridTopicEndpoint: eventGridTopicEnabled ? eventGrid.outputs.endpoint : eventGridTopicEndpoint
    apiAudience: apiAudience
    apiTenantId: tenant().tenantId
    apiEasyAuthEnabled: apiEasyAuthEnabled
    virtualNetworkSubnetId: vnetEnabled ? network.outputs.appSubnetId : ''
    intakePaused: intakePaused
  }
  // The host starts with identity-based storage: let its roles exist first.
  dependsOn: [
    roles
  ]
}

// By default the postprovision hook grants the Graph permissions (infra/scripts/
// postprovision.sh), retrying while Entra ID replicates a new identity; this module is
// the opt-in alternative (GRANT_GRAPH_PERMISSIONS_WITH_BICEP=true).
module graphPermissions 'modules/graph-permissions.bicep' = if (grantGraphPermissions && grantGraphPermissionsWithBicep) {
  name: 'graph-permissions'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    setUsageLocation: setUsageLocation
    licensingMode: licensingMode
    forceSync: !empty(cloudSyncJob)
    teamsPhone: teamsPhone
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
output AZURE_WORKBOOK_ID string = alerts.outputs.workbookId
// Not named API_CLIENT_ID: azd would feed it back as that parameter and take the
// registration Bicep made for an existing one.
output AZURE_API_CLIENT_ID string = apiAudience
output AZURE_API_URL string = 'https://${functionApp.outputs.defaultHostName}/api/onboarding-requests'
output EVENT_GRID_TOPIC_NAME string = eventGridTopicEnabled ? eventGrid.outputs.topicName : ''
