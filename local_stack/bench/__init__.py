"""The benchmarks behind every figure in docs/benchmarks.md (never timing assertions in the
tests). `python -m local_stack.bench` (`make bench`, `ONLY=` picks) runs most sections on
the local stack, each on a stack of its own; three run on their own:

| section | module |
| --- | --- |
| 1. cold start (`ONLY=coldstart`) | `coldstart`, each sample a fresh `coldstart_child` |
| 2. intake, 4. a 503 storm (`ONLY=intake`, `storm`) | `intake` |
| 3. a sweep, 11. a backlog under throttling (`ONLY=sweep`, `backlog`) | `sweep`, the sweep in `sweep_child` |
| 5. forced sync (`ONLY=forcedsync`) | `forced_sync` |
| 6. `onboarding-ops list` | `python -m local_stack.bench.ops_list` |
| 7. retention | `python -m local_stack.bench.retention` |
| 8. storage calls with Event Grid | `python -m local_stack.bench.outbox` |
| 9. a big day under Graph's throttling (`ONLY=bigday`) | `bigday` (a package; also `python -m local_stack.bench.bigday`) |
| 10. the HTTP front door (`ONLY=frontdoor`) | `front_door` |

`common` holds what they share (the stack's settings for them, tenants of users, Graph's
request log by kind, the printed tables).
"""  # noqa: E501 - a table
