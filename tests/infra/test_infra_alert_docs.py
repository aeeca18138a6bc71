"""docs/deploy.md and docs/operations.md list exactly the alerts Bicep defines, each with
the severity Bicep gives it: on-call reads the docs, Azure Monitor pages from Bicep.

The alerts are read from infra/modules/alerts.bicep's syntax tree: the log alerts of the
`alerts` variable and the Event Grid metric alerts of `topicAlerts`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from infra_support import INFRA, REPO, bicep_tree, variables_of

DOCS = {
    "docs/deploy.md": "## Alerts and the workbook",
    "docs/operations.md": "## The alerts",
}


def bicep_alerts() -> dict[str, int]:
    """Every alert rule alerts.bicep can create, by name, with its severity."""
    variables = variables_of(bicep_tree(INFRA / "modules" / "alerts.bicep"))
    found: dict[str, int] = {}
    for group in ("alerts", "topicAlerts"):
        rules = variables[group]
        assert isinstance(rules, list), group
        for rule in rules:
            assert rule["name"] not in found, f"alert {rule['name']} is defined twice"
            found[rule["name"]] = rule["severity"]
    return found


def documented_alerts(document: Path, heading: str) -> dict[str, int]:
    """The first table under `heading`: a backticked alert name in the first column, and
    the number its `severity` column starts with."""
    text = document.read_text(encoding="utf-8")
    section = re.search(rf"^{re.escape(heading)}[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"{document.name} has no {heading!r} section"
    lines = section.group(1)[section.group(1).index("\n|") + 1 :].split("\n")
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, rows = rows[0], rows[2:]
    severity = header.index("severity")
    found: dict[str, int] = {}
    for cells in rows:
        name = re.fullmatch(r"`([\w-]+)`", cells[0])
        level = re.match(r"(\d)\b", cells[severity])
        assert name, f"{document.name}: no backticked alert name in {cells[:3]}"
        assert level, f"{document.name}: no severity in {cells[:3]}"
        assert name.group(1) not in found, f"{document.name} lists {name.group(1)} twice"
        found[name.group(1)] = int(level.group(1))
    return found


@pytest.mark.parametrize("document", sorted(DOCS))
def test_the_docs_list_exactly_the_alerts_bicep_defines_with_their_severities(
    document: str,
) -> None:
    """Same names, none missing, none extra, same severity."""
    assert documented_alerts(REPO / document, DOCS[document]) == bicep_alerts()


def test_a_table_with_a_wrong_severity_or_a_missing_alert_is_caught(tmp_path: Path) -> None:
    """The reader sees a changed severity and a dropped row (what deploy.md had before)."""
    source = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    broken = source.replace(
        "`poison-reported` | any `poison.reported`", "`poison-reported` | any poison", 1
    )
    broken = re.sub(r"(`poison-reported` \|[^\n]*?\| )3( \|)", r"\g<1>2\2", broken, count=1)
    broken = re.sub(r"\n\| `poison-held` \|[^\n]*", "", broken, count=1)
    copy = tmp_path / "deploy.md"
    copy.write_text(broken, encoding="utf-8")
    found = documented_alerts(copy, DOCS["docs/deploy.md"])
    expected = bicep_alerts()
    assert found != expected
    assert "poison-held" not in found
    assert found["poison-reported"] == 2 != expected["poison-reported"]
