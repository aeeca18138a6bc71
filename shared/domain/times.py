"""Time on the wire and in settings, parsed and formatted in one place: RFC 3339
timestamps (requests, events, the pending state), ISO 8601 durations (the app's
settings) and .NET TimeSpans (`hh:mm:ss`, in host.json and TimeSpan timer schedules).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
_DURATION = re.compile(
    r"P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
_TIMESPAN = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, to the second unless sub-second precision is present."""
    moment = moment.astimezone(UTC)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp with offset; ValueError otherwise."""
    if not _RFC3339.fullmatch(text):
        raise ValueError("not an RFC 3339 timestamp with offset")
    normalised = text.upper().replace("Z", "+00:00")
    if "." in normalised:  # Python takes at most 6 fractional digits
        head, _, rest = normalised.partition(".")
        digits = re.match(r"\d+", rest)
        assert digits is not None
        normalised = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end() :]}"
    return datetime.fromisoformat(normalised)


def parse_duration(text: str) -> timedelta:
    """ISO 8601 duration with days, hours, minutes, seconds (`PT24H`, `P1DT30M`, `PT2.5S`,
    `PT0S`); ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if not match or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT24H or PT30M")
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return timedelta(**parts)


def parse_timespan(text: str) -> timedelta:
    """A .NET TimeSpan (`hh:mm`, `hh:mm:ss`, `d.hh:mm:ss`, `hh:mm:ss.fffffff`, optionally
    negative); ValueError otherwise."""
    match = _TIMESPAN.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a TimeSpan like '00:00:30' (hh:mm:ss)")
    sign, days, hours, minutes, seconds, fraction = match.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        raise ValueError(f"{text!r} is out of range (hh < 24, mm and ss < 60)")
    span = timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds or 0),
        microseconds=int((fraction or "0").ljust(7, "0")) / 10,
    )
    return -span if sign else span
