"""The published JSON Schema of the request (schemas/user-onboard.schema.json) is the
validator's: generated from the same rules, and it agrees with `parse_request` on every
document whose rules a schema can express, under Python's `re` (the `jsonschema` package)
and under RE2 (google-re2), the engine of many iPaaS tools' validators."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError, validators

from shared.domain.errors import InvalidRequest
from shared.domain.request_schema import json_schema
from shared.domain.requests import parse_request

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "user-onboard.schema.json"
VALIDATOR = Draft202012Validator(json_schema())


@functools.cache
def _re2(pattern: str) -> Any:
    return re2.compile(pattern)


def _re2_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """The `pattern` keyword with RE2's syntax and semantics (`$` is the end of the text)."""
    if validator.is_type(instance, "string") and not _re2(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


RE2Validator = validators.extend(Draft202012Validator, {"pattern": _re2_pattern})
RE2_VALIDATOR = RE2Validator(json_schema())
BOTH = pytest.mark.parametrize("validator", [VALIDATOR, RE2_VALIDATOR], ids=["python-re", "re2"])


def test_the_published_schema_is_the_generated_one() -> None:
    """Regenerate with: .venv/bin/python -m ops schema > schemas/user-onboard.schema.json."""
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()
    Draft202012Validator.check_schema(json_schema())


def test_the_schema_claims_no_url_it_is_not_published_at() -> None:
    """No `$id`: the old one named a URL that does not exist."""
    assert "$id" not in json_schema()


def patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern":
                yield value
            yield from patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from patterns(value)


def test_every_pattern_compiles_in_re2_and_has_no_look_around_or_backreference() -> None:
    """RE2 (and so many iPaaS validators) refuses look-arounds and backreferences."""
    found = list(patterns(json_schema()))
    assert len(found) >= 9
    for pattern in found:
        _re2(pattern)  # raises re2.error on syntax RE2 does not have
        refused = re.findall(r"\(\?<?[=!]|\(\?P[=>]|\\[1-9]|\\k<", pattern)
        assert not refused, (pattern, refused)


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
        ["2026-11-25", "2026-11-25T09:00:00", "soon", "٢٠٢٦-11-25T09:00:00Z"],
    ),
    "startDate": either(
        ["2026-12-01", "2026-12-01T08:00:00+01:00"],
        ["01/12/2026", "2026-12-01T08:00", "٢٠٢٦-12-01"],  # Arabic-Indic digits
    ),
    "onPremisesDistinguishedName": either(
        ["CN=Jane,DC=contoso,DC=com", "CN=O'Brien\\, Pat,DC=x", "CN=x,\u00a0DC=y"],
        ["CN=Jane,OU=Staff", "x", "DC", "CN=x,\tDC=y"],
    ),
    "unknownField": either([], [1, "x"]),
}


@BOTH
@settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,  # a loaded CI machine must not turn a slow example into a failure
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.fixed_dictionaries({}, optional=FIELDS))
def test_the_schema_and_the_validator_agree(validator: Any, document: dict[str, Any]) -> None:
    """On documents built from valid and invalid values of every field."""
    document = {k: v for k, v in document.items() if v is not None}
    assert validator.is_valid(document) == app_accepts(document), document


LABEL = "a" * 63
DOMAIN_253 = f"{LABEL}.{LABEL}.{LABEL}.{'d' * 57}.com"
VALID_UPNS = [
    "jane@contoso.com",
    "o'brien@contoso.com",
    "ext_x#EXT#@contoso.onmicrosoft.com",
    "a@b.co",
    "jane.mary.doe@mail.eu.contoso.com",
    "$svc&+=^~!@contoso.com",
    "x" * 113 + "@contoso.com",
    f"jane@{DOMAIN_253}",
    f"jane@{LABEL}.com",
    "jane@x-1.contoso.com",
]
INVALID_UPNS = [
    "",
    "jane",
    "@contoso.com",
    "jane@",
    ".jane@contoso.com",
    "jane.@contoso.com",
    "ja..ne@contoso.com",
    ".@contoso.com",
    "x" * 114 + "@contoso.com",
    f"jane@{DOMAIN_253}x",  # 254 characters after the @
    f"jane@{LABEL}a.com",  # a 64-character label
    "jane@contoso",
    "jane@contoso.c",
    "jane@-contoso.com",
    "jane@contoso-.com",
    "jane@contoso..com",
    "jane@contoso.c0m",
    "ja ne@contoso.com",
    "jane@@contoso.com",
    "a@b@contoso.com",
    "jané@contoso.com",
    "jane@contöso.com",
    "jane\n@contoso.com",
    "jane@contoso.com\n",  # Python's `$` matches before a final newline; RE2's does not
]


@pytest.mark.parametrize("upn", VALID_UPNS + INVALID_UPNS)
def test_the_re2_schema_and_the_validator_agree_on_upns(upn: str) -> None:
    """Each listed UPN is valid or invalid for the app and for an RE2 validator alike."""
    document = {"requestId": "HR-1", "userPrincipalName": upn}
    expected = upn in VALID_UPNS
    assert app_accepts(document) is expected
    assert RE2_VALIDATOR.is_valid(document) is expected
    if not upn.endswith("\n"):
        assert VALIDATOR.is_valid(document) is expected


@BOTH
def test_every_ascii_character_in_a_upn_is_judged_alike(validator: Any) -> None:
    """The schema's characters before and after the @ are exactly the validator's."""
    for code in range(128):
        for upn in (f"a{chr(code)}b@contoso.com", f"jane@con{chr(code)}toso.com"):
            if upn.endswith("\n"):
                continue
            document = {"requestId": "HR-1", "userPrincipalName": upn}
            assert validator.is_valid(document) == app_accepts(document), upn


@BOTH
def test_every_white_space_before_a_dc_component_is_judged_alike(validator: Any) -> None:
    """The app strips Unicode white space around attribute types; the schema allows it."""
    spaces = [chr(code) for code in range(0x110000) if chr(code).isspace()]
    assert len(spaces) > 20
    for space in spaces:
        document = {"requestId": "HR-1", "employeeId": "1"}
        document["onPremisesDistinguishedName"] = f"CN=x,{space}DC{space}=y"
        assert validator.is_valid(document) == app_accepts(document), hex(ord(space))
