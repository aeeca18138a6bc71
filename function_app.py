"""Azure Functions entry points (Python v2 model). Each trigger decodes its binding and
calls one service function; everything else lives in `shared/` (the service logs each
outcome and each sweep as structured records: `shared.telemetry`)."""

import azure.functions as func

from shared import bootstrap, telemetry
from shared.names import QUEUE_REQUESTS, STORAGE_CONNECTION

# Export to Application Insights when it is configured (set up off the cold path).
telemetry.configure()
# Read the settings now: a missing or malformed one stops the app at start-up, by name.
bootstrap.settings()

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name=QUEUE_REQUESTS, connection=STORAGE_CONNECTION)
async def user_onboard(msg: func.QueueMessage) -> None:
    """Validate one onboarding request, license it if the user is synced, else park it."""
    await bootstrap.service().handle_request(msg.get_body(), msg.id or "")


@app.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", use_monitor=True)
async def sweep(timer: func.TimerRequest) -> None:
    """Report poisoned messages and recheck the pending requests that are due."""
    await bootstrap.service().sweep()
