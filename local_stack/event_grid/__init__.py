"""A local stand-in for an Azure Event Grid custom topic (CloudEvents 1.0 input schema) and
its event subscriptions to Storage queues, for the app's Event Grid publisher
(`shared.adapters.event_grid`) and its consumers. Standard library HTTP on 127.0.0.1 only;
deliveries go to Azurite with azure-storage-queue.

- `POST /api/events?api-version=2018-01-01`: the publish API as azure-eventgrid calls it,
  with Event Grid's limits (1 MB per request and per event, 5,000 events per request,
  5,000 events or 5 MB per second), credentials (`aeg-sas-key`, `aeg-sas-token`,
  `Authorization: Bearer`, all checked) and error answers (`wire`, `auth`, `faults`).
- Subscriptions in Azure's own resource shape, with `includedEventTypes`,
  `subjectBeginsWith`/`subjectEndsWith` and string advanced filters (`subscriptions`);
  each matching event goes to the subscription's queue as Event Grid writes it there, one
  base64-encoded JSON event per message, with delivery retries (`delivery`).
- A control API under `/_eventgrid` (`control`): subscriptions, the publish and delivery
  logs, injected faults (503/500/429/timeout/dropped connection), an outage, a refused
  identity. `go_down()`/`come_up()` close and reopen the listener.

In-process::

    with start_event_grid(storage_connection_string=azurite.connection_string,
                          subscriptions=[...]) as grid:
        grid.endpoint       # http://127.0.0.1:PORT/api/events
        grid.control_url    # http://127.0.0.1:PORT/_eventgrid

or as a process: `python -m local_stack.event_grid --storage CONNECTION_STRING
[--config FILE] [--port N] [--ready-file PATH] [--key K] [--token T] [--no-local-auth]
[--retry-scale S]`. More in README.md beside this file.
"""

from .delivery import queue_text
from .server import EventGridStandIn, start_event_grid
from .subscriptions import Subscription, SubscriptionError, parse_subscription

__all__ = [
    "EventGridStandIn",
    "Subscription",
    "SubscriptionError",
    "parse_subscription",
    "queue_text",
    "start_event_grid",
]
