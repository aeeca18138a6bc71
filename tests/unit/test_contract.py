"""The request format and the events of contract v1."""

import base64
import json
from datetime import UTC, datetime

import pytest

from shared.domain.codes import EventType
from shared.domain.errors import FieldError, InvalidRequest
from shared.domain.events import Reason, Subject, licensed_event, rejected_event
from shared.domain.requests import parse_license_list, parse_request

EXAMPLE = {
    "requestId": "HR-2026-000123",
    "userPrincipalName": "jane.doe@contoso.com",
    "employeeId": "000123",
    "usageLocation": "FR",
    "licenses": [
        {"skuPartNumber": "MCOEV"},
        {"skuPartNumber": "ENTERPRISEPACK", "disabledPlans": ["YAMMER_ENTERPRISE"]},
    ],
    "syncDeadline": "2026-11-25T09:00:00Z",
}


def problems(document: object) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(json.dumps(document))
    return {e.field: e.problem for e in caught.value.errors}


def test_the_contract_example_parses_into_a_request() -> None:
    """Every field of the documented example lands where it belongs."""
    request = parse_request(json.dumps(EXAMPLE))
    assert request.request_id == "HR-2026-000123"
    assert request.identifiers.user_principal_name == "jane.doe@contoso.com"
    assert request.identifiers.employee_id == "000123"
    assert request.usage_location == "FR"
    assert request.licenses is not None
    assert [lic.sku_part_number for lic in request.licenses] == ["MCOEV", "ENTERPRISEPACK"]
    assert request.licenses[1].disabled_plans == ("YAMMER_ENTERPRISE",)
    assert request.sync_deadline == datetime(2026, 11, 25, 9, tzinfo=UTC)


def test_a_request_round_trips_through_its_json_form() -> None:
    """What the pending state stores reads back as the same request."""
    request = parse_request(json.dumps(EXAMPLE))
    assert parse_request(json.dumps(request.to_json())) == request


def test_a_base64_encoded_body_is_accepted_as_the_portal_sends_it() -> None:
    """The Azure portal base64-encodes message text by default."""
    body = base64.b64encode(json.dumps(EXAMPLE).encode()).decode()
    assert parse_request(body).request_id == "HR-2026-000123"


def test_a_typo_in_a_field_name_is_rejected_as_an_unknown_field() -> None:
    """`userPrincipleName` is caught at once instead of being ignored."""
    document = {"requestId": "HR-1", "userPrincipleName": "a@contoso.com"}
    found = problems(document)
    assert found["userPrincipleName"] == "unknown field"
    assert "at least one of" in found["userPrincipalName"]


def test_every_problem_is_reported_not_just_the_first() -> None:
    """An integrator fixes all the fields in one round trip."""
    found = problems(
        {"requestId": "bad id!", "employeeId": "x" * 17, "usageLocation": "fr", "licenses": []}
    )
    assert set(found) == {"requestId", "employeeId", "usageLocation", "licenses"}


def test_the_request_id_of_an_otherwise_invalid_message_is_kept_for_the_event() -> None:
    """The rejected event can then carry the HR system's own id."""
    with pytest.raises(InvalidRequest) as caught:
        parse_request(json.dumps({"requestId": "HR-9", "usageLocation": "XX"}))
    assert caught.value.request_id == "HR-9"


@pytest.mark.parametrize(
    "upn",
    [
        "o'brien@contoso.com",
        "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "$admin@contoso.com",
        "a" * 113 + "@contoso.com",
    ],
)
def test_legitimate_unusual_upns_are_accepted(upn: str) -> None:
    """Apostrophes, guest markers and a leading $ are real UPNs."""
    assert parse_request(
        json.dumps(
            {"requestId": "R", "userPrincipalName": upn, "licenses": [{"skuPartNumber": "X"}]}
        )
    )


@pytest.mark.parametrize(
    "upn",
    [
        "jane doe@contoso.com",
        "jane/../x@contoso.com",
        "jane?x=1@contoso.com",
        "jane%27@contoso.com",
        "jane\n@contoso.com",
        "jane\x00@contoso.com",
        "a" * 114 + "@contoso.com",
        "x" * 10_000,
        "no-at-sign",
        "jane@contoso.com/users",
        ".jane@contoso.com",
        "ja..ne@contoso.com",
        "jane@-contoso.com",
    ],
)
def test_hostile_or_malformed_upns_are_rejected(upn: str) -> None:
    """Anything that could bend a Graph URL never gets past validation."""
    assert "userPrincipalName" in problems({"requestId": "R", "userPrincipalName": upn})


