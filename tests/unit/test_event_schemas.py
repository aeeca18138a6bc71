"""The JSON Schemas of the events (schemas/events/, contract v1.2): one per type, valid
draft 2020-12, with an honest `$id`; they take what the app's builders emit and the
contract's examples, and refuse what the contract rules out. (Every event the other tests
produce is checked too, by the `tests.support.event_schemas` plugin.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from shared.domain.codes import EventType, FailureCode, LastSeen, LicenseStatus, RejectionCode
from shared.domain.errors import FieldError
from shared.domain.events import (
    LicenseOutcome,
    Reason,
    Subject,
    awaiting_sync_event,
    blocked_event,
    failed_event,
    licensed_event,
    rejected_event,
    scheduled_event,
)
from tests.support.event_schemas import SCHEMA_DIR, validators, violations

NOW = datetime(2026, 11, 24, 10, 15, 2, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
WHO = Subject("HR-2026-000123", "jane.doe@contoso.com", "5b1c6c5e-0d55-4b8e-9f4e-1a2b3c4d5e01")
MCOEV = LicenseOutcome("MCOEV", "e43b5b99-8dfb-405f-9987-dc307f34bcbd", LicenseStatus.ASSIGNED)
# contract v1.2 adds a type the app does not emit yet.
V12_TYPES = {"onboarding.user.provisioning"}


def schema_files() -> dict[str, dict[str, Any]]:
    return {
        path.name.removesuffix(".schema.json"): json.loads(path.read_text())
        for path in sorted(SCHEMA_DIR.glob("*.schema.json"))
    }


def test_there_is_one_schema_per_event_type_of_the_contract() -> None:
    """Every EventType, plus v1.2's provisioning, and nothing else."""
    assert set(schema_files()) == {str(t) for t in EventType} | V12_TYPES


