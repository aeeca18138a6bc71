// The storage account: the Functions host's storage, the four queues of the
// contract, the request ledger table, and the blob container Flex Consumption deploys
// the app package from.
// No account keys: everything reaches it with Entra ID (role assignments in roles.bicep).

param name string
param location string
param tags object
param deploymentContainerName string

@description('Disabled with VNET_ENABLED: the app reaches the account through private endpoints (network.bicep).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'
@description('Deny with VNET_ENABLED: nothing but private endpoints (and trusted services, below) gets in.')
@allowed([
  'Allow'
  'Deny'
])
param networkDefaultAction string = 'Allow'
@description('AzureServices lets trusted Azure services with a role through the firewall (Event Grid delivering to its queues); None for no exception.')
@allowed([
  'AzureServices'
  'None'
])
param networkBypass string = 'AzureServices'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: networkDefaultAction
      bypass: networkBypass
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Flex Consumption reads the app package from this container (functionapp.bicep).
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// The queues of the contract (shared/names.py), each a top-level resource with
// `parent:` so that every checker sees it. tests/infra compares these names with
// shared.names.ALL_QUEUES and with the function app's bindings.

// Onboarding requests, written by HR systems, read by the queue trigger.
resource requestsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'user-onboard'
}

// Where the Functions host moves a request after maxDequeueCount failed tries
// (host.json); the sweep reports each one as a rejected event, then removes it.
resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'user-onboard-poison'
}

// The app's own recheck state for users not synced yet; read by the timer sweep.
resource pendingQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'user-onboard-pending'
}

// CloudEvents for HR systems: one terminal event per request.
resource eventsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'user-onboard-events'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// The request ledger (shared/adapters/ledger.py, shared.names.TABLE_REQUESTS): each request's
// decided outcome, recorded before it is published, the operators' view of every
// request, and the messages set aside. The app's identity has Storage Table Data
// Contributor on the account (roles.bicep).
resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: 'onboardingrequests'
}

output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainer.name}'
