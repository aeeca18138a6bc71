"""The Event Grid topic (infra/modules/eventgrid.bicep): CloudEvents in, no keys, every
consumer a subscription of its own with retries and dead letters, each identity the one
role it needs, and the app told where to publish.

Values come from the Bicep syntax tree; main.bicep's expressions for the principals are
evaluated with `infra_support.evaluate` for sample inputs.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from infra_support import (
    INFRA,
    Declaration,
    Expr,
    bicep_tree,
    evaluate,
    modules_of,
    params_of,
    resources_of,
    variable_nodes_of,
)

from shared import names

MODULE = INFRA / "modules" / "eventgrid.bicep"
TREE = bicep_tree(MODULE)
SUBSCRIPTION_KEYS = {
    "name",
    "principalId",
    "principalType",
    "webhookUrl",
    "includedEventTypes",
    "subjectBeginsWith",
    "subjectEndsWith",
}
EVENT_TYPES = {
    "onboarding.user.scheduled",
    "onboarding.user.awaiting_sync",
    "onboarding.user.blocked",
    "onboarding.user.provisioning",
    "onboarding.user.licensed",
    "onboarding.user.failed",
    "onboarding.request.rejected",
}


def _resource(name: str) -> Declaration:
    (found,) = [d for d in resources_of(TREE) if d.name == name]
    return found


def consumer_problems(consumer: dict[str, Any]) -> list[str]:
    """What is wrong with one entry of eventConsumers (empty when it is fine)."""
    problems = [f"unknown key {key}" for key in sorted(set(consumer) - SUBSCRIPTION_KEYS)]
    name = consumer.get("name", "")
    # It names the subscription (3-64 characters) and the queue events-<name> (3-63
    # lowercase letters, digits and single hyphens).
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) or not 3 <= len(name) <= 56:
        problems.append(f"name {name!r}: 3 to 56 lowercase letters, digits and hyphens")
    url = consumer.get("webhookUrl")
    if url is not None and not url.startswith("https://"):
        problems.append("webhookUrl must be https")
    if url is not None and "principalId" in consumer:
        problems.append("principalId reads a queue; a webhook consumer has none")
    unknown = set(consumer.get("includedEventTypes", [])) - EVENT_TYPES
    problems += [f"no event type {event_type}" for event_type in sorted(unknown)]
    return problems


# --- the topic --------------------------------------------------------------------------


def test_the_topic_takes_cloudevents_with_entra_id_only() -> None:
    """CloudEvents 1.0 input (the events queue's JSON), keys disabled, TLS 1.2, and a
    system-assigned identity for delivery behind a storage firewall."""
    topic = _resource("topic")
    assert topic.target == "Microsoft.EventGrid/topics@2025-02-15"
    assert topic.body["identity"] == {"type": "SystemAssigned"}
    assert topic.body["properties"] == {
        "inputSchema": "CloudEventSchemaV1_0",
        "disableLocalAuth": True,
        "minimumTlsVersionAllowed": "1.2",
        "publicNetworkAccess": Expr("publicNetworkAccess"),
    }


def test_main_creates_the_topic_only_when_asked_and_tells_the_app_its_endpoint() -> None:
    """EVENT_GRID_TOPIC_ENABLED creates it; EVENT_GRID_TOPIC_ENDPOINT names an existing one;
    the app setting is the created topic's endpoint, else that value (empty by default)."""
    main = bicep_tree(INFRA / "main.bicep")
    (module,) = [m for m in modules_of(main) if m.target == "modules/eventgrid.bicep"]
    assert module.condition == "eventGridTopicEnabled"
    assert module.body["params"]["consumers"] == Expr("eventConsumers")
    params = params_of(main)
    assert params["eventGridTopicEnabled"].default is False
    assert params["eventGridTopicEndpoint"].default == ""
    (app,) = [m for m in modules_of(main) if m.target == "modules/functionapp.bicep"]
    assert app.body["params"]["eventGridTopicEndpoint"] == Expr(
        "eventGridTopicEnabled ? eventGrid.outputs.endpoint : eventGridTopicEndpoint"
    )
    outputs = (MODULE.read_text(encoding="utf-8")).splitlines()
    assert "output endpoint string = topic.properties.endpoint" in outputs
    assert "EVENT_GRID_TOPIC_ENDPOINT" in names.APP_SETTINGS


# --- the subscriptions ------------------------------------------------------------------


def test_each_consumer_gets_a_subscription_with_retries_and_dead_letters() -> None:
    """One subscription per consumer, CloudEvents out, type and subject filters, 30 tries
    over 24 hours, then the dead-letter container, written with the topic's identity."""
    subscriptions = _resource("subscriptions")
    assert str(subscriptions.loop).startswith("[for c in consumers:")
    assert subscriptions.body["parent"] == Expr("topic")
    assert subscriptions.body["name"] == Expr("c.name")
    text = subscriptions.body["properties"].text
    for needed in (
        "eventDeliverySchema: 'CloudEventSchemaV1_0'",
        "includedEventTypes: c.?includedEventTypes ?? null",
        "subjectBeginsWith: c.?subjectBeginsWith ?? ''",
        "subjectEndsWith: c.?subjectEndsWith ?? ''",
        "maxDeliveryAttempts: 30",
        "eventTimeToLiveInMinutes: 1440",
        "deadLetterWithResourceIdentity: {",
        "endpointType: 'StorageBlob'",
        "blobContainerName: deadLetterContainer.name",
    ):
        assert needed in text, needed
    assert text.count("type: 'SystemAssigned'") == 2


def test_a_queue_consumer_gets_a_queue_of_its_own_whose_messages_never_expire() -> None:
    """Delivered with the topic's identity (the account has no keys) to events-<name>,
    with a message time-to-live of -1; a webhook consumer gets its URL instead."""
    text = _resource("subscriptions").body["properties"].text
    assert "empty(c.?webhookUrl ?? '') ? {\n    deliveryWithResourceIdentity: {" in text
    assert "endpointType: 'StorageQueue'" in text
    assert "queueName: 'events-${c.name}'" in text
    assert "queueMessageTimeToLiveInSeconds: -1" in text
    assert "endpointType: 'WebHook'" in text
    assert "endpointUrl: c.webhookUrl" in text
    queues = _resource("consumerQueues")
    assert str(queues.loop).startswith("[for c in queueConsumers:")
    assert queues.body == {"parent": Expr("queueService"), "name": Expr("'events-${c.name}'")}
    # No consumer queue can take a contract queue's name (those all start user-onboard).
    assert not any(queue.startswith("events-") for queue in names.ALL_QUEUES)


def test_the_configured_consumers_are_well_formed() -> None:
    """Every entry of eventConsumers in main.parameters.json names a valid queue and
    subscription, uses known keys and event types, and names are unique."""
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    consumers = mapped["parameters"]["eventConsumers"]["value"]
    assert isinstance(consumers, list)
    assert {c["name"]: consumer_problems(c) for c in consumers} == {
        c["name"]: [] for c in consumers
    }
    assert len({c["name"] for c in consumers}) == len(consumers)


@pytest.mark.parametrize(
    ("consumer", "problem"),
    [
        ({"name": "HR_Workday"}, "lowercase"),
        ({"name": "hr", "principalId": "x"}, "3 to 56"),
        ({"name": "itsm", "webhookUrl": "http://itsm.example.com/events"}, "https"),
        ({"name": "itsm", "webhookUrl": "https://x", "principalId": "y"}, "webhook"),
        ({"name": "telephony", "includedEventTypes": ["onboarding.user.done"]}, "no event"),
        ({"name": "telephony", "queue": "mine"}, "unknown key queue"),
    ],
)
def test_a_malformed_consumer_is_refused(consumer: dict[str, Any], problem: str) -> None:
    """The configuration check names what is wrong with a bad entry."""
    assert any(problem in text for text in consumer_problems(consumer))


# --- roles --------------------------------------------------------------------------------


def _assignment(name: str) -> tuple[str, str, str]:
    d = _resource(name)
    role = re.search(r"roleDefinitions', (\w+)\)", d.body["properties"]["roleDefinitionId"].text)
    assert role
    return d.body["scope"].text, d.body["properties"]["principalId"].text, role.group(1)


def test_each_identity_gets_the_one_role_it_needs_where_it_needs_it() -> None:
    """The app publishes; the topic writes to the consumer queues and the dead-letter
    container; each consumer reads its own queue and nothing else."""
    assert _assignment("appTopicSender") == ("topic", "identityPrincipalId", "eventGridDataSender")
    assert _assignment("topicQueueSender") == (
        "consumerQueues[i]",
        "topic.identity.principalId",
        "storageQueueDataMessageSender",
    )
    assert _assignment("topicDeadLetterWriter") == (
        "deadLetterContainer",
        "topic.identity.principalId",
        "storageBlobDataContributor",
    )
    assert _assignment("consumerQueueProcessor") == (
        "consumerQueues[i]",
        "c.?principalId ?? ''",
        "storageQueueDataMessageProcessor",
    )
    assert _resource("consumerQueueProcessor").condition == "!empty(c.?principalId ?? '')"


def _main_principals(**params: Any) -> dict[str, Any]:
    """main.bicep's principal lists, evaluated for these params (the rest at defaults)."""
    main = bicep_tree(INFRA / "main.bicep")
    values: dict[str, Any] = {name: p.default for name, p in params_of(main).items()}
    values.update(params)
    nodes = variable_nodes_of(main)
    for name in (
        "hrPrincipals",
        "queueConsumersWithReaders",
        "consumerPrincipalIds",
        "hrEventsQueueReaders",
    ):
        values[name] = evaluate(nodes[name], values)
    return values


def test_an_hr_system_with_its_own_queue_no_longer_reads_the_shared_events_queue() -> None:
    """HR principals keep posting; the one consuming its own Event Grid queue loses read and
    delete on user-onboard-events, a webhook consumer and a v1 integrator keep it."""
    values = _main_principals(
        hrPrincipalIds="hr-1, hr-2, hr-3",
        eventGridTopicEnabled=True,
        eventConsumers=[
            {"name": "hr-two", "principalId": "hr-2"},
            {"name": "hr-three-hook", "webhookUrl": "https://hr3.example.com/events"},
        ],
    )
    assert [p["principalId"] for p in values["hrPrincipals"]] == ["hr-1", "hr-2", "hr-3"]
    assert [p["principalId"] for p in values["hrEventsQueueReaders"]] == ["hr-1", "hr-3"]


def test_without_the_topic_every_hr_system_reads_the_shared_events_queue() -> None:
    """Consumers listed but no topic created: nothing changes for v1 integrators."""
    values = _main_principals(
        hrPrincipalIds="hr-1,hr-2",
        eventConsumers=[{"name": "hr-two", "principalId": "hr-2"}],
    )
    assert values["hrEventsQueueReaders"] == values["hrPrincipals"]
    assert len(values["hrPrincipals"]) == 2
