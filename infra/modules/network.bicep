// VNET_ENABLED: a virtual network for the function app's outbound traffic (Flex
// Consumption VNet integration) and private endpoints, with private DNS zones, for the
// storage account's blob, queue and table services and the Event Grid topic, so that the
// app reaches them privately and their public endpoints can be closed (as Microsoft's
// Flex Consumption samples do it: Azure-Samples/remote-mcp-functions-python infra/app/
// vnet.bicep and storage-PrivateEndpoint.bicep, here as plain resources).

param name string
param location string
param tags object

@description('Address space of the virtual network; choose one that does not overlap yours if you peer it.')
param addressPrefix string
@description('The function app\'s integration subnet, delegated to Microsoft.App/environments.')
param appSubnetPrefix string
@description('The subnet of the private endpoints.')
param privateEndpointSubnetPrefix string

param storageAccountName string
@description('The Event Grid topic to reach privately; empty for none.')
param eventGridTopicName string = ''

var appSubnetName = 'app'
var privateEndpointSubnetName = 'private-endpoints'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// One private endpoint per service the app reaches, each with its private DNS zone
// (Azure's zone names: learn.microsoft.com/azure/private-link/private-endpoint-dns).
var storageEndpoints = [for service in [
  'blob'
  'queue'
  'table'
]: {
  groupId: service
  zone: 'privatelink.${service}.${environment().suffixes.storage}'
  resourceId: storage.id
}]
var topicEndpoints = empty(eventGridTopicName) ? [] : [
  {
    groupId: 'topic'
    zone: 'privatelink.eventgrid.azure.net'
    resourceId: resourceId('Microsoft.EventGrid/topics', eventGridTopicName)
  }
]
var endpoints = concat(storageEndpoints, topicEndpoints)

resource vnet 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          // The delegation Flex Consumption requires (learn.microsoft.com/azure/
          // azure-functions/flex-consumption-plan#considerations).
          delegations: [
            {
              name: 'Microsoft.App.environments'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: privateEndpointSubnetName
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [for endpoint in endpoints: {
  name: endpoint.zone
  location: 'global'
  tags: tags
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [for (endpoint, i) in endpoints: {
  parent: zones[i]
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2023-11-01' = [for endpoint in endpoints: {
  name: 'pe-${endpoint.groupId}-${name}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, privateEndpointSubnetName)
    }
    privateLinkServiceConnections: [
      {
        name: endpoint.groupId
        properties: {
          privateLinkServiceId: endpoint.resourceId
          groupIds: [
            endpoint.groupId
          ]
        }
      }
    ]
  }
}]

// The endpoint's A record in its zone, kept by Azure.
resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = [for (endpoint, i) in endpoints: {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: endpoint.groupId
        properties: {
          privateDnsZoneId: zones[i].id
        }
      }
    ]
  }
}]

output appSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, appSubnetName)
output privateEndpointGroups array = [for endpoint in endpoints: endpoint.groupId]
