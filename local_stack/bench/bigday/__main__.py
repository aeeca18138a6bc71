"""`python -m local_stack.bench.bigday`: the big-day benchmark on its own (see `cli`)."""

import sys

from local_stack.bench.bigday.cli import main

sys.exit(main())
