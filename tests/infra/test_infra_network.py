"""VNET_ENABLED (infra/modules/network.bicep): the function app integrated in a delegated
subnet, private endpoints with private DNS zones for blob, queue and table (and the Event
Grid topic), and public access closed as far as Event Grid's delivery allows.

main.bicep's network expressions are evaluated with `infra_support.evaluate` for each
combination of VNET_ENABLED and EVENT_GRID_TOPIC_ENABLED.
"""

from __future__ import annotations

import itertools
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
    parse,
    resources_of,
    variable_nodes_of,
    variables_of,
)

NETWORK = bicep_tree(INFRA / "modules" / "network.bicep")
MAIN = bicep_tree(INFRA / "main.bicep")


def _resource(name: str) -> Declaration:
    (found,) = [d for d in resources_of(NETWORK) if d.name == name]
    return found


def _module(target: str) -> Declaration:
    (found,) = [m for m in modules_of(MAIN) if m.target == target]
    return found


def _main_value(expression: Any, **params: Any) -> Any:
    """A main.bicep expression, evaluated for these params and main's variables."""
    values: dict[str, Any] = {name: p.default for name, p in params_of(MAIN).items()}
    values.update(params)
    nodes = variable_nodes_of(MAIN)
    values["storageTrustsAzureServices"] = evaluate(nodes["storageTrustsAzureServices"], values)
    text = expression.text if isinstance(expression, Expr) else expression
    root = parse(f"var x = {text}\n").root_node
    return evaluate(variable_nodes_of(root)["x"], values)


COMBINATIONS = list(itertools.product((False, True), (False, True)))


def test_the_network_exists_only_with_vnet_enabled() -> None:
    """VNET_ENABLED (default false) creates it; the app is integrated only then."""
    assert params_of(MAIN)["vnetEnabled"].default is False
    assert _module("modules/network.bicep").condition == "vnetEnabled"
    app = _module("modules/functionapp.bicep")
    assert app.body["params"]["virtualNetworkSubnetId"] == Expr(
        "vnetEnabled ? network.outputs.appSubnetId : ''"
    )
    (site,) = [
        d
        for d in resources_of(bicep_tree(INFRA / "modules" / "functionapp.bicep"))
        if d.target.startswith("Microsoft.Web/sites@")
    ]
    assert site.body["properties"]["virtualNetworkSubnetId"] == Expr(
        "empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId"
    )


def test_the_app_subnet_is_delegated_as_flex_consumption_requires() -> None:
    """The integration subnet carries the Microsoft.App/environments delegation; private
    endpoints sit in a subnet of their own."""
    subnets = {s["name"]: s["properties"] for s in _resource("vnet").body["properties"]["subnets"]}
    variables = variables_of(NETWORK)
    app = subnets[Expr("appSubnetName")]
    assert [d["properties"]["serviceName"] for d in app["delegations"]] == [
        "Microsoft.App/environments"
    ]
    endpoints = subnets[Expr("privateEndpointSubnetName")]
    assert endpoints["privateEndpointNetworkPolicies"] == "Disabled"
    assert variables["appSubnetName"] != variables["privateEndpointSubnetName"]


def test_private_endpoints_cover_blob_queue_table_and_the_topic() -> None:
    """One endpoint, DNS zone, zone link and zone group per service: the storage account's
    blob, queue and table, plus the topic when there is one."""
    source = (INFRA / "modules" / "network.bicep").read_text(encoding="utf-8")
    storage = variable_nodes_of(NETWORK)["storageEndpoints"]
    services = (storage.text or b"").decode()
    assert all(f"'{service}'" in services for service in ("blob", "queue", "table"))
    assert "zone: 'privatelink.${service}.${environment().suffixes.storage}'" in services
    topic = variables_of(NETWORK)["topicEndpoints"].text
    assert "groupId: 'topic'" in topic
    assert "zone: 'privatelink.eventgrid.azure.net'" in topic
    assert topic.startswith("empty(eventGridTopicName) ? [] :")
    for name in ("zones", "zoneLinks", "privateEndpoints", "zoneGroups"):
        assert "in endpoints:" in str(_resource(name).loop), name
    connection = _resource("privateEndpoints").body["properties"]["privateLinkServiceConnections"]
    assert connection[0]["properties"]["groupIds"] == [Expr("endpoint.groupId")]
    links = _resource("zoneLinks").body["properties"]
    assert links == {"registrationEnabled": False, "virtualNetwork": {"id": Expr("vnet.id")}}
    group = _resource("zoneGroups").body["properties"]["privateDnsZoneConfigs"][0]
    assert group["properties"]["privateDnsZoneId"] == Expr("zones[i].id")
    assert "output privateEndpointGroups array" in source
    network = _module("modules/network.bicep").body["params"]
    assert network["eventGridTopicName"] == Expr(
        "eventGridTopicEnabled ? eventGrid.outputs.topicName : ''"
    )


@pytest.mark.parametrize(("vnet", "topic"), COMBINATIONS, ids=lambda v: str(v).lower())
def test_storage_public_access_closes_with_the_vnet(vnet: bool, topic: bool) -> None:
    """Without a VNet: open (Entra ID only). With one: public network access disabled; with
    a topic too, the public endpoint stays but denies everyone except trusted services (Event
    Grid delivering with its system identity) and the private endpoints."""
    storage = _module("modules/storage.bicep").body["params"]
    values = {
        name: _main_value(storage[name], vnetEnabled=vnet, eventGridTopicEnabled=topic)
        for name in ("publicNetworkAccess", "networkDefaultAction", "networkBypass")
    }
    if not vnet:
        expected = ("Enabled", "Allow", "AzureServices")
    elif topic:
        expected = ("Enabled", "Deny", "AzureServices")
    else:
        expected = ("Disabled", "Deny", "None")
    assert tuple(values.values()) == expected


@pytest.mark.parametrize("vnet", [False, True], ids=lambda v: f"vnet_{str(v).lower()}")
def test_the_topic_is_private_with_the_vnet(vnet: bool) -> None:
    """The app publishes through the topic's private endpoint: its public access is off."""
    params = _module("modules/eventgrid.bicep").body["params"]
    access = _main_value(params["publicNetworkAccess"], vnetEnabled=vnet)
    assert access == ("Disabled" if vnet else "Enabled")


def test_storage_applies_the_network_rules_it_is_given() -> None:
    """The account's publicNetworkAccess and networkAcls come from those params."""
    (account,) = [
        d
        for d in resources_of(bicep_tree(INFRA / "modules" / "storage.bicep"))
        if d.target.startswith("Microsoft.Storage/storageAccounts@")
    ]
    properties = account.body["properties"]
    assert properties["publicNetworkAccess"] == Expr("publicNetworkAccess")
    assert properties["networkAcls"] == {
        "defaultAction": Expr("networkDefaultAction"),
        "bypass": Expr("networkBypass"),
    }