@pytest.mark.parametrize("name", sorted(schema_files()))
def test_each_schema_is_valid_draft_2020_12_with_a_urn_id(name: str) -> None:
    """No `$id` pointing at a URL that does not exist: a URN naming the type."""
    schema = schema_files()[name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:user-onboarding:contract:v1.2:event:{name}"
    assert schema["properties"]["type"] == {"const": name}


def json_of(event: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(event.serialize())
    return document


BUILT = {
    "scheduled": scheduled_event(WHO, NOW, not_before=LATER, deadline=LATER),
    "awaiting_sync": awaiting_sync_event(
        Subject("HR-1", None),
        NOW,
        last_seen=LastSeen.NOT_FOUND,
        next_check=LATER,
        deadline=LATER,
        forced_sync={"status": "throttled", "message": "5 calls per 10 s"},
    ),
    "blocked-no-seats": blocked_event(
        WHO, NOW, reason=Reason(FailureCode.NO_SEATS, "none"), next_check=LATER, deadline=LATER
    ),
    "blocked-403": blocked_event(
        WHO,
        NOW,
        reason=Reason(FailureCode.GRAPH_ACCESS_DENIED, "grant it"),
        next_check=LATER,
        deadline=LATER,
        details={"permission": "User.Read.All"},
    ),
    "licensed": licensed_event(WHO, NOW, licenses=[MCOEV], usage_location="FR"),
    "licensed-no-location": licensed_event(WHO, NOW, licenses=[MCOEV], usage_location=""),
    "failed-sync-timeout": failed_event(
        WHO,
        NOW,
        reason=Reason(FailureCode.SYNC_TIMEOUT, "never synced"),
        details={
            "lastSeen": "unreachable",
            "lastError": {"status": 0, "code": "", "message": "timeout", "call": "lookup"},
        },
    ),
    "failed-group": failed_event(
        WHO,
        NOW,
        reason=Reason(FailureCode.GRAPH_REJECTED, "Entra could not license"),
        details={
            "graphError": {
                "state": "Error",
                "error": None,
                "skuId": MCOEV.sku_id,
                "group": "0f7c6a1e-8f43-4f57-9f2a-3c1d2e4b5a60",
            }
        },
    ),
    "rejected-invalid": rejected_event(
        NOW,
        reason=Reason(RejectionCode.INVALID_MESSAGE, "bad"),
        request_id="HR-7",
        message_id="m-1",
        errors=[FieldError(f"f{n}", "unknown field") for n in range(60)],
    ),
    "rejected-anonymous": rejected_event(
        NOW,
        reason=Reason(RejectionCode.POISON, "gave up"),
        request_id=None,
        message_id="m-2",
        details={"originalMessage": "x" * 60_000},
    ),
}


@pytest.mark.parametrize("name", sorted(BUILT))
def test_what_the_apps_event_builders_emit_validates(name: str) -> None:
    """Including errorsOmitted, a truncated originalMessage, and an anonymous rejection."""
    assert violations(json_of(BUILT[name])) == []


CONTRACT_LICENSED = {
    "specversion": "1.0",
    "id": "HR-2026-000123:licensed",
    "source": "/user-onboarding",
    "type": "onboarding.user.licensed",
    "subject": "HR-2026-000123",
    "time": "2026-11-24T10:15:02Z",
    "datacontenttype": "application/json",
    "data": {
        "requestId": "HR-2026-000123",
        "userPrincipalName": "jane.doe@contoso.com",
        "userId": "5b1c6c5e-0d55-4b8e-9f4e-1a2b3c4d5e01",
        "usageLocation": "FR",
        "licenses": [
            {"skuPartNumber": "MCOEV", "skuId": MCOEV.sku_id, "status": "assigned"},
            {
                "skuPartNumber": "ENTERPRISEPACK",
                "skuId": "6fd2c87f-b296-42f0-b197-1e91e994b900",
                "status": "already_assigned",
            },
        ],
    },
}


def with_data(document: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {**document, "data": {**document["data"], **data}}


def test_the_v12_additions_validate() -> None:
    """licensed with teams, provisioning, blocked sfb_onprem_user/poisoned, and the Teams
    step's failures with the licenses that stay."""
    teams = {"phoneNumber": "+33123456789", "numberType": "directRouting", "status": "assigned"}
    licenses = CONTRACT_LICENSED["data"]["licenses"]
    envelope = {k: v for k, v in CONTRACT_LICENSED.items() if k != "data"}
    base = {"requestId": "HR-2026-000123"}
    documents = [
        with_data(CONTRACT_LICENSED, teams=teams),
        {
            **envelope,
            "id": "HR-2026-000123:provisioning",
            "type": "onboarding.user.provisioning",
            "data": {
                **base,
                "licenses": licenses,
                "nextCheckAt": "2026-11-24T10:20:02Z",
                "deadline": "2026-11-25T10:15:02Z",
            },
        },
        {
            **envelope,
            "id": "HR-2026-000123:blocked",
            "type": "onboarding.user.blocked",
            "data": {
                **base,
                "reason": {"code": "sfb_onprem_user", "message": "move the user to Teams"},
                "nextCheckAt": "2026-11-24T10:20:02Z",
                "deadline": "2026-11-25T10:15:02Z",
            },
        },
        {
            **envelope,
            "id": "HR-2026-000123:blocked",
            "type": "onboarding.user.blocked",
            "data": {**base, "reason": {"code": "poisoned", "message": "held for replay"}},
        },
        {
            **envelope,
            "id": "HR-2026-000123:failed",
            "type": "onboarding.user.failed",
            "data": {
                **base,
                "reason": {"code": "teams_not_ready", "message": "x"},
                "lastSeen": "no_phone_system",
                "licenses": licenses,
            },
        },
        {
            **envelope,
            "id": "HR-2026-000123:failed",
            "type": "onboarding.user.failed",
            "data": {
                **base,
                "reason": {"code": "phone_number_rejected", "message": "x"},
                "graphError": {
                    "status": 400,
                    "code": "BadRequest",
                    "message": "taken",
                    "call": "assignNumber",
                },
                "licenses": licenses,
            },
        },
    ]
    for document in [CONTRACT_LICENSED, *documents]:
        assert violations(document) == [], document["type"]


def failed(**data: Any) -> dict[str, Any]:
    return {
        **CONTRACT_LICENSED,
        "id": "HR-2026-000123:failed",
        "type": "onboarding.user.failed",
        "data": {"requestId": "HR-2026-000123", **data},
    }


@pytest.mark.parametrize(
    "document",
    [
        with_data(CONTRACT_LICENSED, licenses=[]),
        with_data(CONTRACT_LICENSED, usageLocation="fr"),
        with_data(CONTRACT_LICENSED, extra=1),
        with_data(
            CONTRACT_LICENSED,
            teams={"phoneNumber": "0123", "numberType": "directRouting", "status": "assigned"},
        ),
        {**CONTRACT_LICENSED, "time": "2026-11-24T10:15:02+01:00"},
        {**CONTRACT_LICENSED, "id": "HR-2026-000123:failed"},
        {**CONTRACT_LICENSED, "source": "/another-app"},
        {k: v for k, v in CONTRACT_LICENSED.items() if k != "subject"},
        failed(reason={"code": "teapot", "message": "x"}),
        failed(reason={"code": "sync_timeout", "message": "x"}),
        failed(reason={"code": "sync_timeout", "message": "x"}, lastSeen="synced"),
        failed(reason={"code": "unknown_sku", "message": "x"}, lastSeen="not_found"),
        failed(reason={"code": "graph_access_denied", "message": "x"}),
        failed(reason={"code": "unknown_sku", "message": "x"}, permission="User.Read.All"),
        failed(reason={"code": "phone_number_rejected", "message": "x"}),
        {
            **CONTRACT_LICENSED,
            "id": "HR-7:rejected",
            "type": "onboarding.request.rejected",
            "subject": None,
            "data": {
                "reason": {"code": "poison", "message": "x"},
                "errors": [],
                "queueMessageId": "m",
            },
        },
    ],
    ids=[
        "no-licenses",
        "lower-case-location",
        "unknown-field",
        "phone-not-e164",
        "time-not-utc",
        "id-of-another-type",
        "other-source",
        "no-subject",
        "unknown-reason",
        "sync-timeout-without-last-seen",
        "sync-timeout-seen-synced",
        "last-seen-on-another-code",
        "access-denied-without-last-error",
        "permission-on-another-code",
        "phone-rejected-without-graph-error",
        "rejected-null-subject",
    ],
)
def test_what_the_contract_rules_out_is_refused(document: dict[str, Any]) -> None:
    """Each document breaks one rule of the contract and the schema says so."""
    assert violations(document) != []


def test_an_anonymous_rejection_must_use_the_message_id() -> None:
    """No subject means no usable requestId: the id is message:<queue message id>:rejected."""
    document = json_of(BUILT["rejected-anonymous"])
    assert "subject" not in document
    assert violations({**document, "id": "HR-7:rejected"}) != []


def test_a_type_without_a_schema_is_reported() -> None:
    """An event of a type the contract does not know is a violation, not skipped."""
    assert violations({"type": "onboarding.user.renamed", "id": "x"}) == [
        "x: no schema for type 'onboarding.user.renamed'"
    ]
    assert set(validators()) >= {str(t) for t in EventType}
