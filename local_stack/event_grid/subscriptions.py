"""Event subscriptions of the stand-in's topic: which events each one gets, and where.

A subscription is written as Azure's own `Microsoft.EventGrid/topics/eventSubscriptions`
resource writes it (the `properties` of the ARM/Bicep resource, with its `name` beside
them), so a subscription tried here is the one to deploy::

    {"name": "telephony",
     "destination": {"endpointType": "StorageQueue",
                     "properties": {"queueName": "telephony-events",
                                    "queueMessageTimeToLiveInSeconds": -1}},
     "filter": {"includedEventTypes": ["onboarding.user.licensed"],
                "subjectBeginsWith": "HR-", "subjectEndsWith": "",
                "isSubjectCaseSensitive": false,
                "advancedFilters": [{"operatorType": "StringIn", "key": "data.reason.code",
                                     "values": ["no_seats"]}]},
     "eventDeliverySchema": "CloudEventSchemaV1_0"}

Only Storage queue destinations are delivered (no webhook, Service Bus or Event Hubs), in
the CloudEvents schema the topic takes. Filter semantics, from learn.microsoft.com
"Understand event filtering for Event Grid subscriptions": `includedEventTypes` matches the
type exactly (case-insensitively; absent or null means every type); the subject filters are
prefix/suffix matches, case-insensitive unless `isSubjectCaseSensitive`, and an event
without a subject matches only empty subject filters; every condition must hold. Of the
advanced filters, the string operators (`StringIn`, `StringNotIn`, `StringBeginsWith`,
`StringEndsWith`, `StringContains`, and their `StringNot...` forms) on a CloudEvents
attribute or a `data.` path are supported, compared case-insensitively as Event Grid does;
other operators are refused when the subscription is created.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

# Storage queue names: 3-63 lower-case letters, digits and single hyphens.
_QUEUE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
# Event subscription names (ARM): 3-64 letters, digits and hyphens.
_SUBSCRIPTION_NAME = re.compile(r"[A-Za-z0-9-]{3,64}")
# Event Grid's default retry policy (learn.microsoft.com "Event Grid message delivery and
# retry"): 30 attempts within 1440 minutes.
DEFAULT_MAX_DELIVERY_ATTEMPTS: Final = 30
_STRING_OPERATORS: Final[dict[str, Callable[[str, tuple[str, ...]], bool]]] = {
    "StringIn": lambda value, wanted: value in wanted,
    "StringNotIn": lambda value, wanted: value not in wanted,
    "StringBeginsWith": lambda value, wanted: any(value.startswith(w) for w in wanted),
    "StringNotBeginsWith": lambda value, wanted: not any(value.startswith(w) for w in wanted),
    "StringEndsWith": lambda value, wanted: any(value.endswith(w) for w in wanted),
    "StringNotEndsWith": lambda value, wanted: not any(value.endswith(w) for w in wanted),
    "StringContains": lambda value, wanted: any(w in value for w in wanted),
    "StringNotContains": lambda value, wanted: not any(w in value for w in wanted),
}
_NEGATED: Final = frozenset(name for name in _STRING_OPERATORS if "Not" in name)


class SubscriptionError(ValueError):
    """A subscription the stand-in cannot take, with the reason."""


@dataclass(frozen=True)
class AdvancedFilter:
    operator: str
    key: str
    values: tuple[str, ...]

    def matches(self, event: Mapping[str, Any]) -> bool:
        value = _lookup(event, self.key)
        if not isinstance(value, str):
            # A missing key, or a value that is not a string (arrays are not filtered on,
            # per Microsoft's advanced-filtering page): the stand-in lets only the negated
            # operators match it, its own reading of what Microsoft leaves open.
            return self.operator in _NEGATED
        test = _STRING_OPERATORS[self.operator]
        return bool(test(value.lower(), tuple(v.lower() for v in self.values)))


@dataclass(frozen=True)
class Subscription:
    name: str
    queue_name: str
    # None: the queue's default (seven days); -1: never expires.
    message_ttl: int | None = None
    included_event_types: tuple[str, ...] | None = None
    subject_begins_with: str = ""
    subject_ends_with: str = ""
    subject_case_sensitive: bool = False
    advanced_filters: tuple[AdvancedFilter, ...] = ()
    max_delivery_attempts: int = DEFAULT_MAX_DELIVERY_ATTEMPTS
    document: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether `event` (a parsed CloudEvent) passes every filter of the subscription."""
        event_type = str(event.get("type", ""))
        if self.included_event_types is not None and event_type.lower() not in {
            t.lower() for t in self.included_event_types
        }:
            return False
        if not self._subject_matches(event.get("subject")):
            return False
        return all(f.matches(event) for f in self.advanced_filters)

    def _subject_matches(self, subject: object) -> bool:
        if not (self.subject_begins_with or self.subject_ends_with):
            return True
        if not isinstance(subject, str):
            return False
        begins, ends = self.subject_begins_with, self.subject_ends_with
        if not self.subject_case_sensitive:
            subject, begins, ends = subject.lower(), begins.lower(), ends.lower()
        return subject.startswith(begins) and subject.endswith(ends)


