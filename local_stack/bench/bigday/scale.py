"""One time scale S for the big-day benchmark: every time constant of Graph and of the app
divided by S, so a production day of hours runs in minutes while every budget keeps its
production number (Graph's rates become S times Graph's).

Production values are those `infra/main.bicep` deploys and the repo's `host.json`. Where
a constant is an app setting or a host.json key, it is scaled through the setting (or an
`AzureFunctionsJobHost__...` override); where it is fixed in code, the benchmark's app
folder (`local_stack.bench.bigday.app`) scales it when it wires the service, reading
`BIGDAY_TIME_SCALE`; the Graph emulator scales its own (`time_scale`). `SCALED` and
`NOT_SCALED` list them all, for the report and docs/benchmarks.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

# infra/main.bicep's defaults for the settings that hold time.
PRODUCTION_SETTINGS: Final = {
    "SWEEP_SCHEDULE": timedelta(minutes=5),  # '0 */5 * * * *'
    "SYNC_TIMEOUT": timedelta(hours=24),
    "RECHECK_INITIAL_DELAY": timedelta(minutes=5),
    "RECHECK_MAX_DELAY": timedelta(minutes=30),
    "POISON_HOLD": timedelta(hours=1),
    "LICENSE_LEAD_TIME": timedelta(days=1),
}
# The repo's host.json.
PRODUCTION_HOST: Final = {
    "functionTimeout": timedelta(minutes=10),
    "extensions__queues__visibilityTimeout": timedelta(seconds=30),
    "extensions__queues__maxPollingInterval": timedelta(seconds=10),
}
# The development host's own message lease (the real host renews its lease instead).
DEVHOST_LEASE: Final = timedelta(minutes=10)
# infra/main.bicep's other settings, unscaled (no time in them).
PRODUCTION_FIXED: Final = {
    "DEFAULT_USAGE_LOCATION": "",
    "SET_USAGE_LOCATION": "true",
    "DEFAULT_LICENSES": "",
    "CLOUD_SYNC_JOB": "",
    "LICENSING_MODE": "direct",
    "LICENSE_GROUPS": "",
}

SCALED: Final = (
    "Graph (emulator, time_scale): the 10 s resource-unit and 150 s write windows, and "
    "Retry-After (in steps of 1/S s); the budgets stay 3,000 writes and N units a window",
    "settings: SWEEP_SCHEDULE (5 min), SYNC_TIMEOUT (24 h), RECHECK_INITIAL_DELAY (5 min), "
    "RECHECK_MAX_DELAY (30 min), POISON_HOLD (1 h), LICENSE_LEAD_TIME (1 d)",
    "host.json via AzureFunctionsJobHost__: functionTimeout (10 min), queues "
    "visibilityTimeout (30 s), queues maxPollingInterval (10 s)",
    "development host: its message lease (10 min; DEVHOST_MESSAGE_LEASE_SECONDS)",
    "code, in the benchmark's wiring (BIGDAY_TIME_SCALE): Policy.sku_cache_ttl (5 min), "
    "sweep_budget_seconds (240 s), pending_lease (5 min), forced_sync_recheck (30 s), "
    "group_recheck (30 s); GraphSender max_inline_wait (5 s), which also bounds the "
    "throttling gate's waits (the waits themselves come from Graph's scaled Retry-After); "
    "the shared pacing (Policy.pacing.faster): 20 writes/s becomes 20 x S, its horizon "
    "(150 s), freshness (2 s) and fallback pause (2 s) are divided by S",
)
NOT_SCALED: Final = (
    "GraphSender's inline retry waits after a 5xx or a 404 (0.5 s, 1 s: fixed in "
    "shared/adapters/graph/sender.py; none happen here) and the gate's 2 s without a "
    "Retry-After (Graph always sends one here)",
    "CloudSync's 5 calls per 10 s (no forced syncs here)",
    "HTTP timeouts (httpx 15 s, storage SDKs) and the storage SDKs' retry back-offs (only "
    "after a storage error)",
    "the development host's 100 ms minimum polling back-off",
    "the speed of everything: the app's CPU time, Azurite's and the emulator's; Graph's "
    "latency (the emulator answers in about a millisecond, Graph in tens to hundreds)",
    "Flex Consumption's scale-out pace (all host processes start at once: the worst case "
    "for the shared budget)",
)


@dataclass(frozen=True)
class TimeScale:
    """Time runs `factor` times faster than in production."""

    factor: float = 5.0

    def __post_init__(self) -> None:
        if not self.factor >= 1:
            raise ValueError("the time scale must be at least 1")

    def of(self, span: timedelta) -> timedelta:
        return span / self.factor

    def seconds(self, seconds: float) -> float:
        return seconds / self.factor

    def app_settings(self) -> dict[str, str]:
        """The app's settings at production values, time divided by the factor."""
        out = dict(PRODUCTION_FIXED)
        for name, span in PRODUCTION_SETTINGS.items():
            scaled = self.of(span)
            out[name] = sweep_schedule(scaled) if name == "SWEEP_SCHEDULE" else iso(scaled)
        return out

    def host_env(self) -> dict[str, str]:
        """host.json's time constants and the development host's lease, scaled."""
        out = {
            f"AzureFunctionsJobHost__{key}": timespan(self.of(span))
            for key, span in PRODUCTION_HOST.items()
        }
        lease = math.ceil(self.of(DEVHOST_LEASE).total_seconds())
        out["DEVHOST_MESSAGE_LEASE_SECONDS"] = str(lease)
        out["BIGDAY_TIME_SCALE"] = repr(self.factor)
        return out


def iso(span: timedelta) -> str:
    """An ISO 8601 duration in seconds (`PT60S`, `PT0.5S`)."""
    seconds = span.total_seconds()
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def timespan(span: timedelta) -> str:
    """A .NET TimeSpan `hh:mm:ss[.fff]` (under a day)."""
    total = span.total_seconds()
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    whole = int(seconds)
    millis = round((seconds - whole) * 1000)
    text = f"{int(hours):02d}:{int(minutes):02d}:{whole:02d}"
    return f"{text}.{millis:03d}" if millis else text


def sweep_schedule(period: timedelta) -> str:
    """An NCRONTAB expression aligned on the clock, like production's `0 */5 * * * *`,
    when the period divides a minute or an hour; a TimeSpan schedule otherwise."""
    seconds = period.total_seconds()
    if seconds.is_integer():
        whole = int(seconds)
        if whole < 60 and 60 % whole == 0:
            return f"*/{whole} * * * * *"
        if whole % 60 == 0 and 3600 % whole == 0:
            return f"0 */{whole // 60} * * * *"
    return timespan(period)