def test_an_immutable_id_with_quotes_is_valid_because_it_is_escaped_later() -> None:
    """immutableId is any printable ASCII: the OData layer escapes it."""
    request = parse_request(
        json.dumps({"requestId": "R", "onPremisesImmutableId": "x' or 1 eq 1 or 'a"})
    )
    assert request.identifiers.immutable_id == "x' or 1 eq 1 or 'a"


@pytest.mark.parametrize("value", ["", "a\tb", "é", "x" * 257])
def test_an_immutable_id_outside_printable_ascii_is_rejected(value: str) -> None:
    """Control characters, non-ASCII and over-long values are refused."""
    assert "onPremisesImmutableId" in problems({"requestId": "R", "onPremisesImmutableId": value})


def test_a_body_over_32_kib_is_rejected_before_parsing() -> None:
    """Size is checked on the raw bytes."""
    with pytest.raises(InvalidRequest, match="limit"):
        parse_request(json.dumps({"requestId": "R", "pad": "x" * 40_000}))


def test_a_body_that_is_not_json_says_so() -> None:
    """Neither JSON nor base64 JSON."""
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        parse_request(b"{not json")


def test_a_json_value_that_is_not_an_object_is_rejected() -> None:
    """An array or a string is not a request."""
    with pytest.raises(InvalidRequest, match="JSON object"):
        parse_request("[1, 2]")


@pytest.mark.parametrize(
    ("licenses", "field"),
    [
        ([{"skuPartNumber": "A"}] * 2, "licenses[1].skuPartNumber"),
        ([{"skuPartNumber": f"S{i}"} for i in range(11)], "licenses"),
        ([{"sku": "A"}], "licenses[0].sku"),
        ([{"skuPartNumber": "A", "disabledPlans": "YAMMER"}], "licenses[0].disabledPlans"),
        (["MCOEV"], "licenses[0]"),
    ],
)
def test_malformed_license_lists_name_the_entry(licenses: object, field: str) -> None:
    """Duplicates, too many entries, unknown keys and wrong types are all caught."""
    assert field in problems(
        {"requestId": "R", "userPrincipalName": "a@b.com", "licenses": licenses}
    )


@pytest.mark.parametrize("deadline", ["2026-11-25T09:00:00", "2026-11-25", "tomorrow"])
def test_a_sync_deadline_without_offset_is_rejected(deadline: str) -> None:
    """RFC 3339 requires the offset; a local time would be ambiguous."""
    assert "syncDeadline" in problems(
        {"requestId": "R", "employeeId": "1", "syncDeadline": deadline}
    )


def test_default_licenses_setting_is_a_comma_separated_list() -> None:
    """`DEFAULT_LICENSES=MCOEV, ENTERPRISEPACK`."""
    assert [lic.sku_part_number for lic in parse_license_list("MCOEV, ENTERPRISEPACK")] == [
        "MCOEV",
        "ENTERPRISEPACK",
    ]
    with pytest.raises(ValueError, match="twice"):
        parse_license_list("MCOEV,mcoev")


def test_events_are_cloudevents_with_deterministic_ids() -> None:
    """id is `<requestId>:<last word of the type>`; subject is the requestId."""
    event = licensed_event(
        Subject("HR-1", "jane@contoso.com", "u-1"),
        datetime(2026, 11, 24, 10, 15, 2, tzinfo=UTC),
        licenses=[],
        usage_location="FR",
    ).to_json()
    assert event["specversion"] == "1.0"
    assert event["id"] == "HR-1:licensed"
    assert event["type"] == EventType.LICENSED
    assert event["source"] == "/user-onboarding"
    assert event["subject"] == "HR-1"
    assert event["time"] == "2026-11-24T10:15:02Z"
    assert event["datacontenttype"] == "application/json"
    assert event["data"]["userId"] == "u-1"


def test_a_message_without_request_id_is_named_by_its_queue_message_id() -> None:
    """`message:<queue message id>:rejected` and no subject."""
    event = rejected_event(
        datetime(2026, 11, 24, tzinfo=UTC),
        reason=Reason("invalid_message", "bad"),
        request_id=None,
        message_id="abc",
        errors=[FieldError("requestId", "is required")],
    ).to_json()
    assert event["id"] == "message:abc:rejected"
    assert "subject" not in event
    assert event["data"]["errors"] == [{"field": "requestId", "problem": "is required"}]
    assert event["data"]["reason"]["code"] == "invalid_message"
