"""The request's `teams` field (contract v1.2): validated field by field, accepted only
where TEAMS_PHONE is true, and the settings that turn the step on."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared.decisions import Backoff, Rules, admit
from shared.domain.errors import InvalidRequest, SettingsError
from shared.domain.requests import parse_request, validate_request
from shared.domain.teams import NumberType
from shared.settings import Settings
from tests.fakes import T0
from tests.unit.test_service import World

RULES = Rules(Backoff(timedelta(minutes=5), timedelta(minutes=30)), teams_phone=True)


def body(teams: Any) -> dict[str, Any]:
    return {
        "requestId": "HR-T1",
        "userPrincipalName": "dana@contoso.com",
        "licenses": [{"skuPartNumber": "MCOEV"}],
        "teams": teams,
    }


def problems(teams: Any) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as raised:
        validate_request(body(teams))
    return {e.field: e.problem for e in raised.value.errors}


def test_a_valid_teams_field_is_read_and_written_back_unchanged() -> None:
    """phoneNumber, numberType, locationId: parsed, and `to_json` gives them back."""
    teams = {
        "phoneNumber": "+33155550100",
        "numberType": "callingPlan",
        "locationId": "9f2b1c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
    }
    request = validate_request(body(teams))
    assert request.teams is not None
    assert request.teams.number_type == NumberType.CALLING_PLAN
    assert request.to_json()["teams"] == teams
    assert validate_request(request.to_json()) == request


@pytest.mark.parametrize(
    ("teams", "field"),
    [
        ("+33155550100", "teams"),
        ({"numberType": "callingPlan"}, "teams.phoneNumber"),
        ({"phoneNumber": "33155550100", "numberType": "callingPlan"}, "teams.phoneNumber"),
        ({"phoneNumber": "+0155550100", "numberType": "callingPlan"}, "teams.phoneNumber"),
        ({"phoneNumber": "+1234567890123456", "numberType": "callingPlan"}, "teams.phoneNumber"),
        ({"phoneNumber": "+3315555;ext=12", "numberType": "directRouting"}, "teams.phoneNumber"),
        ({"phoneNumber": "tel:+33155550100", "numberType": "callingPlan"}, "teams.phoneNumber"),
        ({"phoneNumber": 33155550100, "numberType": "callingPlan"}, "teams.phoneNumber"),
        ({"phoneNumber": "+33155550100"}, "teams.numberType"),
        ({"phoneNumber": "+33155550100", "numberType": "mobile"}, "teams.numberType"),
        ({"phoneNumber": "+33155550100", "numberType": "internalError"}, "teams.numberType"),
        (
            {"phoneNumber": "+33155550100", "numberType": "callingPlan", "locationId": ""},
            "teams.locationId",
        ),
        (
            {"phoneNumber": "+33155550100", "numberType": "callingPlan", "locationId": "a b"},
            "teams.locationId",
        ),
        (
            {"phoneNumber": "+33155550100", "numberType": "callingPlan", "extension": "12"},
            "teams.extension",
        ),
    ],
)
def test_each_problem_of_the_teams_field_is_reported_on_its_own_field(
    teams: Any, field: str
) -> None:
    """A machine-readable error per field: `teams.phoneNumber`, `teams.numberType`..."""
    assert field in problems(teams)


def test_a_hostile_phone_number_never_passes_validation() -> None:
    """The number reaches an OData filter: only '+' and digits get that far."""
    for hostile in ("+331' or telephoneNumber ne '", "+33155550100\n", "+3315555０100"):
        teams = {"phoneNumber": hostile, "numberType": "callingPlan"}
        assert "teams.phoneNumber" in problems(teams)


def test_teams_is_rejected_on_its_field_where_teams_phone_is_not_true() -> None:
    """Admission: TEAMS_PHONE false → `teams` is not accepted here."""
    request = parse_request(
        '{"requestId": "HR-T1", "userPrincipalName": "dana@contoso.com", "licenses": '
        '[{"skuPartNumber": "MCOEV"}], "teams": {"phoneNumber": "+33155550100", '
        '"numberType": "operatorConnect"}}'
    )
    assert admit(request, T0, RULES).request.teams is not None
    with pytest.raises(InvalidRequest) as raised:
        admit(request, T0, replace(RULES, teams_phone=False))
    (error,) = raised.value.errors
    assert error.field == "teams"
    assert "TEAMS_PHONE" in error.problem


def test_a_rejected_teams_request_is_answered_rejected_invalid_message_naming_teams() -> None:
    """Through the service: one `rejected` event with the field `teams`; no Graph call."""
    world = World()
    outcome = world.handle(body({"phoneNumber": "+33155550100", "numberType": "callingPlan"}))
    assert outcome == "rejected"
    rejected = world.data("rejected")
    assert rejected["reason"]["code"] == "invalid_message"
    assert [e["field"] for e in rejected["errors"]] == ["teams"]
    assert world.directory.lookup_calls == []


def test_the_teams_settings_default_to_off_and_a_day() -> None:
    """TEAMS_PHONE false, TEAMS_READY_TIMEOUT PT24H unless set."""
    config = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert (config.teams_phone, config.teams_ready_timeout) == (False, timedelta(hours=24))
    on = Settings.from_env(
        {
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "TEAMS_PHONE": "true",
            "TEAMS_READY_TIMEOUT": "PT2H",
        }
    )
    assert (on.teams_phone, on.teams_ready_timeout) == (True, timedelta(hours=2))


@pytest.mark.parametrize(
    ("name", "value"),
    [("TEAMS_PHONE", "maybe"), ("TEAMS_READY_TIMEOUT", "a day"), ("TEAMS_READY_TIMEOUT", "PT0S")],
)
def test_a_malformed_teams_setting_stops_the_app_naming_it(name: str, value: str) -> None:
    """A bad value fails at start-up with the setting's name."""
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", name: value})
    assert raised.value.setting == name
