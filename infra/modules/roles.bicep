// Azure RBAC: the app's managed identity, the deploying user, the HR systems and the
// on-call operators. The app's identity works on the storage account as a whole (the
// Functions host creates its own blob containers and tables there); everyone else gets
// the one queue, table or monitoring resource they use, nothing account-wide.
// Assignment names are guid(scope.id, principalId, roleId): stable across re-deploys.

param storageAccountName string
param appInsightsName string
@description('The operators\' workbook (alerts.bicep).')
param workbookName string
param identityPrincipalId string

@description('Object id of the deploying user; empty to skip their assignments.')
param deployerPrincipalId string = ''
@allowed([
  'User'
  'ServicePrincipal'
])
param deployerPrincipalType string = 'User'

@description('HR systems: [{principalId, principalType}]. They post requests.')
param hrPrincipals array = []
@description('The HR systems that read the shared events queue: those without an Event Grid queue of their own.')
param hrEventsQueueReaders array = []
@description('On-call operators: [{principalId, principalType}]. The request view, replay and the workbook.')
param operatorPrincipals array = []

// Storage Blob Data Owner
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// Storage Queue Data Contributor
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// Storage Queue Data Message Sender: add messages
var storageQueueDataMessageSender = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
// Storage Queue Data Message Processor: peek, receive and delete messages
var storageQueueDataMessageProcessor = '8a0f0c08-91a1-4084-bc3d-661d67233fed'
// Storage Table Data Contributor
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
// Monitoring Metrics Publisher
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
// Monitoring Reader
var monitoringReader = '43d0d8ad-25c7-4714-9337-8ba259a9fe05'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// The queues and the table storage.bicep declares, as scopes for the narrower roles
// (tests/infra checks these names against storage.bicep and shared/names.py).
resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource requestsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: 'user-onboard'
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: 'user-onboard-poison'
}

resource eventsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: 'user-onboard-events'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: tableService
  name: 'onboardingrequests'
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' existing = {
  name: workbookName
}

// --- the app's managed identity ------------------------------------------------------

// Storage Blob Data Owner: the host's blob leases (timer singleton, queue listener
// locks) and the Flex Consumption deployment package container.
resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
  }
}

// Storage Queue Data Contributor: the queue trigger (read, delete, move to -poison)
// and the app's own clients (pending queue, events queue, poison sweep).
resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
  }
}

// Storage Table Data Contributor: the app's request ledger is a table
// (onboardingrequests, storage.bicep), and the Functions host writes its diagnostic
// events to a table in AzureWebJobsStorage (AzureWebJobsStorage__tableServiceUri).
resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, storageTableDataContributor)
  scope: storage
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
  }
}

// Monitoring Metrics Publisher: Entra-authenticated telemetry to Application
// Insights, whose local (instrumentation key) auth is disabled.
resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identityPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
  }
}

// --- the deploying user: test messages with `az storage message ... --auth-mode login` --

// Storage Queue Data Message Sender on user-onboard: post test requests (docs/deploy.md),
// and re-post a poisoned one.
resource deployerRequestsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(requestsQueue.id, deployerPrincipalId, storageQueueDataMessageSender)
  scope: requestsQueue
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSender)
  }
}

// Storage Queue Data Message Processor on user-onboard-events: peek at (or consume) the outcomes.
resource deployerEventsProcessor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(eventsQueue.id, deployerPrincipalId, storageQueueDataMessageProcessor)
  scope: eventsQueue
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageProcessor)
  }
}

// Storage Queue Data Message Processor on user-onboard-poison: look at poisoned messages
// and take one off the queue to replay it.
resource deployerPoisonProcessor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(poisonQueue.id, deployerPrincipalId, storageQueueDataMessageProcessor)
  scope: poisonQueue
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageProcessor)
  }
}

// --- HR systems (hrPrincipals) -----------------------------------------------------------

// Storage Queue Data Message Sender on user-onboard: post onboarding requests.
resource hrRequestsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for hr in hrPrincipals: {
  name: guid(requestsQueue.id, hr.principalId, storageQueueDataMessageSender)
  scope: requestsQueue
  properties: {
    principalId: hr.principalId
    principalType: hr.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSender)
  }
}]

// Storage Queue Data Message Processor on user-onboard-events: read the outcomes and
// delete each once handled (v1 integrators; one with its own Event Grid subscription reads
// its own queue instead, eventgrid.bicep).
resource hrEventsProcessor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for hr in hrEventsQueueReaders: {
  name: guid(eventsQueue.id, hr.principalId, storageQueueDataMessageProcessor)
  scope: eventsQueue
  properties: {
    principalId: hr.principalId
    principalType: hr.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageProcessor)
  }
}]

// --- on-call operators (operatorPrincipals; docs/operations.md) ----------------------------

// Storage Table Data Contributor on the onboardingrequests table: the request view reads
// the ledger, and a replay marks what it re-posted.
resource operatorLedgerContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for operator in operatorPrincipals: {
  name: guid(ledgerTable.id, operator.principalId, storageTableDataContributor)
  scope: ledgerTable
  properties: {
    principalId: operator.principalId
    principalType: operator.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
  }
}]

// Storage Queue Data Message Processor on user-onboard-poison: look at and remove
// poisoned messages.
resource operatorPoisonProcessor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for operator in operatorPrincipals: {
  name: guid(poisonQueue.id, operator.principalId, storageQueueDataMessageProcessor)
  scope: poisonQueue
  properties: {
    principalId: operator.principalId
    principalType: operator.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageProcessor)
  }
}]

// Storage Queue Data Message Sender on user-onboard: a replay re-posts the request.
resource operatorRequestsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for operator in operatorPrincipals: {
  name: guid(requestsQueue.id, operator.principalId, storageQueueDataMessageSender)
  scope: requestsQueue
  properties: {
    principalId: operator.principalId
    principalType: operator.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSender)
  }
}]

// Monitoring Reader on Application Insights: the app's logs, the workbook's queries and
// the alerts fired on it.
resource operatorAppInsightsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for operator in operatorPrincipals: {
  name: guid(appInsights.id, operator.principalId, monitoringReader)
  scope: appInsights
  properties: {
    principalId: operator.principalId
    principalType: operator.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringReader)
  }
}]

// Monitoring Reader on the workbook: open it (it is a resource of its own, beside
// Application Insights in the resource group).
resource operatorWorkbookReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for operator in operatorPrincipals: {
  name: guid(workbook.id, operator.principalId, monitoringReader)
  scope: workbook
  properties: {
    principalId: operator.principalId
    principalType: operator.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringReader)
  }
}]
