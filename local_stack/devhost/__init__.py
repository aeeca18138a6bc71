"""Development host: a small, faithful stand-in for the Azure Functions host.

Used where Azure Functions Core Tools cannot be installed (no internet: its npm package
downloads the host from a CDN). Run it as a subprocess::

    python -m local_stack.devhost [--app-dir DIR] [--settings FILE] [--once-idle-seconds N]
        [--drain-seconds N] [--http-port N] [--http-ready-file PATH]

What it does, like the real host:

* Settings: ``--settings FILE``, else ``DIR/local.settings.json``, else
  ``DIR/local.settings.sample.json``; its ``Values`` go into ``os.environ``. A variable
  already set in the real environment wins over the file (as with Core Tools), so tests
  and scripts can override single settings.
* Imports ``DIR/function_app.py`` (module ``function_app``, ``DIR`` on ``sys.path``),
  reads ``app.get_functions()`` and each ``get_function_json()``. Supported bindings:
  ``queueTrigger``, ``timerTrigger`` and ``httpTrigger`` (with its ``$return`` response);
  any other binding (output bindings included) makes it refuse to start with a message
  naming the function and the binding.
  Besides the trigger argument, a function may declare ``context`` (``func.Context``).
* ``%NAME%`` in queue names, connections and schedules is replaced by the setting NAME
  (unset: refuse to start). A binding's ``connection`` (default ``AzureWebJobsStorage``)
  names a setting holding a storage connection string; ``UseDevelopmentStorage=true``
  means Azurite at 127.0.0.1:10001.
* host.json ``extensions.queues``: ``batchSize`` (16), ``newBatchThreshold``
  (batchSize/2), ``maxDequeueCount`` (5), ``visibilityTimeout`` (00:00:00),
  ``maxPollingInterval`` (00:01:00), ``messageEncoding`` (base64 | none); and
  ``functionTimeout`` (default 00:30:00 as on Flex Consumption; ``-1`` = none).
* Queue triggers: creates the queue if missing; receives up to batchSize messages,
  invisible for 10 minutes while they run; fetches the next batch once no more than
  newBatchThreshold are running (so at most batchSize + newBatchThreshold run at once
  per queue); polls again at once while messages come, backing off from 100 ms to
  maxPollingInterval while the queue is empty. Each message becomes an
  ``azure.functions.queue.QueueMessage`` (id, body bytes, dequeue_count, insertion,
  expiration and next-visible times, pop receipt). Body: ``none`` passes the text as
  UTF-8; ``base64`` decodes it. Success deletes the message. Failure (exception or
  functionTimeout) logs the traceback; with ``dequeue_count >= maxDequeueCount`` the
  original message text goes to ``<queue>-poison`` (created if missing) and the message
  is deleted, otherwise it becomes visible again after visibilityTimeout. As in the
  real host, a message received with a dequeue count already above maxDequeueCount
  (a host died while running it) goes to poison without running, and in base64 mode a
  message that is not valid base64 goes to poison at once without running (the host's
  decoding-failure handler; a plain text that happens to be valid base64, such as
  ``test``, is decoded into garbage bytes instead, as in the real host).
* ``AzureWebJobs.<name>.Disabled`` (``true`` or ``1``) switches a function off.
* Timer triggers: NCRONTAB (six fields) or TimeSpan schedules, UTC; ``runOnStartup``;
  a ``azure.functions.TimerRequest``; an invocation never overlaps itself, and ticks
  missed while it ran are coalesced into one immediate invocation with
  ``past_due=True``.
* HTTP triggers on 127.0.0.1 (``--http-port``, default 0; the bound port is written to
  ``--http-ready-file``): host.json ``routePrefix`` (default ``api``) and ASP.NET route
  templates with constraints, ``methods``, ``func.HttpRequest`` in and ``HttpResponse``
  (or ``str``) out, 404 for an unknown route or method (as the real host answers), 413
  over 100 MB, 414 over a 4 KB URL, an empty 500 when the function fails; access keys
  are not enforced (nor are they by Core Tools locally). See ``routes`` and
  ``http_listener``.
* Async functions run on one long-lived event loop; sync functions in a thread pool
  (``PYTHON_THREADPOOL_THREAD_COUNT`` if set).
* Logs one ``[devhost]`` line per invocation to stderr (ok / failed with dequeue count
  / moved to poison) and the app's ``logging`` output at INFO.
* SIGINT/SIGTERM: stops polling, waits up to 5 s for running invocations, cancels the
  rest, closes its clients, exits 0. ``--once-idle-seconds N`` exits 0 after N seconds
  without a received message or a running invocation.

What it does NOT do (differences from the real host):

* No output or input bindings, blob, Service Bus, Event Grid or any trigger other than
  queue, timer and HTTP; no ``$return`` binding but an HTTP trigger's response; no retry
  policies; no Durable Functions. HTTP: no keys, Easy Auth, HTTPS, CORS, throttling
  (429) or complex route segments (README.md).
* No identity-based connections (``<conn>__queueServiceUri``, managed identity): connection
  strings only.
* No scale-out and no cross-process singleton: timers are singletons within this process
  only (the real host uses blob leases); ``useMonitor`` schedule status is not persisted,
  so ticks missed while the host was down are not detected.
* No lease renewal: a message running longer than 10 minutes becomes visible again (the
  real host renews it). A sync function that times out keeps its thread (the real host
  restarts the worker process).
* On graceful shutdown, invocations cancelled after the grace period have their message
  made visible at once (a killed process leaves them invisible until the 10-minute lease
  ends, as with the real host).
* The idle exit (``--once-idle-seconds``) only knows about messages it has received: one
  posted during a poll back-off may be left for the next run.
* No Application Insights, no host keys, no admin API, no ``WEBSITE_TIME_ZONE`` (UTC only),
  no host.json logging configuration,
  no jitter in the polling back-off, no ``ConnectionStrings`` section of the settings file.
"""

from .config import (
    DevHostError,
    FunctionSpec,
    HostOptions,
    QueuesOptions,
    load_functions,
    load_host_options,
    parse_host_options,
)
from .host import DevHost, configure_logging
from .http_listener import HttpListener
from .routes import HttpTrigger, RouteTemplate

__all__ = [
    "DevHost",
    "DevHostError",
    "FunctionSpec",
    "HostOptions",
    "HttpListener",
    "HttpTrigger",
    "QueuesOptions",
    "RouteTemplate",
    "configure_logging",
    "load_functions",
    "load_host_options",
    "parse_host_options",
]
