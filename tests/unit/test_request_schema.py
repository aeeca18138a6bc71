"""The published JSON Schema of the request (schemas/user-onboard.schema.json) is the
validator's: generated from the same rules, and it agrees with `parse_request` on every
document whose rules a schema can express."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from shared.domain.errors import InvalidRequest
from shared.domain.request_schema import json_schema
from shared.domain.requests import parse_request

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "user-onboard.schema.json"
VALIDATOR = Draft202012Validator(json_schema())


def test_the_published_schema_is_the_generated_one() -> None:
    """Regenerate with: .venv/bin/python -m ops schema > schemas/user-onboard.schema.json."""
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()
    Draft202012Validator.check_schema(json_schema())


def test_the_contract_example_is_valid_for_both() -> None:
    """The contract's own example request, with the v1.1 fields."""
    example = {
        "requestId": "HR-2026-000123",
        "userPrincipalName": "jane.doe@contoso.com",
        "employeeId": "000123",
        "usageLocation": "FR",
        "licenses": [
            {"skuPartNumber": "MCOEV"},
            {"skuPartNumber": "ENTERPRISEPACK", "disabledPlans": ["YAMMER_ENTERPRISE"]},
        ],
        "syncDeadline": "2026-11-25T09:00:00Z",
        "startDate": "2026-12-01",
        "onPremisesDistinguishedName": "CN=Jane Doe,OU=Staff,DC=contoso,DC=com",
    }
    assert VALIDATOR.is_valid(example)
    parse_request(json.dumps(example))


def app_accepts(document: dict[str, Any]) -> bool:
    try:
        parse_request(json.dumps(document))
    except InvalidRequest:
        return False
    return True


def either(valid: list[Any], invalid: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(valid + invalid)


FIELDS = {
    "requestId": either(["HR-1", "a/b:c.d_e-f", "x" * 128], ["", "bad id!", "x" * 129, 7]),
    "userPrincipalName": either(
        ["jane@contoso.com", "o'brien@contoso.com", "ext_x#EXT#@contoso.onmicrosoft.com"],
        [
            "jane",
            "@contoso.com",
            ".jane@contoso.com",
            "ja..ne@contoso.com",
            "jane.@contoso.com",
            "ja ne@contoso.com",
            "jane@contoso",
            "x" * 114 + "@contoso.com",
            None,
        ],
    ),
    "employeeId": either(["000123", "a.b_c-d"], ["", "x" * 17, "a b", 123]),
    "onPremisesImmutableId": either(["abc==", "x" * 256], ["", "x" * 257, "é", "\u0007"]),
    "usageLocation": either(["FR", "US"], ["fr", "XX", "FRA"]),
    "licenses": either(
        [[{"skuPartNumber": "MCOEV"}], [{"skuPartNumber": "E3", "disabledPlans": ["YAMMER"]}]],
        [
            [],
            [{}],
            [{"skuPartNumber": "MCO EV"}],
            [{"skuPartNumber": "X", "extra": 1}],
            [{"skuPartNumber": "X", "disabledPlans": "Y"}],
            [{"skuPartNumber": "X"}] * 11,
        ],
    ),
    "syncDeadline": either(
        ["2026-11-25T09:00:00Z", "2026-11-25T09:00:00.5+02:00"],
        ["2026-11-25", "2026-11-25T09:00:00", "soon"],
    ),
    "startDate": either(
        ["2026-12-01", "2026-12-01T08:00:00+01:00"], ["01/12/2026", "2026-12-01T08:00"]
    ),
    "onPremisesDistinguishedName": either(
        ["CN=Jane,DC=contoso,DC=com", "CN=O'Brien\\, Pat,DC=x"], ["CN=Jane,OU=Staff", "x", "DC"]
    ),
    "unknownField": either([], [1, "x"]),
}


@settings(max_examples=400, derandomize=True, database=None)
@given(st.fixed_dictionaries({}, optional=FIELDS))
def test_the_schema_and_the_validator_agree(document: dict[str, Any]) -> None:
    """On documents built from valid and invalid values of every field."""
    document = {k: v for k, v in document.items() if v is not None}
    assert VALIDATOR.is_valid(document) == app_accepts(document), document
