"""Shared test set-up: the Graph emulator plugin, the event-schema check (every event a
test sees validates against schemas/events/), and the settings the app needs to import."""

import os

pytest_plugins = ["tests.support.graph", "tests.support.event_schemas"]

# function_app.py reads its settings at import; tests that import it get these.
os.environ.setdefault("AzureWebJobsStorage", "UseDevelopmentStorage=true")
os.environ.setdefault("SWEEP_SCHEDULE", "0 */5 * * * *")
