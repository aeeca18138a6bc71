// What on-call sees: log alerts on the app's structured records in Application Insights,
// an optional e-mail action group, and a workbook (workbook.json).
//
// The app logs one record per thing that happened to `traces`, with
// customDimensions.onboardingEvent naming it and every other field a string
// (shared/telemetry.py): request.outcome (requestId, queueMessageId, outcome, reasonCode,
// trigger), sweep.summary (sweepSeconds, sweepBudgetSeconds, stoppedByBudget,
// pendingCount, oldestDeadline), graph.access_denied (requestId, call, permission,
// status), graph.trouble (call, status, kind), poison.held (queueMessageId, requestId,
// holdUntil), poison.reported (queueMessageId, requestId), message.set_aside (source,
// queueMessageId, requestId); since contract v1.2 intake.backlog (oldestMessageAgeSeconds,
// approximateMessageCount; once per sweep: the age of the oldest message waiting on
// user-onboard, 0 when empty), events.topic_unavailable (status, requestId, eventId,
// accessDenied, errorCode; the Event Grid topic did not answer a publish, or refused the
// app's identity: the event waits in the event outbox and the sweep publishes it later)
// and events.topic_rejected (status, requestId, eventId, errorCode; the topic refused an
// event as invalid, a bug: the outbox tries it again hourly).
// tests/infra checks that the queries below and the workbook's name nothing else.
//
// With an Event Grid topic (eventGridTopicId), metric alerts watch its deliveries too.
//
// Without alertEmail the rules still run and fire (Azure portal > Alerts, and the
// operators' Monitoring Reader role shows them), they just notify no one.

param appInsightsName string
@description('Prefix of the rule and action group names.')
param namePrefix string
param location string
param tags object

