"""The stress suite (`make stress`, `python -m local_stack.stress`; docs/reliability.md).

The real app (the repo's `function_app.py` under the development host, Azurite, the Graph
emulator over HTTP) is killed, crashed at durable steps, stormed, fed duplicates and
hostile bodies, and has its storage pulled; every part is judged from the outside.

- `crashpoints`: the crash-point shim app folder and the port wrapper it installs;
- `bodies`: hostile bodies (hypothesis strategies, deterministic generation);
- `judge`: the rules, applied to what the queues, events and Graph emulator show;
- `harness`: stacks, hosts, posting, reading events;
- `parts`: the parts; `__main__`: the command line and the table of figures.
"""
