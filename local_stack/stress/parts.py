"""The stress parts. Each starts a stack of its own (Azurite, the Graph emulator), runs the
real app under development hosts it starts, kills and restarts, and is judged from the
outside (`judge`). `PARTS` maps a name to its function; `Options.short` picks the small
version the tests in tests/stress run.

- `kills`: SIGKILLs of the host at random moments and crash points at random durable
  calls, with restarts, while the batch arrives in waves.
- `walk`: a crash point between every two durable steps: for K = 1, 2, ... a fresh copy
  of a batch, a host that exits at its K-th durable call (before it, then after it), and
  restarts until the copy is all terminal; until a host finishes a copy without reaching K.
- `storm`: Graph answers 429 with Retry-After (20 %), 503 (5 %), drops connections and
  (full run) answers slower than the app's 15 s timeout.
- `duplicates`: every request posted two or three times (back to back, in progress and
  after its outcome) to two hosts at once; some messages redelivered while the first
  delivery still runs; invalid messages reusing a requestId in progress.
- `leases`: two hosts' sweeps take the same pending message (a slow `$batch` makes one
  sweep outlive the pending lease): at-least-once delivery of the app's own queue.
- `hostile`: thousands of generated hostile bodies (`bodies`) among valid requests,
  including injection attempts that reach Graph's `$filter` and paths.
- `azurite`: Azurite stopped and restarted (same ports and data) mid-batch while the
  host runs.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

from local_stack.stress.bodies import (
    DEFAULT_SEED,
    INJECTION_UPNS,
    INJECTION_USERS,
    TARGET_UPN,
    generate,
    queue_text,
    survey,
)
from local_stack.stress.harness import (
    KIND_MIX,
    LICENSES_E3,
    STATE,
    Harness,
    Host,
    Planned,
    mix,
    plan_requests,
    post_planned,
)
from local_stack.stress.judge import Verdict

FAST_LEASES: Final = {"DEVHOST_MESSAGE_LEASE_SECONDS": "2", "STRESS_PENDING_LEASE_SECONDS": "3"}
# The walk restarts a host about a hundred times: what the dead host held comes back fast.
WALK_LEASES: Final = {"DEVHOST_MESSAGE_LEASE_SECONDS": "1", "STRESS_PENDING_LEASE_SECONDS": "2"}


@dataclass(frozen=True)
class Options:
    short: bool = False
    seed: int = DEFAULT_SEED
    bodies: int | None = None
    requests: int | None = None
    state_root: Path = STATE  # each part works in <state_root>/<part>

    def count(self, short: int, full: int) -> int:
        return self.requests if self.requests is not None else (short if self.short else full)


@dataclass
class PartResult:
    name: str
    verdict: Verdict
    columns: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.verdict.figures.get("host_crashes_other")

    def to_json(self) -> dict[str, Any]:
        return {"part": self.name, "ok": self.ok, **self.columns, **self.verdict.to_json()}


def _result(name: str, harness: Harness, **columns: Any) -> PartResult:
    verdict = harness.judge()
    faults = verdict.figures.get("faults", {})
    injected = sum(v for k, v in faults.items() if k != "throttled_by_budget")
    return PartResult(
        name,
        verdict,
        {
            "requests": 0,
            "bodies": 0,
            "kills": 0,
            "crash_points": 0,
            "faults_injected": injected + int(columns.pop("slow_answers", 0)),
            "duplicates_posted": 0,
            **columns,
        },
    )


# --- kills: random SIGKILLs and random crash points ------------------------------------


def kills(options: Options) -> PartResult:
    """The batch arrives in waves; before each wave's host dies (SIGKILL after a random
    0.2-2.5 s, or a crash point at a random durable call), the next starts; a last host
    finishes the work."""
    n_kill, n_crash = (2, 2) if options.short else (14, 10)
    with Harness(
        "kills", seed=options.seed, state_root=options.state_root, host_env=FAST_LEASES
    ) as h:
        planned = plan_requests(
            h,
            "K",
            mix(options.count(14, 70)),
            late_after=5.0,
            never_deadline=5.0 if options.short else 40.0,
        )
        disruptions = ["kill"] * n_kill + ["crash"] * n_crash
        h.rng.shuffle(disruptions)
        waves = [planned[i :: len(disruptions)] for i in range(len(disruptions))]
        reached = 0
        crash_calls: Counter[str] = Counter()
        for wave, what in zip(waves, disruptions, strict=True):
            post_planned(h, wave)
            if what == "kill":
                host = h.start_host()
                h.wait_exit(host, h.rng.uniform(0.2, 2.5))
                h.kill(host)
            else:
                at = h.rng.randint(1, 3 * max(1, len(wave)) + 2)
                host = h.start_host(crash_at=at, when=h.rng.choice(["before", "after"]))
                if h.wait_exit(host, 4.0) and host.crashed_at_point():
                    reached += 1
                    crash_calls.update(c.what for c in host.counts() if c.how.startswith("crash"))
                else:
                    h.kill(host)
        h.start_host()
        h.wait_done(60 if options.short else 180)
        return _result(
            "kills",
            h,
            requests=len(planned),
            kills=sum(1 for d in disruptions if d == "kill")
            + sum(1 for host in h.hosts if host.crash_at and not host.crashed_at_point()),
            crash_points=reached,
            crash_point_calls=dict(crash_calls),
        )


# --- walk: a crash point between every two durable steps -------------------------------


def _walk_batch(h: Harness, prefix: str, short: bool) -> list[Planned]:
    kinds = ["noloc", "late", "invalid"] if short else ["noloc", "late", "unknown_sku", "invalid"]
    planned = plan_requests(h, prefix, kinds, late_after=1.5 if short else 3.0)
    post_planned(h, planned)
    late = next(p for p in planned if p.kind == "late")
    h.post_json(late.body, expect=late.expect)  # a second message, same requestId
    if not short:
        # A message the Functions host gave up on, for a request that never started.
        h.post_to_poison(
            {
                "requestId": f"{prefix}-poisoned",
                "userPrincipalName": "x@contoso.com",
                "licenses": LICENSES_E3,
            },
            expect="rejected:poison",
        )
    return planned


def walk(options: Options) -> PartResult:
    """Counting run first (how many durable calls a copy of the batch takes), then for
    K = 1, 2, ... a fresh copy with a host that exits at its K-th durable call, restarted
    until the copy is all terminal; stop when a host finishes a copy without reaching K."""
    short = options.short
    with Harness(
        "walk", seed=options.seed, state_root=options.state_root, host_env=WALK_LEASES
    ) as h:
        steps = SHORT_WALK_STEPS
        if not short:  # the counting run: how many durable calls one copy takes
            _walk_batch(h, "W0", short)
            counting = h.start_host()
            h.wait_done(60)
            h.stop(counting)
            steps = max((c.n for c in counting.counts()), default=0)
        crash_calls: Counter[str] = Counter()
        reached = 0
        runs: list[dict[str, Any]] = []
        whens = ["before", "after"]
        for when in whens:
            ks = _walk_ks(steps, short, when)
            for k in ks:
                _walk_batch(h, f"W{k}{when[0]}", short)
                host = h.start_host(crash_at=k, when=when)
                died = h.wait_for(partial(_exited_or_done, h, host), 60)
                if died and not host.alive() and host.crashed_at_point():
                    reached += 1
                    crash_calls.update(c.what for c in host.counts() if c.how.startswith("crash"))
                    restarted = h.start_host()
                    h.wait_done(60)
                    h.stop(restarted)
                    runs.append({"k": k, "when": when, "crashed": True})
                else:
                    h.stop(host)
                    h.wait_done(60)
                    runs.append({"k": k, "when": when, "crashed": False})
                    if not short:
                        break  # this copy took fewer than K durable calls: the walk is over
        return _result(
            "walk",
            h,
            requests=len({m.request_id for m in h.messages if m.expect}),
            crash_points=reached,
            durable_steps_per_batch=steps,
            crash_point_calls=dict(crash_calls),
            walk_runs=len(runs),
        )


SHORT_WALK_STEPS: Final = 12  # about what the short batch takes (its counting run is skipped)


def _exited_or_done(h: Harness, host: Host) -> bool:
    return not host.alive() or h.done()


def _walk_ks(steps: int, short: bool, when: str) -> list[int]:
    if short:
        return [2] if when == "before" else [max(3, steps // 2)]
    return list(range(1, 3 * steps + 10))  # stops at the first K no host reaches


# --- storm: Graph on its worst day ------------------------------------------------------

SLOW_COUNT: Final = 1_000_000
MIN_DISTINCT: Final = 0.9
SHORT_STORM_KINDS: Final = ("now", "noloc", "late", "immut", "unknown_sku", "never", "invalid")


def storm(options: Options) -> PartResult:
    short = options.short
    with Harness(
        "storm",
        seed=options.seed,
        state_root=options.state_root,
        settings={"SYNC_TIMEOUT": "PT15M"},
        host_env={"STRESS_PENDING_LEASE_SECONDS": "120"},
    ) as h:
        kinds = mix(options.count(7, 80), SHORT_STORM_KINDS if short else KIND_MIX)
        planned = plan_requests(
            h,
            "S",
            kinds,
            late_after=3.0 if short else 8.0,
            never_deadline=6.0 if short else 60.0,
        )
        if not short:
            # Slower than the app's httpx timeout (15 s): the client gives up first.
            h.graph.add_fault(path=".*", delayMs=16_000, rate=0.03, count=SLOW_COUNT)
        h.graph.add_fault(path=".*", drop=True, rate=0.02)
        h.graph.add_fault(path=".*", status=503, rate=0.05)
        h.graph.add_fault(path=".*", status=429, retryAfter=1, rate=0.11)
        h.graph.add_fault(path=".*", status=429, retryAfter=2, rate=0.11)
        h.start_host()
        post_planned(h, planned)
        h.wait_done(150 if short else 1200)
        slow = sum(
            SLOW_COUNT - int(f["remaining"])
            for f in h.graph.service.faults.list()
            if f.get("delayMs") and f.get("count") == SLOW_COUNT
        )
        return _result("storm", h, requests=len(planned), slow_answers=slow, slow=slow)


# --- duplicates: every message two or three times, two hosts ----------------------------


def duplicates(options: Options) -> PartResult:
    short = options.short
    with Harness(
        "duplicates", seed=options.seed, state_root=options.state_root, host_env=FAST_LEASES
    ) as h:
        planned = plan_requests(
            h,
            "D",
            mix(options.count(12, 60)),
            late_after=4.0,
            never_deadline=6.0 if short else 15.0,
        )
        rng = h.rng
        slowed = 0
        for p in planned:
            upn = p.body.get("userPrincipalName")
            if p.kind in ("now", "noloc", "two_skus") and isinstance(upn, str):
                # The first deliveries outlive their 2 s lease: the same message is
                # delivered again, to either host, while the first delivery still runs.
                count = rng.choice([1, 2])
                h.graph.add_fault(
                    method="GET", path=f"^/users/{re.escape(upn)}$", delayMs=2_600, count=count
                )
                slowed += 1
        h.start_host()
        h.start_host()
        copies = {p.request_id: rng.choice([2, 3]) for p in planned}
        extra = 0
        for p in planned:
            h.post_json(p.body, expect=p.expect)
            copies[p.request_id] -= 1
            if rng.random() < 0.5:  # back to back: the two hosts take them at once
                h.post_json(p.body, expect=p.expect)
                copies[p.request_id] -= 1
                extra += 1
        # In progress: a parked request gets another copy, and an invalid message naming it.
        for p in planned:
            if p.kind in ("late", "never"):
                h.wait_for(partial(h.seen, f"{p.request_id}:awaiting_sync"), 20)
                if copies[p.request_id] > 0:
                    h.post_json(p.body, expect=p.expect)
                    copies[p.request_id] -= 1
                    extra += 1
                h.post_json({"requestId": p.request_id, "oops": True, "licenses": LICENSES_E3})
                extra += 1
        # After the outcome: the same outcome again, same id.
        h.wait_for(lambda: all(p.request_id in h.answers.by_subject for p in planned), 90)
        for p in planned:
            while copies[p.request_id] > 0:
                h.post_json(p.body, expect=p.expect)
                copies[p.request_id] -= 1
                extra += 1
        h.wait_done(90 if short else 180)
        fired = sum(
            int(f.get("count") or 0) - int(f["remaining"])
            for f in h.graph.service.faults.list()
            if f.get("delayMs")
        )
        return _result(
            "duplicates",
            h,
            requests=len(planned),
            duplicates_posted=extra,
            hosts_at_once=2,
            slowed_first_deliveries=fired,
            users_with_slow_lookups=slowed,
        )


# --- leases: one pending message in two sweeps at once -----------------------------------


def leases(options: Options) -> PartResult:
    """Two hosts, so two sweeps run at once (the development host has no cross-process
    timer singleton); Graph's `$batch` is slow for a while, so a sweep outlives the 3 s
    pending lease and the other host's sweep receives the same pending message. The
    first sweep's pop receipt is then stale: at-least-once delivery of a pending message,
    which must not change any request's outcome."""
    short = options.short
    with Harness(
        "leases", seed=options.seed, state_root=options.state_root, host_env=FAST_LEASES
    ) as h:
        kinds = ["late"] * options.count(3, 20) + ([] if short else ["never"] * 4)
        planned = plan_requests(
            h, "L", kinds, late_after=8.0 if short else 10.0, never_deadline=14.0
        )
        h.graph.add_fault(method="POST", path=r"^/\$batch", delayMs=4_000, count=2 if short else 12)
        h.start_host()
        h.start_host()
        post_planned(h, planned)
        h.wait_done(60 if short else 120)
        fired = sum(
            int(f.get("count") or 0) - int(f["remaining"])
            for f in h.graph.service.faults.list()
            if f.get("delayMs")
        )
        return _result("leases", h, requests=len(planned), hosts_at_once=2, slow_batches=fired)


