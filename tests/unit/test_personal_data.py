"""What reaches a log from outside is redacted (guarantee 9): the identifiers a message
carries, and anything shaped like a UPN, a distinguished name, an immutableId or a phone
number; Graph URLs become dependencies without the user they name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.domain.personal import REDACTED, redact, values_in
from shared.telemetry import (
    TelemetryEvent,
    failure,
    graph_url_for_telemetry,
    scrub_span,
    stack,
)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Resource 'jane.doe@contoso.com' does not exist", "Resource '"),
        ("GET /v1.0/users/jane.doe%40contoso.com?$select=id", "GET /v1.0/users/"),
        ("The object 'CN=Jane Doe,OU=Staff,DC=contoso,DC=com' could not be found", "The object '"),
        ("immutableId AAECAwQFBgcICQoLDA0ODw== not found", "immutableId "),
        ("number tel:+33 1 23 45 67 89 is taken", "number "),
        ("number +14255550100 is taken", "number "),
    ],
    ids=["upn", "percent-encoded", "dn", "immutable-id", "tel", "e164"],
)
def test_text_shaped_like_personal_data_is_redacted(text: str, kept: str) -> None:
    """The shape is enough: no need to know the value beforehand."""
    out = redact(text)
    assert out.startswith(kept)
    assert REDACTED in out
    for word in ("jane", "Jane", "AAECAwQF", "67 89", "5550100"):
        assert word not in out


def test_known_values_are_redacted_whatever_their_shape() -> None:
    """An employeeId is just digits: only the message's own values find it."""
    text = "no user with employeeId eq '000123' (request HR-7)"
    assert redact(text, ["000123"]) == f"no user with employeeId eq '{REDACTED}' (request HR-7)"
    assert redact("step 12 of 3", ["12"]) == "step 12 of 3"  # too short to be told apart


def test_the_values_of_a_request_a_pending_state_or_a_poisoned_body_are_found() -> None:
    """Top level or under `request`; teams.phoneNumber; nothing from a non-JSON body."""
    request = {
        "requestId": "HR-1",
        "userPrincipalName": "jane@contoso.com",
        "employeeId": "000123",
        "onPremisesImmutableId": "AAECAwQFBgcICQoLDA0ODw==",
        "onPremisesDistinguishedName": "CN=Jane,DC=contoso,DC=com",
        "teams": {"phoneNumber": "+33123456789"},
    }
    expected = {v for k, v in request.items() if isinstance(v, str) and k != "requestId"}
    assert set(values_in(json.dumps(request))) == expected | {"+33123456789"}
    assert set(values_in(json.dumps({"v": 3, "request": request}))) == expected | {"+33123456789"}
    assert values_in(b"\xff not json jane@contoso.com") == ()


def test_an_exception_is_logged_as_its_type_its_frames_and_its_redacted_message() -> None:
    """The frames say where; the message loses the identifiers."""
    try:
        raise ValueError("cannot note jane@contoso.com (000123)")
    except ValueError as exc:
        error = exc
    assert failure(error, ["000123"]) == f"ValueError: cannot note {REDACTED} ({REDACTED})"
    text = stack(error, ["000123"])
    assert "test_personal_data.py" in text
    assert "jane@contoso.com" not in text
    assert "000123" not in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://graph.microsoft.com/v1.0/users/jane.doe%40contoso.com?$select=id",
            "https://graph.microsoft.com/v1.0/users/{id}",
        ),
        (
            "https://graph.microsoft.com/v1.0/users?$filter=employeeId%20eq%20'000123'",
            "https://graph.microsoft.com/v1.0/users",
        ),
        (
            "https://graph.microsoft.com/v1.0/users('%24jane%40contoso.com')",
            "https://graph.microsoft.com/v1.0/users({id})",
        ),
        (
            "https://graph.microsoft.com/v1.0/users/5b1c6c5e-0d55-4b8e-9f4e-1a2b3c4d5e01/assignLicense",
            "https://graph.microsoft.com/v1.0/users/{id}/assignLicense",
        ),
        ("https://graph.microsoft.com/v1.0/$batch", "https://graph.microsoft.com/v1.0/$batch"),
    ],
    ids=["upn-key", "filter", "dollar-upn", "user-id", "batch"],
)
def test_graph_urls_lose_the_user_they_name_and_their_query(url: str, expected: str) -> None:
    """What a dependency in Application Insights shows of a Graph call."""
    assert graph_url_for_telemetry(url) == expected


def test_the_httpx_hook_rewrites_the_url_a_span_carries() -> None:
    """The instrumentation sets url.full when the span starts; the hook replaces it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    url = "https://graph.microsoft.com/v1.0/users/jane.doe%40contoso.com?$select=id"
    with provider.get_tracer("test").start_as_current_span("GET") as span:
        span.set_attribute("url.full", url)

        class Request:
            pass

        request = Request()
        request.url = url  # type: ignore[attr-defined]
        scrub_span(span, request)
    (finished,) = exporter.get_finished_spans()
    assert finished.attributes is not None
    assert finished.attributes["url.full"] == "https://graph.microsoft.com/v1.0/users/{id}"


def test_the_runbook_lists_every_structured_record_and_its_identifiers() -> None:
    """docs/operations.md, "Log records and the identifiers they carry": one row each."""
    runbook = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
    text = runbook.read_text(encoding="utf-8")
    section = text[text.index("## Log records and the identifiers they carry") :]
    rows = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| `")}
    listed = {name.strip("` ") for row in rows for name in row.split(",")}
    assert {str(event) for event in TelemetryEvent} <= listed
