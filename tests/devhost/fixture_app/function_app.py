"""A tiny function app the development host tests run (not part of the product).

``record`` (queue trigger on %INPUT_QUEUE%) writes one JSON record per attempt to
%OUTPUT_QUEUE% with a long-lived async client, then fails for bodies containing "fail";
bodies like "sleep:1.5" sleep that long, recording when they started. ``tick`` (timer on
%TICK_SCHEDULE%) writes one record per invocation to %TICK_QUEUE% with a sync client,
after sleeping %TICK_SLEEP% seconds if set.

HTTP functions (anonymous unless said otherwise; see test_devhost_http.py): ``echo``
(GET/POST ``items/{id:int}/{tail?}``) answers what it received as JSON, with the status
and a header asked for in the query; ``things_get``/``things_post`` share one route with
different methods; ``keyed`` has the function auth level; ``sync_echo`` (any method,
``sync/{name}``) is synchronous and ``special`` (``sync/special``) competes with it for
precedence; ``sleepy`` sleeps ``sleep/{seconds}``; ``text`` returns a ``str``; ``boom``
raises; ``nothing`` returns None; ``gather/{n:int}`` waits until n requests are inside it
at once (proof that requests run concurrently).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
import time

import azure.functions as func
from azure.storage.queue import QueueClient
from azure.storage.queue.aio import QueueClient as AsyncQueueClient

app = func.FunctionApp()

_output: AsyncQueueClient | None = None


def _connection() -> str:
    return os.environ["AzureWebJobsStorage"]  # noqa: SIM112 - the host's setting name


async def _write(record: dict[str, object]) -> None:
    global _output
    if _output is None:  # kept across invocations: needs the host's single event loop
        _output = AsyncQueueClient.from_connection_string(_connection(), os.environ["OUTPUT_QUEUE"])
    await _output.send_message(json.dumps(record))


@app.queue_trigger(arg_name="msg", queue_name="%INPUT_QUEUE%", connection="AzureWebJobsStorage")
async def record(msg: func.QueueMessage) -> None:
    body = msg.get_body()
    text = body.decode("utf-8", errors="replace")
    logging.info("fixture got %r", text)
    base = {
        "id": msg.id,
        "text": text,
        "b64": base64.b64encode(body).decode("ascii"),
        "dequeue_count": msg.dequeue_count,
        "has_pop_receipt": bool(msg.pop_receipt),
        "has_insertion_time": msg.insertion_time is not None,
        "greeting": os.environ.get("FIXTURE_GREETING"),
        "file_only": os.environ.get("FIXTURE_FILE_ONLY"),
    }
    if text.startswith("sleep:"):
        await _write({**base, "stage": "started", "at": time.time()})
        await asyncio.sleep(float(text.split(":", 1)[1].split()[0]))
    await _write({**base, "stage": "done", "at": time.time()})
    if "fail" in text:
        raise RuntimeError(f"fixture failure for {text!r}")


@app.timer_trigger(arg_name="timer", schedule="%TICK_SCHEDULE%", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    started = time.time()
    time.sleep(float(os.environ.get("TICK_SLEEP", "0")))
    record = {"past_due": timer.past_due, "start": started, "end": time.time()}
    with QueueClient.from_connection_string(_connection(), os.environ["TICK_QUEUE"]) as queue:
        queue.send_message(json.dumps(record))


def _seen(req: func.HttpRequest, **extra: object) -> dict[str, object]:
    return {
        "method": req.method,
        "url": req.url,
        "headers": {k.lower(): v for k, v in req.headers.items()},
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "body_b64": base64.b64encode(req.get_body()).decode("ascii"),
        **extra,
    }


@app.route(
    route="items/{id:int}/{tail?}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS
)
async def echo(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    status = int(req.params.get("status", "200"))
    return func.HttpResponse(
        json.dumps(_seen(req, function=context.function_name)),
        status_code=status,
        headers={"X-Echo": req.params.get("header", "none")},
        mimetype="application/json",
    )


@app.route(route="things", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def things_get(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("things_get")


@app.route(route="things", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def things_post(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("things_post", status_code=201)


@app.route(route="keyed", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def keyed(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("no key was needed")


@app.route(route="sync/{name}", auth_level=func.AuthLevel.ANONYMOUS)
def sync_echo(req: func.HttpRequest) -> func.HttpResponse:
    body = _seen(req, thread=threading.current_thread().name)
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


# Declared after sync/{name}: the literal route still wins, by precedence, not by order.
@app.route(route="sync/special", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def special(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"function": "special"}), mimetype="application/json")


@app.route(route="sleep/{seconds}", auth_level=func.AuthLevel.ANONYMOUS)
async def sleepy(req: func.HttpRequest) -> func.HttpResponse:
    logging.info("sleepy started")
    await asyncio.sleep(float(req.route_params["seconds"]))
    return func.HttpResponse("slept")


@app.route(route="text", auth_level=func.AuthLevel.ANONYMOUS)
async def text(req: func.HttpRequest) -> str:
    return "plain text"


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
async def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("fixture HTTP failure")


@app.route(route="nothing", auth_level=func.AuthLevel.ANONYMOUS)
async def nothing(req: func.HttpRequest) -> func.HttpResponse:
    return None  # type: ignore[return-value]


_inside = 0
_arrived: asyncio.Event | None = None  # created on the host's loop at first use


@app.route(route="gather/{n:int}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def gather(req: func.HttpRequest) -> func.HttpResponse:
    global _inside, _arrived
    if _arrived is None:
        _arrived = asyncio.Event()
    wanted = int(req.route_params["n"])
    _inside += 1
    if _inside >= wanted:
        _arrived.set()
    try:
        await asyncio.wait_for(_arrived.wait(), timeout=20)
    except TimeoutError:
        return func.HttpResponse(f"only {_inside} of {wanted} arrived", status_code=504)
    return func.HttpResponse(f"{wanted} inside at once")
