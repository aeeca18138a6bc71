"""Forcing a sync of one user (contract v1.1): the request field, the setting, and what
the app does with Cloud Sync's answer, against in-memory fakes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from shared.domain.codes import ForcedSyncStatus
from shared.domain.errors import (
    GraphCall,
    GraphError,
    GraphErrorKind,
    InvalidRequest,
    SettingsError,
)
from shared.domain.requests import parse_request
from shared.domain.tenant import CloudSyncJob, ForcedSyncResult
from shared.settings import Settings
from tests.fakes import FakeUser
from tests.unit.test_service import World, request

JOB = CloudSyncJob(
    "9e3b0f4c-1d2e-4f5a-8b6c-7d8e9f0a1b2c", "AD2AADProvisioning.fd1c9b9e8077402c8bc03a7186c8f976"
)
DN = "CN=Jane Doe,OU=Staff,DC=contoso,DC=com"


def world(**policy: Any) -> World:
    return World(cloud_sync_job=JOB, **policy)


def jane_in_ad(w: World) -> FakeUser:
    """Created in AD, not in Entra yet: the lookup finds nobody."""
    return w.directory.add(FakeUser("u-jane", "jane@contoso.com", dn=DN, sync_enabled=None))


@pytest.mark.parametrize(
    "dn",
    [
        "CN=Jane Doe,OU=Staff,DC=contoso,DC=com",
        "CN=O'Brien\\, Pat,OU=Staff,DC=contoso,DC=com",
        "CN=a+UID=b,DC=contoso",
        "CN=#04024869,DC=contoso",
        "CN=Jöhn Dœ,DC=contoso,DC=fr",
    ],
)
def test_valid_distinguished_names_are_accepted(dn: str) -> None:
    """RFC 4514, with escapes, multi-valued RDNs, hex values and UTF-8."""
    assert (
        parse_request(json.dumps(request(onPremisesDistinguishedName=dn))).distinguished_name == dn
    )


@pytest.mark.parametrize(
    ("dn", "problem"),
    [
        ("CN=Jane,OU=Staff", "DC= component"),
        ("x", "3 to 1024"),
        ("CN=" + "a" * 1024 + ",DC=x", "3 to 1024"),
        ("CN=x;DC=y", "must be escaped"),
        ("CN=a\\zz,DC=c", "bad escape"),
        ("' or 1 eq 1", "expected attribute=value"),
        ("x' or 1=1,DC=y", "not an attribute type"),
        ("CN=x,DC=y\u0000", "control characters"),
        ("CN=x,DC=", "empty value"),
    ],
)
def test_hostile_or_malformed_distinguished_names_are_rejected_by_field(
    dn: str, problem: str
) -> None:
    """A field-level reason; the DN never reaches a URL or a filter anyway."""
    with pytest.raises(InvalidRequest) as caught:
        parse_request(json.dumps(request(onPremisesDistinguishedName=dn)))
    (error,) = caught.value.errors
    assert error.field == "onPremisesDistinguishedName"
    assert problem in error.problem


@pytest.mark.parametrize(
    "value",
    [
        "AD2AADProvisioning.fd1c9b9e8077402c8bc03a7186c8f976",
        "not-a-guid/AD2AADProvisioning.fd1c9b9e8077402c8bc03a7186c8f976",
        "9e3b0f4c-1d2e-4f5a-8b6c-7d8e9f0a1b2c/",
        "9e3b0f4c-1d2e-4f5a-8b6c-7d8e9f0a1b2c/../../users",
    ],
)
def test_a_malformed_cloud_sync_job_stops_the_app_naming_the_setting(value: str) -> None:
    """<servicePrincipalId GUID>/<job id such as AD2AADProvisioning.<32 hex>>."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "CLOUD_SYNC_JOB": value}
        )
    assert caught.value.setting == "CLOUD_SYNC_JOB"


def test_a_cloud_sync_job_setting_is_read_into_its_two_parts() -> None:
    """As an admin copies it from the service principal and its job."""
    config = Settings.from_env(
        {
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "CLOUD_SYNC_JOB": f"{JOB.service_principal_id}/{JOB.job_id}",
        }
    )
    assert config.cloud_sync_job == JOB


