"""The `Directory` port on Microsoft Graph, through msgraph-sdk, one module per job:

    directory  GraphDirectory: lookups, SKUs, writes, group licensing, Cloud Sync
    teams      GraphTeams (v1.2): Teams readiness, numbers, assignNumber and its operation
    probes     lookup URLs (`Probe.relative_url`), OData literals
    sender     one call: the throttling gate, short retries, raw JSON answers
    gate       the process's throttling gate
    translate  msgraph-sdk and httpx errors into `GraphError`, in one place
    reading    Graph's answers as the app's data
    client     the request adapter: managed identity, or the emulator's token

Lookup URLs are built in one place, `Probe.relative_url` (the UPN as one percent-encoded
path segment, or `users('...')` for a UPN starting with `$`; filter values as OData
literals), and serve both single GETs and `$batch` items (whose body is built here:
msgraph-core's helpers send `depends_on`). Writes use msgraph-sdk's request builders and
models. Answers are read as raw JSON through the SDK's request adapter (auth,
middleware), which avoids loading ~1,200 typed model modules on a cold start.

Every msgraph-sdk `APIError`/`ODataError` and httpx error is translated into
`shared.domain.errors.GraphError` in `translate.translate`, and nowhere else: what Graph
meant (`kind`) and which call it refused; what to do about it is a decision
(`shared.decisions`).

OData string literals escape `'` as `''` (`odata_literal`); that is the only way a
value from a message reaches a `$filter`.
"""

from shared.adapters.graph.client import GRAPH_SCOPE, build_adapter
from shared.adapters.graph.directory import BATCH_LIMIT, SKU_FIELDS, GraphDirectory, connect
from shared.adapters.graph.gate import DEFAULT_THROTTLE_SECONDS, ThrottleGate
from shared.adapters.graph.probes import USER_FIELDS, odata_literal
from shared.adapters.graph.teams import GraphTeams

__all__ = [
    "BATCH_LIMIT",
    "DEFAULT_THROTTLE_SECONDS",
    "GRAPH_SCOPE",
    "SKU_FIELDS",
    "USER_FIELDS",
    "GraphDirectory",
    "GraphTeams",
    "ThrottleGate",
    "build_adapter",
    "connect",
    "odata_literal",
]
