"""checkov's security checks (built-in and ours, infra/policies) pass on infra/.

checkov runs as a subprocess from its own virtual environment ($CHECKOV, set by
`make test`), once on a copy of infra/ and once on a deliberately broken copy, to
prove our policies fail when they should. Both copies have the Graph module's
`extension` line blanked: checkov's Bicep parser does not know that statement
(see infra_support). checkov exits 0 even when a file does not parse, so the tests
read `summary.parsing_errors` from its JSON report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_support import (
    CHECKOV_CONFIG,
    REPO,
    config_skips,
    copy_infra_for_checkov,
    results,
    run_checkov,
)

STORAGE = "Microsoft.Storage/storageAccounts.storage"
SITE = "Microsoft.Web/sites.functionApp"
APP_INSIGHTS = "Microsoft.Insights/components.appInsights"
ALERT_RULES = "Microsoft.Insights/scheduledQueryRules.rules"
TOPIC = "Microsoft.EventGrid/topics.topic"
EASY_AUTH = "Microsoft.Web/sites/config.authSettings"

# Our policies and the resource each must have checked.
CUSTOM_POLICIES = {
    "CKV_ONBOARD_1": STORAGE,  # no shared key access
    "CKV_ONBOARD_2": STORAGE,  # TLS 1.2
    "CKV_ONBOARD_3": STORAGE,  # HTTPS only
    "CKV_ONBOARD_4": STORAGE,  # no public blob access
    "CKV_ONBOARD_5": SITE,  # HTTPS only
    "CKV_ONBOARD_6": SITE,  # TLS 1.2
    "CKV_ONBOARD_7": SITE,  # FTP/FTPS disabled
    "CKV_ONBOARD_8": SITE,  # managed identity
    "CKV_ONBOARD_9": APP_INSIGHTS,  # local auth disabled
    "CKV_ONBOARD_10": ALERT_RULES,  # log alerts notify action groups
    "CKV_ONBOARD_11": ALERT_RULES,  # log alerts enabled and auto-resolving
    "CKV_ONBOARD_12": TOPIC,  # Event Grid: no keys
    "CKV_ONBOARD_13": TOPIC,  # Event Grid: TLS 1.2
    "CKV_ONBOARD_14": EASY_AUTH,  # the front door requires a token, else 401
}

# (file, exact text, replacement, policy that must then fail)
BREAKAGES = [
    (
        "modules/storage.bicep",
        "allowSharedKeyAccess: false",
        "allowSharedKeyAccess: true",
        "CKV_ONBOARD_1",
    ),
    (
        "modules/storage.bicep",
        "minimumTlsVersion: 'TLS1_2'",
        "minimumTlsVersion: 'TLS1_0'",
        "CKV_ONBOARD_2",
    ),
    (
        "modules/storage.bicep",
        "supportsHttpsTrafficOnly: true",
        "supportsHttpsTrafficOnly: false",
        "CKV_ONBOARD_3",
    ),
    (
        "modules/storage.bicep",
        "allowBlobPublicAccess: false",
        "allowBlobPublicAccess: true",
        "CKV_ONBOARD_4",
    ),
    ("modules/functionapp.bicep", "httpsOnly: true", "httpsOnly: false", "CKV_ONBOARD_5"),
    ("modules/functionapp.bicep", "minTlsVersion: '1.2'", "minTlsVersion: '1.0'", "CKV_ONBOARD_6"),
    (
        "modules/functionapp.bicep",
        "ftpsState: 'Disabled'",
        "ftpsState: 'AllAllowed'",
        "CKV_ONBOARD_7",
    ),
    ("modules/functionapp.bicep", "type: 'UserAssigned'\n", "type: 'None'\n", "CKV_ONBOARD_8"),
    (
        "modules/monitoring.bicep",
        "DisableLocalAuth: true",
        "DisableLocalAuth: false",
        "CKV_ONBOARD_9",
    ),
    (
        "modules/alerts.bicep",
        "    actions: {\n      actionGroups: actionGroupIds\n    }\n",
        "",
        "CKV_ONBOARD_10",
    ),
    (
        "modules/alerts.bicep",
        "    severity: alert.severity\n    enabled: true\n    scopes: [\n      appInsights.id",
        "    severity: alert.severity\n    enabled: false\n    scopes: [\n      appInsights.id",
        "CKV_ONBOARD_11",
    ),
    (
        "modules/eventgrid.bicep",
        "disableLocalAuth: true",
        "disableLocalAuth: false",
        "CKV_ONBOARD_12",
    ),
    (
        "modules/eventgrid.bicep",
        "minimumTlsVersionAllowed: '1.2'",
        "minimumTlsVersionAllowed: '1.0'",
        "CKV_ONBOARD_13",
    ),
    (
        "modules/functionapp.bicep",
        "unauthenticatedClientAction: 'Return401'",
        "unauthenticatedClientAction: 'AllowAnonymous'",
        "CKV_ONBOARD_14",
    ),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """checkov's JSON report on a copy of infra/."""
    workdir = tmp_path_factory.mktemp("checkov")
    copy_infra_for_checkov(workdir)
    return run_checkov(workdir)