def test_a_user_not_in_entra_yet_is_synced_on_demand_and_licensed_at_the_next_check() -> None:
    """provisionOnDemand once, awaiting_sync says requested, a check 30 s later licenses."""
    w = world()
    jane_in_ad(w)
    assert w.handle(request(onPremisesDistinguishedName=DN)) == "waiting"
    assert w.directory.forced == [DN]
    awaiting = w.data("awaiting_sync")
    assert awaiting["forcedSync"] == {"status": "requested", "message": "provisioned"}
    assert awaiting["nextCheckAt"] == "2026-11-24T09:00:30Z"
    w.sweep_after(timedelta(seconds=30))
    assert w.events.terminal_ids() == {"HR-1:licensed"}
    assert w.directory.forced == [DN]  # never a second call


def test_without_a_dn_or_without_the_setting_nothing_changes() -> None:
    """No forcedSync in the event and no call: the app only waits, as in v1."""
    configured = world()
    jane_in_ad(configured)
    configured.handle(request())
    plain = World()
    jane_in_ad(plain)
    plain.handle(request(onPremisesDistinguishedName=DN))
    for w in (configured, plain):
        assert w.directory.forced == []
        assert "forcedSync" not in w.data("awaiting_sync")
        assert w.data("awaiting_sync")["nextCheckAt"] == "2026-11-24T09:05:00Z"


def test_a_failed_forced_sync_never_fails_the_request() -> None:
    """Cloud Sync answers Failure: reported, then the usual wait for the regular sync."""
    w = world()
    user = jane_in_ad(w)
    w.directory.forced_answer = ForcedSyncResult(
        ForcedSyncStatus.FAILED, "Cloud Sync answered Failure"
    )
    w.handle(request(onPremisesDistinguishedName=DN))
    awaiting = w.data("awaiting_sync")
    assert awaiting["forcedSync"]["status"] == "failed"
    assert awaiting["nextCheckAt"] == "2026-11-24T09:05:00Z"
    w.sweep_after(timedelta(minutes=5))
    assert w.directory.forced == [DN]  # a failed call is not repeated
    user.sync_enabled = True
    w.sweep_after(timedelta(minutes=10))
    assert w.events.terminal_ids() == {"HR-1:licensed"}


@pytest.mark.parametrize("status", [403, 404, 503])
def test_a_refused_call_is_a_failed_forced_sync_with_graphs_words(status: int) -> None:
    """4xx/5xx: forcedSync failed naming the call; the request waits on."""
    w = world()
    jane_in_ad(w)
    kind = GraphErrorKind.ACCESS_DENIED if status == 403 else GraphErrorKind.REJECTED
    w.directory.forced_answer = GraphError(
        "nope", kind=kind, call=GraphCall.PROVISION_ON_DEMAND, status=status, code="X"
    )
    assert w.handle(request(onPremisesDistinguishedName=DN)) == "waiting"
    forced = w.data("awaiting_sync")["forcedSync"]
    assert forced["status"] == "failed"
    assert f"provisionOnDemand ({status} X)" in forced["message"]


def test_over_five_calls_in_ten_seconds_the_sixth_is_throttled_and_tried_at_the_next_check() -> (
    None
):
    """The job's limit, across concurrent requests of the process: not sent, then sent."""
    w = world()
    for n in range(6):
        w.directory.add(
            FakeUser(f"u{n}", f"user{n}@contoso.com", dn=f"CN=U{n},DC=contoso", sync_enabled=None)
        )
        w.handle(
            request(
                f"HR-{n}",
                upn=f"user{n}@contoso.com",
                onPremisesDistinguishedName=f"CN=U{n},DC=contoso",
            )
        )
    statuses = [e.data["forcedSync"]["status"] for e in w.events.of_type("awaiting_sync")]
    assert statuses == ["requested"] * 5 + ["throttled"]
    assert len(w.directory.forced) == 5
    w.sweep_after(timedelta(seconds=30))
    assert len(w.directory.forced) == 6
    assert w.events.terminal_ids() == {f"HR-{n}:licensed" for n in range(5)}
    w.sweep_after(timedelta(seconds=30))
    assert w.events.terminal_ids() == {f"HR-{n}:licensed" for n in range(6)}
    assert len(w.events.of_type("awaiting_sync")) == 6  # the retry announces nothing new


def test_the_rule_id_is_read_once_per_process() -> None:
    """Two forced syncs, one schema read."""
    w = world()
    for n in range(2):
        w.directory.add(
            FakeUser(f"u{n}", f"user{n}@contoso.com", dn=f"CN=U{n},DC=contoso", sync_enabled=None)
        )
        w.handle(
            request(
                f"HR-{n}",
                upn=f"user{n}@contoso.com",
                onPremisesDistinguishedName=f"CN=U{n},DC=contoso",
            )
        )
    assert w.directory.schema_reads == 1
