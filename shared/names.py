"""Names the outside world depends on: queue names and app-setting names (contract v1)."""

from typing import Final

QUEUE_REQUESTS: Final = "user-onboard"
QUEUE_POISON: Final = "user-onboard-poison"
QUEUE_PENDING: Final = "user-onboard-pending"
QUEUE_EVENTS: Final = "user-onboard-events"
ALL_QUEUES: Final = (QUEUE_REQUESTS, QUEUE_POISON, QUEUE_PENDING, QUEUE_EVENTS)
# The request ledger (Azure Table storage, same account): decided outcomes, the operators'
# view of every request, and the messages set aside.
TABLE_REQUESTS: Final = "onboardingrequests"

STORAGE_CONNECTION: Final = "AzureWebJobsStorage"

# Every app setting the app reads (besides the AzureWebJobsStorage connection).
APP_SETTINGS: Final = (
    "GRAPH_BASE_URL",
    "AZURE_CLIENT_ID",
    "SWEEP_SCHEDULE",
    "SYNC_TIMEOUT",
    "RECHECK_INITIAL_DELAY",
    "RECHECK_MAX_DELAY",
    "DEFAULT_USAGE_LOCATION",
    "SET_USAGE_LOCATION",
    "DEFAULT_LICENSES",
    "POISON_HOLD",
    "CLOUD_SYNC_JOB",
    "LICENSE_LEAD_TIME",
    "LICENSING_MODE",
    "LICENSE_GROUPS",
    "LEDGER_RETENTION",
    "TEAMS_PHONE",
    "TEAMS_READY_TIMEOUT",
    "EVENT_GRID_TOPIC_ENDPOINT",
    "API_AUDIENCE",
    "API_TENANT_ID",
)
