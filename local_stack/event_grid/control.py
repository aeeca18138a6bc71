"""The control API under `/_eventgrid`, a path Event Grid never uses; it needs no
credential. Bodies are JSON; refusals are `{"error": "<text>"}` with 400 or 404.

    GET    /_eventgrid                          a summary: endpoint, subscriptions, faults...
    GET    /_eventgrid/subscriptions            the subscriptions (their resource documents)
    PUT    /_eventgrid/subscriptions/{name}     add or replace one (body: the document)
    DELETE /_eventgrid/subscriptions/{name}
    GET    /_eventgrid/deliveries[?subscription=NAME]   the delivery log
    DELETE /_eventgrid/deliveries               forget finished deliveries
    GET    /_eventgrid/publishes                the publish log (status, credential, event ids)
    DELETE /_eventgrid/publishes
    POST   /_eventgrid/faults                   {"kind": "status"|"timeout"|"drop", "status": 503,
                                                 "retryAfter": 2, "seconds": 30, "count": 1}
    DELETE /_eventgrid/faults                   clear faults, outage and denial
    PUT    /_eventgrid/outage                   {"status": 503}: every publish answers it
    DELETE /_eventgrid/outage
    PUT    /_eventgrid/denied                   {"status": 401|403}: the identity is refused
    DELETE /_eventgrid/denied
    POST   /_eventgrid/wait                     {"timeout": 10}: until deliveries are done
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .faults import FAULT_STATUSES, Fault, FaultError
from .subscriptions import SubscriptionError, parse_subscription

if TYPE_CHECKING:
    from .server import EventGridStandIn

ControlReply = tuple[int, Any]


def handle_control(
    standin: EventGridStandIn, method: str, segments: list[str], query: str, body: Any
) -> ControlReply:
    try:
        return _route(standin, method, segments, query, body)
    except (SubscriptionError, FaultError) as exc:
        return 400, {"error": str(exc)}


def _route(
    standin: EventGridStandIn, method: str, segments: list[str], query: str, body: Any
) -> ControlReply:
    match method, segments:
        case "GET", []:
            return 200, standin.summary()
        case "GET", ["subscriptions"]:
            return 200, [dict(s.document) for s in standin.topic.subscriptions()]
        case "PUT", ["subscriptions", name]:
            document = {**_object(body), "name": name}
            standin.topic.put_subscription(parse_subscription(document))
            return 200, document
        case "DELETE", ["subscriptions", name]:
            if standin.topic.remove_subscription(name):
                return 204, None
            return 404, {"error": f"no subscription named {name}"}
        case "GET", ["deliveries"]:
            wanted = parse_qs(query).get("subscription", [None])[0]
            return 200, standin.deliveries(wanted)
        case "DELETE", ["deliveries"]:
            standin.clear_deliveries()
            return 204, None
        case "GET", ["publishes"]:
            return 200, standin.topic.publishes()
        case "DELETE", ["publishes"]:
            standin.topic.clear_log()
            return 204, None
        case "POST", ["faults"]:
            spec = _object(body)
            count = spec.get("count", 1)
            if not isinstance(count, int) or not 1 <= count <= 10_000:
                raise FaultError("count must be 1 to 10000")
            standin.topic.faults.add(Fault.parse(dict(spec)), count)
            return 200, {"pending": standin.topic.faults.pending()}
        case "DELETE", ["faults"]:
            standin.topic.faults.clear()
            return 204, None
        case "PUT", ["outage"]:
            standin.outage(_status(_object(body), FAULT_STATUSES, 503))
            return 204, None
        case "PUT", ["denied"]:
            standin.deny(_status(_object(body), frozenset({401, 403}), 401))
            return 204, None
        case "DELETE", ["outage"]:
            standin.topic.faults.outage = None
            return 204, None
        case "DELETE", ["denied"]:
            standin.topic.faults.denied = None
            return 204, None
        case "POST", ["wait"]:
            timeout = _object(body).get("timeout", 10)
            if not isinstance(timeout, int | float) or not 0 <= timeout <= 300:
                raise FaultError("timeout must be 0 to 300 seconds")
            return 200, {"idle": standin.wait_for_deliveries(float(timeout))}
    return 404, {"error": f"no control route {method} /_eventgrid/{'/'.join(segments)}"}


def _object(body: Any) -> Mapping[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise FaultError("the body must be a JSON object")
    return body


def _status(spec: Mapping[str, Any], allowed: frozenset[int], default: int) -> int:
    status = spec.get("status", default)
    if status not in allowed:
        raise FaultError(f"status must be one of {sorted(allowed)}")
    return int(status)
