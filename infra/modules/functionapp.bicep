// The Flex Consumption plan and the Linux Python 3.11 function app. The app runs
// as the user-assigned identity for everything: host storage (AzureWebJobsStorage__*),
// the deployment package, Application Insights and Microsoft Graph (AZURE_CLIENT_ID).

param planName string
param functionAppName string
param location string
param tags object

@description('Value of the azd-service-name tag: the service name in azure.yaml.')
param serviceName string

param identityId string
param identityClientId string

param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerUrl string
param appInsightsConnectionString string

param maximumInstanceCount int
param instanceMemoryMB int

// The app's settings (contract "Settings"; shared/names.py APP_SETTINGS).
param graphBaseUrl string
param sweepSchedule string
param syncTimeout string
param recheckInitialDelay string
param recheckMaxDelay string
param defaultUsageLocation string
param setUsageLocation bool
param defaultLicenses string
param licenseLeadTime string
param cloudSyncJob string
param licensingMode string
param licenseGroups string
param poisonHold string
param ledgerRetention string
param teamsPhone bool
param teamsReadyTimeout string
@description('The Event Grid topic endpoint every event is also published to; empty for none.')
param eventGridTopicEndpoint string

@description('The API\'s client id: the `aud` of the v2 access tokens the front door accepts.')
param apiAudience string
@description('The tenant whose tokens the front door accepts (issuer https://login.microsoftonline.com/<tenant>/v2.0).')
param apiTenantId string
@description('Put App Service built-in authentication in front of the API as a first gate.')
param apiEasyAuthEnabled bool

@description('The integration subnet (VNET_ENABLED): the app\'s outbound traffic goes through the virtual network; empty for none.')
param virtualNetworkSubnetId string

@description('Stop the queue trigger (AzureWebJobs.user_onboard.Disabled): user-onboard messages wait on the queue.')
param intakePaused bool

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    httpsOnly: true
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: [
        // Host storage, identity-based: no connection string, no key.
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storageBlobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storageQueueEndpoint
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storageTableEndpoint
        }
        // Telemetry with Entra ID auth (App Insights local auth is disabled).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // The app's own settings (contract "Settings").
        {
          name: 'GRAPH_BASE_URL'
          value: graphBaseUrl
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'SWEEP_SCHEDULE'
          value: sweepSchedule
        }
        {
          name: 'SYNC_TIMEOUT'
          value: syncTimeout
        }
        {
          name: 'RECHECK_INITIAL_DELAY'
          value: recheckInitialDelay
        }
        {
          name: 'RECHECK_MAX_DELAY'
          value: recheckMaxDelay
        }
        {
          // Empty means "none" (the contract default).
          name: 'DEFAULT_USAGE_LOCATION'
          value: defaultUsageLocation
        }
        {
          // Not string(bool): ARM renders that as 'True'/'False'.
          name: 'SET_USAGE_LOCATION'
          value: setUsageLocation ? 'true' : 'false'
        }
        {
          // Empty means "none" (the contract default).
          name: 'DEFAULT_LICENSES'
          value: defaultLicenses
        }
        {
          name: 'LICENSE_LEAD_TIME'
          value: licenseLeadTime
        }
        {
          // Empty means "none": no forced syncs (and no Synchronization.ReadWrite.All).
          name: 'CLOUD_SYNC_JOB'
          value: cloudSyncJob
        }
        {
          name: 'LICENSING_MODE'
          value: licensingMode
        }
        {
          // Empty means "none" (the contract default); group mode needs it.
          name: 'LICENSE_GROUPS'
          value: licenseGroups
        }
        {
          name: 'POISON_HOLD'
          value: poisonHold
        }
        {
          name: 'LEDGER_RETENTION'
          value: ledgerRetention
        }
        {
          // Not string(bool), as for SET_USAGE_LOCATION.
          name: 'TEAMS_PHONE'
          value: teamsPhone ? 'true' : 'false'
        }
        {
          name: 'TEAMS_READY_TIMEOUT'
          value: teamsReadyTimeout
        }
        {
          // Empty means "none": events go to the events queue only.
          name: 'EVENT_GRID_TOPIC_ENDPOINT'
          value: eventGridTopicEndpoint
        }
        // The HTTP front door's token checks (the app validates every token itself).
        {
          name: 'API_AUDIENCE'
          value: apiAudience
        }
        {
          name: 'API_TENANT_ID'
          value: apiTenantId
        }
        // The Functions host's switch for one function, here the queue trigger
        // (function_app.user_onboard). Set here, not by hand: `azd provision` replaces
        // every app setting with this list (docs/deploy.md "Rollback").
        {
          name: 'AzureWebJobs.user_onboard.Disabled'
          value: intakePaused ? 'true' : 'false'
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// App Service built-in authentication ("Easy Auth") as the front door's first gate:
// without a token of this tenant for this API, a request gets 401 before any function
// runs. Supported on Flex Consumption today: the plan's "Considerations" no longer list it
// (the preview's said "EasyAuth isn't currently supported"), and Microsoft's own Flex
// Consumption sample configures it (Azure-Samples/remote-mcp-functions-python,
// infra/app/api.bicep). The app still checks signature, issuer, audience, expiry and
// roles itself: Easy Auth does not check app roles.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (apiEasyAuthEnabled) {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: '${environment().authentication.loginEndpoint}${apiTenantId}/v2.0'
          clientId: apiAudience
        }
        validation: {
          allowedAudiences: [
            apiAudience
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
