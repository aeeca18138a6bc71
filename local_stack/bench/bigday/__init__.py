"""The big-day benchmark's pieces (issue 20); run it with `python -m local_stack.bench.bigday`."""
