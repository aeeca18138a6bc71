"""The alerts and the workbook (infra/modules/alerts.bicep, workbook.json) read only what
the app logs, watch Application Insights, and notify on-call when an e-mail is given.

The app's structured records are `traces` rows with `customDimensions.onboardingEvent`
naming the event and string fields per event (EVENTS below, as shared/telemetry.py emits
them and docs/operations.md describes them). A query naming another key, event or
outcome would never match anything: an alert that cannot fire. No Azure here, so KQL is
checked as text: its table, the keys, events and values it names.
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
    modules_of,
    params_of,
    resources_of,
    variables_of,
)

# Each event and the customDimensions keys its records carry (besides onboardingEvent).
EVENTS = {
    "request.outcome": {"requestId", "queueMessageId", "outcome", "reasonCode", "trigger"},
    "sweep.summary": {
        "sweepSeconds",
        "sweepBudgetSeconds",
        "stoppedByBudget",
        "pendingCount",
        "oldestDeadline",
        # contract v1.2: what the ledger's retention deleted (LEDGER_RETENTION)
        "expiredRequests",
        "expiredRows",
        "legacyRowsIndexed",
        "outboxPublished",  # with an Event Grid topic
        "outboxKept",
    },
    "graph.access_denied": {"requestId", "call", "permission", "status"},
    "graph.trouble": {"call", "status", "kind"},
    "poison.held": {"queueMessageId", "requestId", "holdUntil"},
    "poison.reported": {"queueMessageId", "requestId"},
    "message.set_aside": {"source", "queueMessageId", "requestId"},
    # contract v1.2: once per sweep, and on a refused or unanswered publish to Event Grid
    "intake.backlog": {"oldestMessageAgeSeconds", "approximateMessageCount"},
    "events.topic_unavailable": {"status", "requestId", "eventId", "accessDenied", "errorCode"},
    "events.topic_rejected": {"status", "requestId", "eventId", "errorCode"},
}
OUTCOMES = {
    "licensed",
    "failed",
    "rejected",
    "waiting",
    "blocked",
    "scheduled",
    "duplicate",
    "redelivered",
    "replayed",
}
TERMINAL_OUTCOMES = {"licensed", "failed", "rejected"}
ALERTS = {
    "poison-held",
    "poison-reported",
    "failure-rate",
    "graph-access-denied",
    "sweep-heartbeat",
    "settings-error",
    "sweep-near-budget",
    "message-set-aside",
    "intake-backlog",
    "events-topic-unavailable",
}
# Metric alerts on the Event Grid topic, and the metric each watches (Microsoft's list of
# Microsoft.EventGrid/topics metrics: DeliveryAttemptFailCount, DeadLetteredCount,
# DroppedEventCount, among others).
TOPIC_ALERTS = {
    "events-delivery-failed": "DeliveryAttemptFailCount",
    "events-dead-lettered": "DeadLetteredCount",
    "events-dropped": "DroppedEventCount",
}
WORKBOOK_PANELS = {
    "intake",
    "outcomes-by-reason",
    "pending",
    "oldest-deadline",
    "sweep-duration",
    "graph-trouble",
}
RULE_TYPE = "Microsoft.Insights/scheduledQueryRules"

TREE = bicep_tree(INFRA / "modules" / "alerts.bicep")
VARIABLES = variables_of(TREE)
PARAMS = params_of(TREE)


def _duration_minutes(text: str) -> int:
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?", text)
    assert match, f"not a PTnHnM duration: {text}"
    assert any(match.groups()), f"an empty duration: {text}"
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def _query_text(query: Any) -> tuple[str, set[str]]:
    """An alert's query as KQL, and the params interpolated into it."""
    if isinstance(query, str):
        return query, set()
    assert isinstance(query, Expr), query
    if re.fullmatch(r"\w+", query.text):
        text = VARIABLES[query.text]
        assert isinstance(text, str), query.text
        return text, set()
    quoted = re.fullmatch(r"'(.*)'", query.text, re.S)
    assert quoted, f"an alert query is neither a variable nor a string: {query.text}"
    params = set()

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in PARAMS:
            params.add(name)
            return "42"
        value = VARIABLES[name]
        assert isinstance(value, str), name
        return value

    text = re.sub(r"\$\{(\w+)\}", substitute, quoted.group(1).replace("\\n", "\n"))
    return text, params


