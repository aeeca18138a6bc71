"""NCRONTAB and TimeSpan schedules as Azure Functions timer triggers read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from local_stack.devhost.ncrontab import IntervalSchedule, ScheduleError, next_after, parse_schedule


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def occurrences(schedule: str, start: str, count: int) -> list[str]:
    moment = at(start)
    found = []
    for _ in range(count):
        moment = next_after(schedule, moment)
        found.append(moment.strftime("%Y-%m-%d %H:%M:%S"))
    return found


def test_every_five_minutes_fires_on_the_minute_boundaries() -> None:
    """'0 */5 * * * *' fires at second 0 of minutes divisible by five."""
    assert occurrences("0 */5 * * * *", "2024-03-10T10:03:20", 3) == [
        "2024-03-10 10:05:00",
        "2024-03-10 10:10:00",
        "2024-03-10 10:15:00",
    ]


def test_every_two_seconds_uses_the_seconds_field() -> None:
    """'*/2 * * * * *' fires on even seconds."""
    assert occurrences("*/2 * * * * *", "2024-03-10T10:00:00.500", 3) == [
        "2024-03-10 10:00:02",
        "2024-03-10 10:00:04",
        "2024-03-10 10:00:06",
    ]


def test_next_occurrence_is_strictly_after_the_given_time() -> None:
    """A time that matches the schedule exactly is not its own next occurrence."""
    assert next_after("0 0 * * * *", at("2024-03-10T10:00:00")) == at("2024-03-10T11:00:00")


def test_month_and_year_roll_over() -> None:
    """Midnight on the first of the month rolls into the next month and the next year."""
    assert occurrences("0 0 0 1 * *", "2024-11-15T08:00:00", 3) == [
        "2024-12-01 00:00:00",
        "2025-01-01 00:00:00",
        "2025-02-01 00:00:00",
    ]


def test_day_31_skips_months_without_it() -> None:
    """A day that a month lacks is skipped, as NCrontab does."""
    assert occurrences("0 0 12 31 * *", "2024-01-31T13:00:00", 2) == [
        "2024-03-31 12:00:00",
        "2024-05-31 12:00:00",
    ]


def test_ranges_lists_and_ranged_steps() -> None:
    """Ranges, lists and 'a-b/n' steps combine within a field."""
    assert occurrences("0 0 8-10,14 * * *", "2024-03-10T09:30:00", 3) == [
        "2024-03-10 10:00:00",
        "2024-03-10 14:00:00",
        "2024-03-11 08:00:00",
    ]
    assert occurrences("0 10-30/10 * * * *", "2024-03-10T09:30:00", 3) == [
        "2024-03-10 10:10:00",
        "2024-03-10 10:20:00",
        "2024-03-10 10:30:00",
    ]


def test_a_value_with_a_step_runs_to_the_end_of_the_field() -> None:
    """'5/20' in the seconds field means 5, 25 and 45, as in NCrontab."""
    assert occurrences("5/20 * * * * *", "2024-03-10T10:00:00", 4) == [
        "2024-03-10 10:00:05",
        "2024-03-10 10:00:25",
        "2024-03-10 10:00:45",
        "2024-03-10 10:01:05",
    ]


def test_day_of_week_names_and_numbers_with_sunday_as_zero() -> None:
    """Weekday names match by prefix and 0 is Sunday."""
    # 2024-03-08 is a Friday.
    assert occurrences("0 30 9 * * Mon-Fri", "2024-03-08T10:00:00", 2) == [
        "2024-03-11 09:30:00",
        "2024-03-12 09:30:00",
    ]
    assert occurrences("0 0 0 * * 0", "2024-03-08T10:00:00", 1) == ["2024-03-10 00:00:00"]
    assert occurrences("0 0 0 * * sunday", "2024-03-08T10:00:00", 1) == ["2024-03-10 00:00:00"]


def test_month_names_are_accepted() -> None:
    """Month names such as Jan and Feb select months."""
    assert occurrences("0 0 0 1 Jan,jul *", "2024-03-08T10:00:00", 2) == [
        "2024-07-01 00:00:00",
        "2025-01-01 00:00:00",
    ]


def test_day_of_month_and_day_of_week_must_both_match() -> None:
    """Unlike Vixie cron, NCrontab requires both the day and the weekday to match."""
    # The next Friday the 13th after March 2024 is September 2024.
    assert occurrences("0 0 0 13 * Fri", "2024-03-01T00:00:00", 1) == ["2024-09-13 00:00:00"]


def test_leap_day_waits_for_a_leap_year() -> None:
    """29 February fires only in leap years."""
    assert occurrences("0 0 0 29 Feb *", "2024-03-01T00:00:00", 1) == ["2028-02-29 00:00:00"]


def test_timespan_schedule_is_an_interval() -> None:
    """A TimeSpan like 00:00:05 fires every five seconds after the given time."""
    schedule = parse_schedule("00:00:05")
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.interval == timedelta(seconds=5)
    assert next_after(schedule, at("2024-03-10T10:00:00.250")) == at("2024-03-10T10:00:05.250")
    assert parse_schedule("1.02:00:00").next_after(at("2024-03-10T10:00:00")) == at(
        "2024-03-11T12:00:00"
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("*/5 * * * *", "has 5 field"),
        ("0 0 * * * * *", "has 7 field"),
        ("", "empty"),
        ("60 * * * * *", "out of range"),
        ("0 0 24 * * *", "out of range"),
        ("0 0 0 0 * *", "out of range"),
        ("0 0 0 * 13 *", "out of range"),
        ("0 0 0 * * 7", "out of range"),
        ("0 0 0 * * Funday", "not a known day-of-week name"),
        ("0 0 0 * Smarch *", "not a known month name"),
        ("x * * * * *", "not a valid second value"),
        ("*/0 * * * * *", "invalid step"),
        ("0 30-10 * * * *", "reversed"),
        ("0 0 0 30 Feb *", "never occurs"),
        ("25:00:00", "not a valid TimeSpan"),
        ("00:00:00", "longer than zero"),
    ],
)
def test_invalid_schedules_are_rejected_with_a_clear_error(expression: str, message: str) -> None:
    """Malformed or impossible schedules raise ScheduleError saying what is wrong."""
    with pytest.raises(ScheduleError, match=message):
        next_after(expression, at("2024-03-10T10:00:00"))
