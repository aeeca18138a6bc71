"""Azure Functions entry points (Python v2 model). Each trigger decodes its binding and
calls one service function; everything else lives in `shared/`."""

import logging

import azure.functions as func

from shared import bootstrap
from shared.names import QUEUE_REQUESTS, STORAGE_CONNECTION

# Read the settings now: a missing or malformed one stops the app at start-up, by name.
bootstrap.settings()

app = func.FunctionApp()
log = logging.getLogger("user_onboarding")


@app.queue_trigger(arg_name="msg", queue_name=QUEUE_REQUESTS, connection=STORAGE_CONNECTION)
async def user_onboard(msg: func.QueueMessage) -> None:
    """Validate one onboarding request, license it if the user is synced, else park it."""
    outcome = await bootstrap.service().handle_request(msg.get_body(), msg.id or "")
    log.info("user-onboard message %s: %s", msg.id, outcome)


@app.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", use_monitor=True)
async def sweep(timer: func.TimerRequest) -> None:
    """Report poisoned messages and recheck the pending requests that are due."""
    report = await bootstrap.service().sweep()
    log.info("sweep: %s", report.summary())
