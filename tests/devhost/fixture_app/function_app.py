"""A tiny function app the development host tests run (not part of the product).

``record`` (queue trigger on %INPUT_QUEUE%) writes one JSON record per attempt to
%OUTPUT_QUEUE% with a long-lived async client, then fails for bodies containing "fail";
bodies like "sleep:1.5" sleep that long, recording when they started. ``tick`` (timer on
%TICK_SCHEDULE%) writes one record per invocation to %TICK_QUEUE% with a sync client,
after sleeping %TICK_SLEEP% seconds if set.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
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
