// Log Analytics and workspace-based Application Insights. Local (instrumentation
// key) auth is disabled: the app sends telemetry with its managed identity.

param logAnalyticsName string
param appInsightsName string
param location string
param tags object
@description('An existing Log Analytics workspace (resource id); empty: this module creates one.')
param logAnalyticsWorkspaceId string = ''

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = if (empty(logAnalyticsWorkspaceId)) {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: empty(logAnalyticsWorkspaceId) ? logAnalytics.id : logAnalyticsWorkspaceId
    DisableLocalAuth: true
  }
}

output appInsightsName string = appInsights.name
output connectionString string = appInsights.properties.ConnectionString