def _alerts() -> dict[str, dict[str, Any]]:
    alerts = VARIABLES["alerts"]
    assert isinstance(alerts, list)
    return {alert["name"]: alert for alert in alerts}


def _rules() -> Declaration:
    (rules,) = [d for d in resources_of(TREE) if d.target.split("@")[0] == RULE_TYPE]
    return rules


def _workbook() -> dict[str, Any]:
    workbook: dict[str, Any] = json.loads(
        (INFRA / "modules" / "workbook.json").read_text(encoding="utf-8")
    )
    return workbook


def _workbook_queries() -> dict[str, str]:
    return {
        item["name"]: item["content"]["query"] for item in _workbook()["items"] if item["type"] == 3
    }


def _all_queries() -> dict[str, str]:
    queries = {f"alert {name}": _query_text(a["query"])[0] for name, a in _alerts().items()}
    queries.update({f"workbook {name}": q for name, q in _workbook_queries().items()})
    return queries


QUERIES = _all_queries()


# --- the queries read what the app logs ---------------------------------------------------


def _events_filtered(query: str) -> set[str]:
    single = re.findall(r'onboardingEvent\)? == "([\w.]+)"', query)
    listed = re.findall(r"onboardingEvent\)? in \(([^)]*)\)", query)
    return set(single) | {e for group in listed for e in re.findall(r'"([\w.]+)"', group)}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_queries_name_only_events_the_app_logs(name: str) -> None:
    """Every onboardingEvent a query filters on is one the app emits."""
    assert _events_filtered(QUERIES[name]) <= set(EVENTS)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_queries_name_only_keys_of_the_events_they_read(name: str) -> None:
    """customDimensions.<key> is onboardingEvent or a key of the events filtered on."""
    query = QUERIES[name]
    keys = set(re.findall(r"customDimensions\.(\w+)", query))
    keys |= set(re.findall(r"customDimensions\[['\"](\w+)['\"]\]", query))
    events = _events_filtered(query)
    if keys:
        assert events, f"{name} reads customDimensions without choosing an event"
    allowed = {"onboardingEvent"}.union(*(EVENTS[e] for e in events))
    assert keys <= allowed


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_queries_compare_outcomes_and_flags_with_values_the_app_writes(name: str) -> None:
    """outcome is one of the contract's outcomes; stoppedByBudget is "true" or "false"."""
    query = QUERIES[name]
    outcomes = set(re.findall(r'outcome == "(\w+)"', query))
    for group in re.findall(r"outcome in \(([^)]*)\)", query):
        outcomes |= set(re.findall(r'"(\w+)"', group))
    assert outcomes <= OUTCOMES
    assert set(re.findall(r'stoppedByBudget == "(\w+)"', query)) <= {"true", "false"}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_queries_start_from_one_application_insights_table(name: str) -> None:
    """Log alerts refuse `search` and `union`; `take`/`limit` make results unstable."""
    lines = [line for line in QUERIES[name].splitlines() if not line.startswith("let ")]
    assert lines[0] in {"traces", "exceptions"}
    assert not re.search(r"\b(union|search|take|limit)\b", QUERIES[name])


# --- the alert rules -----------------------------------------------------------------------


def test_the_alerts_on_call_needs_are_all_there() -> None:
    """Poison, failure rate, access denied, heartbeat, settings, sweep budget, set-aside."""
    assert set(_alerts()) == ALERTS


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_each_alert_is_a_sensible_rule(name: str) -> None:
    """Severity 0-4, evaluated at most as often as its window, described for on-call."""
    alert = _alerts()[name]
    assert alert["severity"] in range(5)
    window = alert["window"]
    if isinstance(window, Expr):  # the heartbeat's window is a parameter
        window = params_of(bicep_tree(INFRA / "main.bicep"))["sweepHeartbeatWindow"].default
    assert 5 <= _duration_minutes(alert["frequency"]) <= _duration_minutes(window)
    description = alert["description"]
    assert len(description.text if isinstance(description, Expr) else description) > 40


