"""LEDGER_RETENTION (contract v1.2) and SWEEP_SCHEDULE as Flex Consumption takes it: a bad
value stops the app at start-up, naming the setting."""

from datetime import timedelta

import pytest

from shared.domain.errors import SettingsError
from shared.settings import Settings

BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_the_ledger_keeps_a_request_ninety_days_after_its_terminal_event_by_default() -> None:
    """No LEDGER_RETENTION: P90D, as the contract says."""
    assert Settings.from_env(BASE).ledger_retention == timedelta(days=90)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("P30D", timedelta(days=30)), ("PT12H", timedelta(hours=12)), ("P1DT1H", timedelta(hours=25))],
)
def test_a_retention_is_an_iso_8601_duration(value: str, expected: timedelta) -> None:
    """Days, hours, minutes: any positive duration."""
    assert Settings.from_env({**BASE, "LEDGER_RETENTION": value}).ledger_retention == expected


@pytest.mark.parametrize("value", ["PT0S", "P0D", "90 days", "P3M", "-P1D", "90"])
def test_a_zero_or_malformed_retention_stops_the_app_naming_it(value: str) -> None:
    """Zero would delete a request as soon as it is answered, before a redelivery could
    find its answer: refused, like anything that is not a duration."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**BASE, "LEDGER_RETENTION": value})
    assert caught.value.setting == "LEDGER_RETENTION"
    assert str(caught.value).startswith("app setting LEDGER_RETENTION: ")


@pytest.mark.parametrize("value", ["00:05:00", "00:00:02", "1.00:00:00", "0:5"])
def test_a_timespan_sweep_schedule_is_refused_because_flex_consumption_reads_only_ncrontab(
    value: str,
) -> None:
    """The Functions host would run it, but the Flex Consumption plan's scale controller
    cannot read it (AZFD0015): the error names the setting and says what to write."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**BASE, "SWEEP_SCHEDULE": value})
    message = str(caught.value)
    assert caught.value.setting == "SWEEP_SCHEDULE"
    assert "TimeSpan" in message
    assert "Flex Consumption" in message
    assert "NCRONTAB" in message
    assert "0 */5 * * * *" in message


@pytest.mark.parametrize("value", ["0 */5 * * * *", "*/2 * * * * *", "0 30 9 * * 1-5"])
def test_a_six_field_ncrontab_sweep_schedule_is_taken_as_is(value: str) -> None:
    """Seconds first, as the host reads %SWEEP_SCHEDULE%."""
    assert Settings.from_env({**BASE, "SWEEP_SCHEDULE": value}).sweep_schedule == value


@pytest.mark.parametrize("value", ["*/5 * * * *", "every 5 minutes", "0 */5 * * * * *"])
def test_a_schedule_that_is_neither_is_refused_naming_the_setting(value: str) -> None:
    """Five fields (Unix cron), words, seven fields: not NCRONTAB as the host reads it."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**BASE, "SWEEP_SCHEDULE": value})
    assert caught.value.setting == "SWEEP_SCHEDULE"
    assert "six-field NCRONTAB" in str(caught.value)
