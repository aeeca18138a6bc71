"""Azure Functions entry points (Python v2 model). Each trigger decodes its binding and
calls one service function; everything else lives in `shared/` (the service logs each
outcome and each sweep as structured records: `shared.telemetry`).

The HTTP routes are anonymous to the Functions host on purpose: the app checks every
caller's Entra ID token and app role itself (`shared.service.front_door`), and in Azure
App Service authentication stands in front as a first gate (docs/deploy.md)."""

import azure.functions as func

from shared import bootstrap, telemetry
from shared.names import QUEUE_REQUESTS, STORAGE_CONNECTION
from shared.service.http_answers import HttpAnswer

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


@app.route(route="onboarding-requests", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def submit_request(req: func.HttpRequest) -> func.HttpResponse:
    """Onboarding.Submit: validate a request like the queue does, record it, queue it: 202."""
    door = bootstrap.front_door()
    return _response(await door.submit(req.headers.get("Authorization"), req.get_body()))


@app.route(
    route="onboarding-requests/{requestId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS
)
async def request_status(req: func.HttpRequest) -> func.HttpResponse:
    """Onboarding.Read or .Submit: where a request stands, from the ledger (or 404)."""
    door = bootstrap.front_door()
    request_id = req.route_params.get("requestId", "")
    return _response(await door.status(req.headers.get("Authorization"), request_id))


def _response(answer: HttpAnswer) -> func.HttpResponse:
    return func.HttpResponse(
        answer.content(),
        status_code=answer.status,
        headers=answer.all_headers(),
        mimetype="application/json",
    )