def test_count_alerts_fire_on_rows_and_the_heartbeat_on_none() -> None:
    """Every alert counts rows: any row fires it, except the heartbeat, which fires on none."""
    for name, alert in _alerts().items():
        expected = ("LessThan", 1) if name == "sweep-heartbeat" else ("GreaterThan", 0)
        assert (alert["operator"], alert["threshold"]) == expected, name
    criteria = _rules().body["properties"]["criteria"]["allOf"]
    assert [c["timeAggregation"] for c in criteria] == ["Count"]


def test_the_failure_rate_alert_uses_its_threshold_and_minimum() -> None:
    """Failed among terminal outcomes, above the percentage, over enough outcomes, in 1 h."""
    alert = _alerts()["failure-rate"]
    query, params = _query_text(alert["query"])
    assert params == {"failureRatePercent", "failureRateMinimumCount"}
    assert alert["window"] == "PT1H"
    terminal = re.search(r"outcome in \(([^)]*)\)", query)
    assert terminal
    assert set(re.findall(r'"(\w+)"', terminal.group(1))) == TERMINAL_OUTCOMES


@pytest.mark.parametrize("event", ["poison.held", "poison.reported"])
def test_the_poison_alerts_look_at_15_minutes(event: str) -> None:
    """Any poison.held (on-call can still replay) or poison.reported in 15 minutes."""
    alert = _alerts()[event.replace(".", "-")]
    assert alert["window"] == "PT15M"
    assert _events_filtered(_query_text(alert["query"])[0]) == {event}


def test_the_settings_alert_reads_the_apps_start_up_error() -> None:
    """SettingsError reads 'app setting <NAME>: <problem>'; the alert looks for that."""
    query, _ = _query_text(_alerts()["settings-error"]["query"])
    assert query.startswith("exceptions")
    assert 'contains "app setting"' in query
    source = (INFRA.parent / "shared" / "domain" / "errors.py").read_text(encoding="utf-8")
    assert "app setting " in source


def test_the_heartbeat_window_is_three_sweep_intervals_by_default() -> None:
    """SWEEP_SCHEDULE's default interval × 3 is the heartbeat window's default."""
    params = params_of(bicep_tree(INFRA / "main.bicep"))
    schedule = params["sweepSchedule"].default
    every = re.fullmatch(r"0 \*/(\d+) \* \* \* \*", schedule)
    assert every, f"not an every-N-minutes schedule: {schedule}"
    assert _duration_minutes(params["sweepHeartbeatWindow"].default) == 3 * int(every.group(1))
    assert _alerts()["sweep-heartbeat"]["window"] == Expr("sweepHeartbeatWindow")


def test_every_rule_watches_application_insights() -> None:
    """One rule resource (a loop over `alerts`), scoped to the app's App Insights."""
    rules = _rules()
    assert str(rules.loop).startswith("[for alert in alerts:")
    assert rules.body["properties"]["scopes"] == [Expr("appInsights.id")]
    assert rules.body["kind"] == "LogAlert"
    (app_insights,) = [d for d in resources_of(TREE) if d.name == "appInsights"]
    assert app_insights.existing
    assert app_insights.target.startswith("Microsoft.Insights/components@")
    assert app_insights.body["name"] == Expr("appInsightsName")
    (module,) = [m for m in modules_of(bicep_tree(INFRA / "main.bicep")) if m.name == "alerts"]
    assert module.body["params"]["appInsightsName"] == Expr("monitoring.outputs.appInsightsName")


def test_every_rule_notifies_the_action_group_when_an_email_is_given() -> None:
    """ALERT_EMAIL set: one e-mail action group, named by every rule; empty: none; an
    existing action group (ALERT_ACTION_GROUP_ID) is named by every rule too."""
    (group,) = [
        d for d in resources_of(TREE) if d.target.startswith("Microsoft.Insights/actionGroups@")
    ]
    assert group.condition == "!empty(alertEmail)"
    assert group.body["properties"]["emailReceivers"][0]["emailAddress"] == Expr("alertEmail")
    assert len(group.body["properties"]["groupShortName"]) <= 12
    assert VARIABLES["actionGroupIds"] == Expr(
        "concat(empty(alertEmail) ? [] : [actionGroup.id], "
        "empty(existingActionGroupId) ? [] : [existingActionGroupId])"
    )
    (module,) = [m for m in modules_of(bicep_tree(INFRA / "main.bicep")) if m.name == "alerts"]
    assert module.body["params"]["existingActionGroupId"] == Expr("alertActionGroupId")
    assert _rules().body["properties"]["actions"]["actionGroups"] == Expr("actionGroupIds")
    main_params = params_of(bicep_tree(INFRA / "main.bicep"))
    assert main_params["alertEmail"].default == ""