@description('Where alerts are e-mailed; empty for no action group.')
param alertEmail string
@description('An existing action group (resource id) every rule notifies too; empty for none.')
param existingActionGroupId string = ''
@description('Failure-rate alert: percentage of failed terminal outcomes in an hour.')
param failureRatePercent int
@description('Failure-rate alert: fewest terminal outcomes in the hour for it to count.')
param failureRateMinimumCount int
@description('Heartbeat alert: how long without a sweep.summary (about 3 sweep intervals).')
param sweepHeartbeatWindow string
@description('Intake backlog alert: minutes the oldest user-onboard message may wait.')
param intakeBacklogMinutes int
@description('The Event Grid topic whose deliveries are watched; empty for none.')
param eventGridTopicId string = ''

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: '${namePrefix}-oncall'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'onboarding' // at most 12 characters, shown in SMS and e-mail
    enabled: true
    emailReceivers: [
      {
        name: 'on-call'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Every rule notifies the action groups there are (CKV_ONBOARD_10, tests/infra): the
// e-mail one, and the platform team's.
var actionGroupIds = concat(empty(alertEmail) ? [] : [actionGroup.id], empty(existingActionGroupId) ? [] : [existingActionGroupId])
// The same, as metric alert rules name them.
var metricAlertActions = [for id in actionGroupIds: {
  actionGroupId: id
}]

// --- the queries (Application Insights' classic tables; the rule's window is the time filter) --

// A poisoned message held: the host gave up on a user-onboard message, and its request
// will be answered rejected/poison when POISON_HOLD is over, unless on-call fixes the
// cause and replays it first (`python -m ops replay`): this is the alert to act on.
var poisonHeldQuery = '''
traces
| where tostring(customDimensions.onboardingEvent) == "poison.held"
| project timestamp, message,
    queueMessageId = tostring(customDimensions.queueMessageId),
    requestId = tostring(customDimensions.requestId),
    holdUntil = tostring(customDimensions.holdUntil)
'''

// Any poisoned message reported: the host gave up on a user-onboard message after
// maxDequeueCount tries (the storage queues failed, or a bug), and once POISON_HOLD was
// over its request was answered rejected/poison.
var poisonReportedQuery = '''
traces
| where tostring(customDimensions.onboardingEvent) == "poison.reported"
| project timestamp, message,
    queueMessageId = tostring(customDimensions.queueMessageId),
    requestId = tostring(customDimensions.requestId)
'''

// The share of failed among the terminal outcomes (licensed, failed, rejected) of the
// window, when there were enough of them; one row when above the threshold.
var failureRateQuery = '''
traces
| where tostring(customDimensions.onboardingEvent) == "request.outcome"
| extend outcome = tostring(customDimensions.outcome)
| where outcome in ("licensed", "failed", "rejected")
| summarize terminal = count(), failed = countif(outcome == "failed")
| extend failedPercent = round(100.0 * failed / terminal, 1)
| where terminal >= minimumTerminal and failedPercent > failedPercentThreshold
'''

// Graph refused a call with 401/403: every request is blocked until the permission is
// granted (and in the app's token); one row per refused call and permission.
var accessDeniedQuery = '''
traces
| where tostring(customDimensions.onboardingEvent) == "graph.access_denied"
| summarize refusals = count(), requests = dcount(tostring(customDimensions.requestId))
    by call = tostring(customDimensions.call),
       permission = tostring(customDimensions.permission),
       status = tostring(customDimensions.status)
'''

// The sweep's heartbeat: the rule fires when this returns no row in the window (the app
// is not running, not indexing, or its timer is stuck).
var sweepHeartbeatQuery = '''
traces
| where tostring(customDimensions.onboardingEvent) == "sweep.summary"
'''

// The app refused to start: a SettingsError reads "app setting <NAME>: <problem>", and
// function indexing fails with it.
var settingsErrorQuery = '''
exceptions
| where message contains "app setting"
    or outerMessage contains "app setting"
    or innermostMessage contains "app setting"
| project timestamp, type, outerMessage, innermostMessage
'''

// A sweep used more than 80 % of its time budget, or stopped because of it: pending
// requests are piling up faster than one sweep can recheck them.
var sweepNearBudgetQuery = '''
traces
| where tostring(customDimensions.onboardingEvent) == "sweep.summary"
| extend sweepSeconds = todouble(customDimensions.sweepSeconds),
    sweepBudgetSeconds = todouble(customDimensions.sweepBudgetSeconds),
    stoppedByBudget = tostring(customDimensions.stoppedByBudget)
| where sweepSeconds > 0.8 * sweepBudgetSeconds or stoppedByBudget == "true"
| project timestamp, sweepSeconds, sweepBudgetSeconds, stoppedByBudget,
    pendingCount = toint(customDimensions.pendingCount)
'''

// A message the app could not handle was kept aside in the ledger (docs/operations.md).
var setAsideQuery = '''
traces
| where tostring(customDimensions.onboardingEvent) == "message.set_aside"
| project timestamp, message,
    source = tostring(customDimensions.source),
    queueMessageId = tostring(customDimensions.queueMessageId),
    requestId = tostring(customDimensions.requestId)
'''

// The oldest request waiting on user-onboard is older than the threshold: intake is
// paused, stalled (the trigger is not running), or falling behind. Reported by every sweep.
var intakeBacklogQuery = '''
traces
| where tostring(customDimensions.onboardingEvent) == "intake.backlog"
| extend oldestMessageAgeSeconds = todouble(customDimensions.oldestMessageAgeSeconds),
    approximateMessageCount = toint(customDimensions.approximateMessageCount)
| where oldestMessageAgeSeconds > thresholdMinutes * 60
| project timestamp, oldestMessageAgeSeconds, approximateMessageCount
'''

// Event Grid refused or did not answer a publish: the event is on the events queue and
// waits in the event outbox, which the sweep publishes again, but consumers of the topic
// get it late (a rejected event: not until the app is fixed).
var topicUnavailableQuery = '''
traces
| where tostring(customDimensions.onboardingEvent) in ("events.topic_unavailable", "events.topic_rejected")
| summarize refusals = count(), requests = dcount(tostring(customDimensions.requestId))
    by event = tostring(customDimensions.onboardingEvent), status = tostring(customDimensions.status)
'''

// Severity: 0 critical, 1 error, 2 warning, 3 informational. Each rule counts the rows
// its query returns over `window`, every `frequency`, and resolves itself once the
// condition is gone (autoMitigate).
var alerts = [
  {
    name: 'poison-held'
    displayName: 'User onboarding: poisoned message held (replay window open)'
    description: 'The Functions host gave up on a user-onboard message. Its request is answered rejected/poison when POISON_HOLD is over, unless it is replayed before: see docs/operations.md, poisoned messages.'
    severity: 1
    frequency: 'PT5M'
    window: 'PT15M'
    query: poisonHeldQuery
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'poison-reported'
    displayName: 'User onboarding: poisoned message reported'
    description: 'A user-onboard message failed maxDequeueCount times and, after POISON_HOLD, its request was answered rejected/poison. Storage trouble or a bug: see docs/operations.md, poisoned messages.'
    severity: 3
    frequency: 'PT5M'
    window: 'PT15M'
    query: poisonReportedQuery
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'failure-rate'
    displayName: 'User onboarding: high failure rate'
    description: 'More than ${failureRatePercent} % of the last hour\'s terminal outcomes are failed (at least ${failureRateMinimumCount} outcomes). See the workbook\'s outcomes by reason code.'
    severity: 2
    frequency: 'PT15M'
    window: 'PT1H'
    query: 'let minimumTerminal = ${failureRateMinimumCount};\nlet failedPercentThreshold = ${failureRatePercent};\n${failureRateQuery}'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'graph-access-denied'
    displayName: 'User onboarding: Graph access denied'
    description: 'Graph refused a call with 401/403: requests are blocked until the identity has the permission named in the alert (docs/deploy.md, Graph permissions).'
    severity: 1
    frequency: 'PT5M'
    window: 'PT15M'
    query: accessDeniedQuery
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'sweep-heartbeat'
    displayName: 'User onboarding: no sweep'
    description: 'No sweep reported for ${sweepHeartbeatWindow}: the app is not running or not indexing its functions (see also the settings alert), or its timer is stuck.'
    severity: 1
    frequency: 'PT5M'
    window: sweepHeartbeatWindow
    query: sweepHeartbeatQuery
    operator: 'LessThan'
    threshold: 1
  }
  {
    name: 'settings-error'
    displayName: 'User onboarding: app setting refused at start-up'
    description: 'The app did not start: an app setting is missing or malformed (the exception names it). Fix it with azd env set and azd provision.'
    severity: 1
    frequency: 'PT5M'
    window: 'PT15M'
    query: settingsErrorQuery
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'sweep-near-budget'
    displayName: 'User onboarding: sweep near its time budget'
    description: 'A sweep used more than 80 % of its budget or stopped because of it: pending requests are rechecked later than planned.'
    severity: 3
    frequency: 'PT15M'
    window: 'PT1H'
    query: sweepNearBudgetQuery
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    // Not muted while INTAKE_PAUSED=true: a pause is meant to be short, and messages
    // expire after their time-to-live (7 days by default) however deliberate the pause.
    name: 'intake-backlog'
    displayName: 'User onboarding: requests waiting on the intake queue'
    description: 'The oldest user-onboard message has waited more than ${intakeBacklogMinutes} minutes: intake is paused (INTAKE_PAUSED, or the function switch), stalled, or behind. Messages expire after their time-to-live: see docs/operations.md.'
    severity: 2
    frequency: 'PT5M'
    window: 'PT15M'
    query: 'let thresholdMinutes = ${intakeBacklogMinutes};\n${intakeBacklogQuery}'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'events-topic-unavailable'
    displayName: 'User onboarding: Event Grid topic unavailable'
    description: 'Event Grid refused or did not answer a publish. The events are on the events queue and wait in the event outbox, which the sweep publishes again: consumers of the topic get them late. See the event and status in the alert (events.topic_rejected: a bug, see docs/operations.md).'
    severity: 2
    frequency: 'PT5M'
    window: 'PT15M'
    query: topicUnavailableQuery
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'message-set-aside'
    displayName: 'User onboarding: message set aside'
    description: 'The app kept a message it could not handle aside in the request ledger: see docs/operations.md.'
    severity: 2
    frequency: 'PT5M'
    window: 'PT15M'
    query: setAsideQuery
    operator: 'GreaterThan'
    threshold: 0
  }
]

resource rules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for alert in alerts: {
  name: '${namePrefix}-${alert.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: alert.displayName
    description: alert.description
    severity: alert.severity
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: alert.frequency
    windowSize: alert.window
    criteria: {
      allOf: [
        {
          query: alert.query
          timeAggregation: 'Count'
          operator: alert.operator
          threshold: alert.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    // Not validated at deployment: a first `azd up` must not depend on Application
    // Insights having data yet. Run each query in Logs once (docs/deploy.md "Alerts").
    skipQueryValidation: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
}]

// --- Event Grid deliveries (metric alerts on the topic) ------------------------------------
// Metric names: learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/
// microsoft-eventgrid-topics-metrics (all Count, aggregated as Total).
var topicAlerts = [
  {
    name: 'events-delivery-failed'
    displayName: 'User onboarding: Event Grid delivery failing'
    description: 'Event Grid could not deliver events to a consumer (its queue or webhook refused or did not answer); it retries for up to 24 hours. The EventSubscriptionName dimension names the consumer.'
    severity: 2
    metric: 'DeliveryAttemptFailCount'
  }
  {
    name: 'events-dead-lettered'
    displayName: 'User onboarding: events dead-lettered'
    description: 'Event Grid gave up delivering events to a consumer and kept them in the events-deadletter container: the consumer must take them from there (docs/operations.md).'
    severity: 1
    metric: 'DeadLetteredCount'
  }
  {
    name: 'events-dropped'
    displayName: 'User onboarding: events dropped'
    description: 'Event Grid dropped events for a consumer without dead-lettering them: the consumer must replay them from the request ledger or the events queue (docs/operations.md).'
    severity: 1
    metric: 'DroppedEventCount'
  }
]

resource topicRules 'Microsoft.Insights/metricAlerts@2018-03-01' = [for alert in (empty(eventGridTopicId) ? [] : topicAlerts): {
  name: '${namePrefix}-${alert.name}'
  location: 'global'
  tags: tags
  properties: {
    description: '${alert.displayName}: ${alert.description}'
    severity: alert.severity
    enabled: true
    scopes: [
      eventGridTopicId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: alert.metric
          metricNamespace: 'Microsoft.EventGrid/topics'
          metricName: alert.metric
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    autoMitigate: true
    actions: metricAlertActions
  }
}]

// The operators' dashboard: intake, outcomes, pending requests, the sweep, Graph trouble.
resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(appInsights.id, 'user-onboarding-workbook')
  location: location
  tags: union(tags, { 'hidden-title': 'User onboarding' })
  kind: 'shared'
  properties: {
    displayName: 'User onboarding'
    category: 'workbook'
    sourceId: appInsights.id
    // The queries run against Application Insights unless a step names another resource.
    serializedData: string(union(loadJsonContent('workbook.json'), { fallbackResourceIds: [ appInsights.id ] }))
    version: '1.0'
  }
}

output workbookName string = workbook.name
output workbookId string = workbook.id
