// The Event Grid custom topic every event is also published to (contract v1.2, "Events
// to every consumer"), one subscription per consumer, and their queues and dead letters.
//
// The app publishes with its user-assigned identity (EventGrid Data Sender on the topic;
// local, key-based auth is disabled). Event Grid delivers with the topic's system-assigned
// identity: the storage account has no keys (allowSharedKeyAccess: false), and behind a
// storage firewall only a system-assigned identity, as a trusted service, gets through
// (learn.microsoft.com/azure/event-grid/handler-storage-queues, note on firewalls; roles
// per destination: learn.microsoft.com/azure/event-grid/add-identity-roles).
// Consumers are entries of `consumers` (docs/deploy.md "Adding an event consumer").

param topicName string
param location string
param tags object
param storageAccountName string
@description('The app\'s user-assigned identity: it publishes to the topic.')
param identityPrincipalId string

@description('''One entry per consumer: {name, principalId?, principalType?, webhookUrl?,
includedEventTypes?, subjectBeginsWith?, subjectEndsWith?}. Without webhookUrl, events go to
the queue events-<name> in this storage account, which principalId may read.''')
param consumers array

@description('Disabled when the app reaches the topic through a private endpoint (vnetEnabled).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Blob container that keeps the events Event Grid gave up on, for every subscription.')
param deadLetterContainerName string = 'events-deadletter'

// EventGrid Data Sender: publish events to the topic
var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'
// Storage Queue Data Message Sender: add messages (Event Grid's delivery)
var storageQueueDataMessageSender = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
// Storage Queue Data Message Processor: peek, receive and delete messages
var storageQueueDataMessageProcessor = '8a0f0c08-91a1-4084-bc3d-661d67233fed'
// Storage Blob Data Contributor: write dead-lettered events
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

// Consumers that get a queue here (the others have a webhook).
var queueConsumers = filter(consumers, c => empty(c.?webhookUrl ?? ''))

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

// 2025-02-15: the current stable Event Grid API, which has minimumTlsVersionAllowed.
resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: topicName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    // The app publishes the same CloudEvents 1.0 JSON it puts on the events queue.
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    minimumTlsVersionAllowed: '1.2'
    publicNetworkAccess: publicNetworkAccess
  }
}

// Each queue consumer's own queue, beside the contract's queues.
resource consumerQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for c in queueConsumers: {
  parent: queueService
  name: 'events-${c.name}'
}]

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Delivery: a queue here with the topic's identity, or the consumer's webhook (which must
// answer the CloudEvents validation handshake). Retried for up to 24 hours, then dead-lettered.
resource subscriptions 'Microsoft.EventGrid/topics/eventSubscriptions@2025-02-15' = [for c in consumers: {
  parent: topic
  name: c.name
  properties: union({
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    filter: {
      includedEventTypes: c.?includedEventTypes ?? null
      subjectBeginsWith: c.?subjectBeginsWith ?? ''
      subjectEndsWith: c.?subjectEndsWith ?? ''
      isSubjectCaseSensitive: true
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainer.name
        }
      }
    }
  }, empty(c.?webhookUrl ?? '') ? {
    deliveryWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: storage.id
          queueName: 'events-${c.name}'
          // -1: never expire; a message waits until the consumer takes it.
          queueMessageTimeToLiveInSeconds: -1
        }
      }
    }
  } : {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: c.webhookUrl
        maxEventsPerBatch: 1
      }
    }
  })
  dependsOn: [
    consumerQueues
    topicQueueSender
    topicDeadLetterWriter
  ]
}]

// EventGrid Data Sender on the topic: the app publishes every event there.
resource appTopicSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, identityPrincipalId, eventGridDataSender)
  scope: topic
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
  }
}

// The topic's identity only exists once the topic does, and a role assignment's name must
// be known at the start of the deployment: the two below are named after the topic's id.

// Storage Queue Data Message Sender on each consumer queue: Event Grid delivers there.
resource topicQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (c, i) in queueConsumers: {
  name: guid(consumerQueues[i].id, topic.id, storageQueueDataMessageSender)
  scope: consumerQueues[i]
  properties: {
    principalId: topic.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSender)
  }
}]

// Storage Blob Data Contributor on the dead-letter container: Event Grid writes there
// what it could not deliver.
resource topicDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, topic.id, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    principalId: topic.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
  }
}

// Storage Queue Data Message Processor on its own queue: the consumer reads and deletes
// its events (and nothing else in the account).
resource consumerQueueProcessor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (c, i) in queueConsumers: if (!empty(c.?principalId ?? '')) {
  name: guid(consumerQueues[i].id, c.?principalId ?? '', storageQueueDataMessageProcessor)
  scope: consumerQueues[i]
  properties: {
    principalId: c.?principalId ?? ''
    principalType: c.?principalType ?? 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageProcessor)
  }
}]

output topicName string = topic.name
output topicId string = topic.id
// What the app publishes to (EVENT_GRID_TOPIC_ENDPOINT), ending in /api/events.
output endpoint string = topic.properties.endpoint