# --- hostile: generated bodies ----------------------------------------------------------


def hostile(options: Options) -> PartResult:
    short = options.short
    n = options.bodies if options.bodies is not None else (200 if short else 10_000)
    started = time.monotonic()
    bodies = generate(n, options.seed)
    generated_in = time.monotonic() - started
    stats = survey(bodies)
    texts = [queue_text(b.content) for b in bodies]
    with Harness(
        "hostile",
        seed=options.seed,
        state_root=options.state_root,
        settings={"SYNC_TIMEOUT": "PT3S" if short else "PT5S"},
        host_env={"DEVHOST_MESSAGE_LEASE_SECONDS": "120"},
    ) as h:
        h.add_user(TARGET_UPN)
        own: list[Planned] = []
        for immutable, upn in INJECTION_USERS.items():
            h.add_user(upn, onPremisesImmutableId=immutable)
            rid = f"V-inj-{len(own)}"
            body = {"requestId": rid, "onPremisesImmutableId": immutable, "licenses": LICENSES_E3}
            own.append(Planned(rid, body, "licensed", "injection"))
        for upn in INJECTION_UPNS:
            h.add_user(upn)
            rid = f"V-inj-{len(own)}"
            body = {"requestId": rid, "userPrincipalName": upn, "licenses": LICENSES_E3}
            own.append(Planned(rid, body, "licensed", "injection"))
        own += plan_requests(h, "V", mix(options.count(6, 40), ("now", "noloc", "empid", "immut")))
        h.start_host()
        post_started = time.monotonic()
        chunk = max(1, len(texts) // max(1, len(own)))
        for i, p in enumerate(own):
            h.post_many(texts[i * chunk : (i + 1) * chunk])
            h.post_json(p.body, expect=p.expect)
        h.post_many(texts[len(own) * chunk :])
        posted_in = time.monotonic() - post_started
        h.wait_done(90 if short else 1200)
        answered_in = time.monotonic() - post_started
        valid_hostile = sum(1 for m in h.messages if m.valid and not m.expect)
        result = _result(
            "hostile",
            h,
            requests=len(own),
            bodies=len(bodies),
            bodies_distinct=stats.distinct,
            bodies_by_kind=stats.by_kind,
            bodies_missing_kinds=stats.missing_kinds,
            bodies_posted_base64=stats.wrapped,
            bodies_largest_bytes=stats.largest,
            bodies_valid_requests=valid_hostile,
            generate_s=round(generated_in, 1),
            post_s=round(posted_in, 1),
            all_answered_s=round(answered_in, 1),
        )
        # The bodies themselves: every kind drawn, and distinct enough to mean something.
        if stats.missing_kinds:
            result.verdict.harness.append(f"body kinds never drawn: {stats.missing_kinds}")
        if stats.total >= 1_000 and stats.distinct_ratio < MIN_DISTINCT:
            result.verdict.harness.append(f"only {stats.distinct} distinct bodies of {stats.total}")
        return result


# --- azurite: the storage account goes away mid-batch ----------------------------------


def _intake_empty(h: Harness) -> bool:
    return h.stack.count("user-onboard") == 0


def _answered_at_least(h: Harness, wanted: int) -> bool:
    return len(h.answers.by_subject) >= wanted


def azurite(options: Options) -> PartResult:
    short = options.short
    outages = [3.0] if short else [8.0, 4.0]
    with Harness(
        "azurite",
        seed=options.seed,
        state_root=options.state_root,
        host_env={"DEVHOST_MESSAGE_LEASE_SECONDS": "3", "STRESS_PENDING_LEASE_SECONDS": "3"},
    ) as h:
        # Short: nothing waits for the sweep, which sits in the storage SDK's retry
        # backoff (15 s) after the outage; the full run has parked requests too.
        kinds = tuple(k for k in KIND_MIX if k not in ("late", "never")) if short else KIND_MIX
        planned = plan_requests(
            h,
            "A",
            mix(options.count(12, 80), kinds),
            late_after=4.0,
            never_deadline=6.0 if short else 25.0,
        )
        h.start_host()
        post_planned(h, planned[: len(planned) // 2])
        down = 0.0
        for n, seconds in enumerate(outages):
            if short:
                # Only the sweeps and the host's receiving meet the outage: an intake
                # invocation that fails is retried after host.json's visibilityTimeout
                # (30 s), which the full run waits out and the short one avoids.
                h.wait_for(partial(_intake_empty, h), 30)
            else:  # mid-batch: intake invocations running
                wanted = len(planned) * (n + 1) // (len(outages) + 2)
                h.wait_for(partial(_answered_at_least, h, wanted), 30)
            h.stack.stop_azurite()
            time.sleep(seconds)
            h.stack.restart_azurite()
            down += seconds
            if n == 0:
                post_planned(h, planned[len(planned) // 2 :])
        h.wait_done(90 if short else 240)
        return _result(
            "azurite",
            h,
            requests=len(planned),
            azurite_outages=len(outages),
            azurite_down_s=down,
        )


PARTS: Final[dict[str, Callable[[Options], PartResult]]] = {
    "kills": kills,
    "walk": walk,
    "storm": storm,
    "duplicates": duplicates,
    "leases": leases,
    "hostile": hostile,
    "azurite": azurite,
}


def dump(results: list[PartResult]) -> str:
    return json.dumps([r.to_json() for r in results], indent=2, sort_keys=False)