def test_the_intake_backlog_alert_uses_its_threshold_in_minutes() -> None:
    """Fires on an intake.backlog whose oldest message is older than the threshold, which
    is the ALERT_INTAKE_BACKLOG_MINUTES param (30 by default), in seconds."""
    alert = _alerts()["intake-backlog"]
    query, params = _query_text(alert["query"])
    assert params == {"intakeBacklogMinutes"}
    assert "oldestMessageAgeSeconds > thresholdMinutes * 60" in query
    assert query.startswith("let thresholdMinutes = 42;\ntraces")
    main = bicep_tree(INFRA / "main.bicep")
    assert params_of(main)["intakeBacklogAlertMinutes"].default == 30
    (module,) = [m for m in modules_of(main) if m.name == "alerts"]
    assert module.body["params"]["intakeBacklogMinutes"] == Expr("intakeBacklogAlertMinutes")


def _topic_rules() -> Declaration:
    (rules,) = [
        d for d in resources_of(TREE) if d.target.startswith("Microsoft.Insights/metricAlerts@")
    ]
    return rules


def test_topic_alerts_watch_event_grid_metrics_only_when_there_is_a_topic() -> None:
    """Delivery failures, dead-lettered and dropped events, as Event Grid names its metrics;
    no rule without a topic, and each rule notifies the action groups."""
    topic_alerts = VARIABLES["topicAlerts"]
    assert isinstance(topic_alerts, list)
    assert {a["name"]: a["metric"] for a in topic_alerts} == TOPIC_ALERTS
    rules = _topic_rules()
    assert str(rules.loop).startswith("[for alert in (empty(eventGridTopicId) ? [] : topicAlerts):")
    properties = rules.body["properties"]
    assert properties["scopes"] == [Expr("eventGridTopicId")]
    assert properties["enabled"] is True
    assert properties["autoMitigate"] is True
    (criterion,) = properties["criteria"]["allOf"]
    assert properties["criteria"]["odata.type"] == (
        "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
    )
    assert criterion["metricNamespace"] == "Microsoft.EventGrid/topics"
    assert criterion["metricName"] == Expr("alert.metric")
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
    assert criterion["timeAggregation"] == "Total"
    assert properties["actions"] == Expr("metricAlertActions")
    assert VARIABLES["metricAlertActions"] == Expr(
        "[for id in actionGroupIds: {\n  actionGroupId: id\n}]"
    )
    assert all(a["severity"] in range(5) for a in topic_alerts)


# --- the workbook ----------------------------------------------------------------------------


def test_the_workbook_has_the_panels_on_call_reads() -> None:
    """Intake, outcomes by reason code, pending and oldest deadline, sweep time, Graph trouble."""
    assert set(_workbook_queries()) >= WORKBOOK_PANELS


def test_every_workbook_query_follows_the_time_range_picker() -> None:
    """Each query step uses the TimeRange parameter the workbook defines."""
    items = _workbook()["items"]
    (parameters,) = [item for item in items if item["type"] == 9]
    assert [p["name"] for p in parameters["content"]["parameters"]] == ["TimeRange"]
    for item in items:
        if item["type"] == 3:
            assert item["content"]["timeContextFromParameter"] == "TimeRange", item["name"]
            assert item["content"]["resourceType"] == "microsoft.insights/components"


def test_the_workbook_is_attached_to_application_insights() -> None:
    """Bicep loads workbook.json and points it (and its queries) at App Insights."""
    (workbook,) = [
        d for d in resources_of(TREE) if d.target.startswith("Microsoft.Insights/workbooks@")
    ]
    assert workbook.body["kind"] == "shared"
    assert workbook.body["properties"]["sourceId"] == Expr("appInsights.id")
    data = workbook.body["properties"]["serializedData"].text
    assert "loadJsonContent('workbook.json')" in data
    assert "fallbackResourceIds: [ appInsights.id ]" in data
    assert _workbook()["version"] == "Notebook/1.0"
