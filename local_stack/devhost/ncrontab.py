"""Timer-trigger schedules as Azure Functions reads them: NCRONTAB or a TimeSpan.

NCRONTAB has six fields, seconds first::

    {second} {minute} {hour} {day} {month} {day-of-week}

Each field accepts ``*``, a number, a range ``a-b``, a step ``*/n``, ``a-b/n`` or
``a/n`` (from ``a`` to the field's maximum), and comma-separated lists of those.
Months and days of the week also accept names, matched case-insensitively by prefix as
NCrontab does (``Jan``, ``January``, ``Mon``); days of the week are 0-6 with Sunday = 0.
Like NCrontab (and unlike Vixie cron), a time matches only when *both* the day of the
month and the day of the week match. Azure requires all six fields; five-field
expressions are rejected.

A TimeSpan schedule (``hh:mm:ss`` or ``d.hh:mm:ss``, e.g. ``00:00:05``) means "every
interval": the next occurrence is the given time plus the interval.

Times are compared as given: pass UTC datetimes (Azure's default time zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.times import parse_timespan

__all__ = [
    "CronSchedule",
    "IntervalSchedule",
    "Schedule",
    "ScheduleError",
    "next_after",
    "parse_schedule",
]

_MONTH_NAMES = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAY_NAMES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

# How far ahead to look before declaring that a schedule never fires (e.g. 30 February).
_SEARCH_YEARS = 8


class ScheduleError(ValueError):
    """The schedule expression is not valid."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: list[str] | None = None


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day-of-week", 0, 6, _DAY_NAMES),
)


def _parse_value(text: str, field: _Field, expression: str) -> int:
    if not text:
        raise ScheduleError(f"empty value in the {field.name} field of '{expression}'")
    if text.isdigit():
        value = int(text)
    elif field.names is not None and text.isalpha():
        matches = [i for i, name in enumerate(field.names) if name.lower().startswith(text.lower())]
        if not matches:
            raise ScheduleError(
                f"'{text}' is not a known {field.name} name in '{expression}' "
                f"(use one of {', '.join(field.names)})"
            )
        value = matches[0] + field.low
    else:
        raise ScheduleError(
            f"'{text}' is not a valid {field.name} value in '{expression}' "
            f"(expected a number from {field.low} to {field.high})"
        )
    if not field.low <= value <= field.high:
        raise ScheduleError(
            f"{field.name} value {value} in '{expression}' is out of range {field.low}-{field.high}"
        )
    return value


def _parse_field(text: str, field: _Field, expression: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        base = part
        if "/" in part:
            base, _, step_text = part.partition("/")
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(
                    f"invalid step '/{step_text}' in the {field.name} field of '{expression}'"
                )
            step = int(step_text)
        if base == "*":
            first, last = field.low, field.high
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first = _parse_value(first_text, field, expression)
            last = _parse_value(last_text, field, expression)
            if first > last:
                raise ScheduleError(
                    f"range {base} in the {field.name} field of '{expression}' is reversed"
                )
        else:
            first = _parse_value(base, field, expression)
            last = field.high if "/" in part else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed six-field NCRONTAB expression."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (whole seconds, same tzinfo)."""
        start = moment.replace(microsecond=0) + timedelta(seconds=1)
        day = start.date()
        last_day = day.replace(year=day.year + _SEARCH_YEARS, month=1, day=1)
        first_day = True
        while day < last_day:
            if (
                day.month in self.months
                and day.day in self.days
                and (day.weekday() + 1) % 7 in self.days_of_week
            ):
                found = self._first_time_in_day(start if first_day else None)
                if found is not None:
                    hour, minute, second = found
                    return start.replace(
                        year=day.year,
                        month=day.month,
                        day=day.day,
                        hour=hour,
                        minute=minute,
                        second=second,
                    )
            day += timedelta(days=1)
            first_day = False
        raise ScheduleError(f"schedule '{self.expression}' never occurs")

    def _first_time_in_day(self, not_before: datetime | None) -> tuple[int, int, int] | None:
        floor = (0, 0, 0)
        if not_before is not None:
            floor = (not_before.hour, not_before.minute, not_before.second)
        for hour in sorted(self.hours):
            if hour < floor[0]:
                continue
            for minute in sorted(self.minutes):
                if (hour, minute) < floor[:2]:
                    continue
                for second in sorted(self.seconds):
                    if (hour, minute, second) >= floor:
                        return hour, minute, second
        return None


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule: fires every ``interval``."""

    expression: str
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        """``moment`` plus the interval."""
        return moment + self.interval


Schedule = CronSchedule | IntervalSchedule


def _parse_timespan(expression: str) -> IntervalSchedule:
    try:
        interval = parse_timespan(expression)
    except ValueError as error:
        raise ScheduleError(f"'{expression}' is not a valid TimeSpan: {error}") from None
    if interval <= timedelta(0):
        raise ScheduleError(f"TimeSpan schedule '{expression}' must be longer than zero")
    return IntervalSchedule(expression, interval)


def parse_schedule(expression: str) -> Schedule:
    """Parse a six-field NCRONTAB expression or a TimeSpan; raise :class:`ScheduleError`."""
    text = expression.strip()
    if not text:
        raise ScheduleError("the schedule is empty")
    parts = text.split()
    if len(parts) == 1 and ":" in text:
        return _parse_timespan(text)
    if len(parts) != len(_FIELDS):
        raise ScheduleError(
            f"'{expression}' has {len(parts)} field(s); Azure Functions NCRONTAB needs 6 "
            "({second} {minute} {hour} {day} {month} {day-of-week}), e.g. '0 */5 * * * *'"
        )
    sets = [_parse_field(part, field, text) for part, field in zip(parts, _FIELDS, strict=True)]
    return CronSchedule(text, *sets)


def next_after(schedule: str | Schedule, moment: datetime) -> datetime:
    """The first occurrence of ``schedule`` strictly after ``moment``."""
    parsed = parse_schedule(schedule) if isinstance(schedule, str) else schedule
    return parsed.next_after(moment)