@pytest.fixture(scope="module")
def broken_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """checkov's JSON report on a copy of infra/ with every BREAKAGES edit applied."""
    workdir = tmp_path_factory.mktemp("checkov-broken")
    copy = copy_infra_for_checkov(workdir)
    for file, text, replacement, _ in BREAKAGES:
        path = copy / file
        source = path.read_text(encoding="utf-8")
        assert source.count(text) == 1, f"{file}: expected {text!r} exactly once"
        path.write_text(source.replace(text, replacement), encoding="utf-8")
    return run_checkov(workdir)


def test_checkov_parses_every_bicep_file(report: dict[str, Any]) -> None:
    """No parsing errors: checkov would otherwise pass a file it never read."""
    assert report["summary"]["parsing_errors"] == 0


def test_checkov_reports_no_failed_check(report: dict[str, Any]) -> None:
    """Every built-in check not skipped in the config, and every policy of ours, passes."""
    assert results(report, "failed") == []


def test_each_custom_policy_checked_its_resource(report: dict[str, Any]) -> None:
    """Our policies were loaded and ran (checkov drops a malformed policy with a log line)."""
    passed = {(check_id, resource) for check_id, resource, _ in results(report, "passed")}
    assert {item for item in CUSTOM_POLICIES.items() if item not in passed} == set()


def test_no_check_is_skipped_inline(report: dict[str, Any]) -> None:
    """Skips live in the config file with a reason, not in `#checkov:skip` comments."""
    assert results(report, "skipped") == []


def test_every_skipped_builtin_check_has_a_reason() -> None:
    """Each skip-check entry of infra/.checkov.yaml is a built-in check with a comment."""
    text = (REPO / CHECKOV_CONFIG).read_text(encoding="utf-8")
    skips = config_skips(text)
    assert sorted(skips) == sorted(yaml.safe_load(text)["skip-check"])
    assert {check for check, reason in skips.items() if len(reason) < 20} == set()
    assert {check for check in skips if check.startswith("CKV_ONBOARD_")} == set()


@pytest.mark.parametrize(
    ("file", "text", "replacement", "policy"),
    BREAKAGES,
    ids=[f"{policy}-{text.split(':')[0].strip()}" for _, text, _, policy in BREAKAGES],
)
def test_custom_policy_fails_when_its_setting_is_broken(
    broken_report: dict[str, Any], file: str, text: str, replacement: str, policy: str
) -> None:
    """Each of our policies bites: with its setting broken, it fails on that resource."""
    assert broken_report["summary"]["parsing_errors"] == 0
    failed = {
        (check_id, resource, path) for check_id, resource, path in results(broken_report, "failed")
    }
    assert (policy, CUSTOM_POLICIES[policy], f"/{Path(file).as_posix()}") in failed, replacement