def _lookup(event: Mapping[str, Any], key: str) -> object:
    value: object = event
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def parse_subscription(document: Mapping[str, Any]) -> Subscription:
    """A subscription from its resource shape (module docstring); SubscriptionError says
    what is wrong."""
    if not isinstance(document, Mapping):
        raise SubscriptionError("a subscription is a JSON object")
    name = document.get("name")
    if not isinstance(name, str) or not _SUBSCRIPTION_NAME.fullmatch(name):
        raise SubscriptionError(f"name {name!r}: 3 to 64 letters, digits or hyphens")
    schema = document.get("eventDeliverySchema", "CloudEventSchemaV1_0")
    if schema != "CloudEventSchemaV1_0":
        raise SubscriptionError(
            f"{name}: eventDeliverySchema {schema!r}: the topic takes CloudEvents 1.0, and "
            "the stand-in delivers them as such (CloudEventSchemaV1_0)"
        )
    queue_name, ttl = _destination(name, document.get("destination"))
    filters = _filter(name, document.get("filter") or {})
    retry = document.get("retryPolicy") or {}
    attempts = retry.get("maxDeliveryAttempts", DEFAULT_MAX_DELIVERY_ATTEMPTS)
    if not isinstance(attempts, int) or not 1 <= attempts <= DEFAULT_MAX_DELIVERY_ATTEMPTS:
        raise SubscriptionError(f"{name}: retryPolicy.maxDeliveryAttempts must be 1 to 30")
    return Subscription(
        name=name,
        queue_name=queue_name,
        message_ttl=ttl,
        max_delivery_attempts=attempts,
        document=dict(document),
        **filters,
    )


def _destination(name: str, destination: object) -> tuple[str, int | None]:
    if not isinstance(destination, Mapping) or destination.get("endpointType") != "StorageQueue":
        raise SubscriptionError(
            f"{name}: destination.endpointType must be StorageQueue (the only destination "
            "the stand-in delivers to)"
        )
    properties = destination.get("properties") or {}
    queue = properties.get("queueName")
    if not isinstance(queue, str) or not _QUEUE_NAME.fullmatch(queue):
        raise SubscriptionError(
            f"{name}: destination.properties.queueName {queue!r} is not a queue name"
        )
    ttl = properties.get("queueMessageTimeToLiveInSeconds")
    # ARM: "cannot be zero or negative with the exception of using -1 to indicate that the
    # Time To Live of the message is Infinite".
    if ttl is not None and (
        not isinstance(ttl, int) or isinstance(ttl, bool) or (ttl <= 0 and ttl != -1)
    ):
        raise SubscriptionError(
            f"{name}: queueMessageTimeToLiveInSeconds must be a positive number of seconds or -1"
        )
    return queue, ttl


def _filter(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    types = spec.get("includedEventTypes")
    if types is not None and (
        not isinstance(types, list) or not all(isinstance(t, str) and t for t in types)
    ):
        raise SubscriptionError(f"{name}: filter.includedEventTypes must be a list of types")
    out: dict[str, Any] = {
        "included_event_types": tuple(types) if types is not None else None,
        "subject_case_sensitive": bool(spec.get("isSubjectCaseSensitive", False)),
        "advanced_filters": tuple(_advanced(name, f) for f in spec.get("advancedFilters") or []),
    }
    for key, attribute in (
        ("subjectBeginsWith", "subject_begins_with"),
        ("subjectEndsWith", "subject_ends_with"),
    ):
        value = spec.get(key) or ""
        if not isinstance(value, str):
            raise SubscriptionError(f"{name}: filter.{key} must be a string")
        out[attribute] = value
    return out


def _advanced(name: str, spec: object) -> AdvancedFilter:
    if not isinstance(spec, Mapping):
        raise SubscriptionError(f"{name}: each advanced filter is an object")
    operator, key, values = spec.get("operatorType"), spec.get("key"), spec.get("values")
    if operator not in _STRING_OPERATORS:
        raise SubscriptionError(
            f"{name}: advanced filter operatorType {operator!r} is not supported by the "
            f"stand-in (only {', '.join(sorted(_STRING_OPERATORS))})"
        )
    if not isinstance(key, str) or not key:
        raise SubscriptionError(f"{name}: advanced filter key must be an attribute or data.<path>")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise SubscriptionError(f"{name}: advanced filter values must be a list of strings")
    return AdvancedFilter(str(operator), key, tuple(values))


def parse_subscriptions(documents: Sequence[Mapping[str, Any]]) -> list[Subscription]:
    """Several subscriptions, with distinct names (a config file's `subscriptions`)."""
    parsed = [parse_subscription(d) for d in documents]
    names = [s.name.lower() for s in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SubscriptionError(f"subscription names must be unique: {', '.join(duplicates)}")
    return parsed
