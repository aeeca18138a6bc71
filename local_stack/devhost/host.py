"""The development host's runtime: queue listeners, timers, invocations and shutdown.

One asyncio event loop runs everything: async functions are awaited on it (so clients
an app keeps across invocations stay on one loop), sync functions run in a thread pool
(``PYTHON_THREADPOOL_THREAD_COUNT`` threads if set, else Python's default). Storage calls
use the synchronous SDK in worker threads.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions._abc import RetryContext, TraceContext
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import ExponentialRetry, QueueClient, QueueMessage, QueueServiceClient

from .config import (
    DevHostError,
    FunctionSpec,
    HostOptions,
    QueuesOptions,
    QueueTrigger,
    TimerTrigger,
    apply_settings,
    disabled_functions,
    find_settings_file,
    load_functions,
    load_host_options,
    load_settings,
)
from .errors import describe as _describe
from .errors import format_traceback as _format_traceback
from .http_listener import HttpListener

__all__ = ["LEASE", "DevHost", "configure_logging"]

log = logging.getLogger("devhost")

# Like the real host: messages are received invisible for 10 minutes while they run.
# DEVHOST_MESSAGE_LEASE_SECONDS shortens it for tests that kill the host mid-batch (a
# killed host's messages come back only when their lease runs out).
LEASE = timedelta(seconds=int(os.environ.get("DEVHOST_MESSAGE_LEASE_SECONDS", "600")))
MIN_POLLING_INTERVAL = 0.1
POISON_SUFFIX = "-poison"


class FunctionTimeoutError(Exception):
    """The invocation ran longer than host.json functionTimeout."""


# --------------------------------------------------------------------------- logging


def _not_library_noise(record: logging.LogRecord) -> bool:
    # azure-functions warns about auth levels on every get_functions() of a non-HTTP app.
    return not str(record.msg).startswith("Auth level is not applied to non http")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == "devhost" or record.name.startswith("devhost."):
            line = f"[devhost] {message}"
        else:
            line = f"[app] {record.levelname} {record.name}: {message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr: the host's lines as ``[devhost] ...``, the app's at INFO and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    handler.addFilter(_not_library_noise)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The storage SDK logs every HTTP request at INFO; the real host does not show them.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)


# --------------------------------------------------------------------------- context


class _TraceContext(TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class _Context(func.Context):
    """The ``context`` argument a function may declare (as the Python worker passes)."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str):
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return threading.local()

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> RetryContext:
        return _RetryContext()


# --------------------------------------------------------------------------- helpers


async def _wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass; return whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


def _span(delta: timedelta) -> str:
    total = int(delta.total_seconds())
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


# --------------------------------------------------------------------------- host


class DevHost:
    """A stand-in for the Azure Functions host for one app folder.

    ``DevHost(app_dir).run()`` loads the settings (``--settings`` file, else
    ``local.settings.json``, else ``local.settings.sample.json``; variables already in
    the real environment win), host.json and ``function_app.py``, then serves until
    SIGINT/SIGTERM (or ``once_idle_seconds`` of idleness) and returns the exit code.
    ``await DevHost(app_dir).serve(stop_event)`` does the serving part on the caller's
    loop.
    """

    def __init__(
        self,
        app_dir: Path,
        settings_path: Path | None = None,
        *,
        once_idle_seconds: float | None = None,
        drain_seconds: float = 5.0,
        http_port: int = 0,
        http_ready_file: Path | None = None,
    ) -> None:
        self.app_dir = Path(app_dir).resolve()
        self.http_port = http_port
        self.http_ready_file = http_ready_file
        self.http: HttpListener | None = None
        self.settings_path = settings_path
        self.once_idle_seconds = once_idle_seconds
        self.drain_seconds = drain_seconds
        self.options = HostOptions()
        self.functions: list[FunctionSpec] = []
        self._loaded = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._last_activity = time.monotonic()
        self._executor: ThreadPoolExecutor | None = None
        self._clients: dict[str, QueueServiceClient] = {}

    # -- loading ------------------------------------------------------------------------

    def load(self) -> None:
        """Load settings into ``os.environ``, host.json and the functions; or raise."""
        if self._loaded:
            return
        settings_file = find_settings_file(self.app_dir, self.settings_path)
        if settings_file is None:
            log.info("no local.settings.json or local.settings.sample.json: using the environment")
        else:
            skipped = apply_settings(load_settings(settings_file), os.environ)
            log.info("settings from %s", settings_file)
            for name in skipped:
                log.info("%s from the environment overrides the settings file", name)
        self.options = load_host_options(self.app_dir)
        functions = load_functions(self.app_dir, route_prefix=self.options.http_route_prefix)
        off = disabled_functions([f.name for f in functions], os.environ)
        for name in sorted(off):
            log.info("%s: disabled (AzureWebJobs.%s.Disabled)", name, name)
        self.functions = [f for f in functions if f.name not in off]
        self._loaded = True

    # -- serving ------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM or idleness; return the process exit code."""
        try:
            self.load()
        except DevHostError as error:
            cause = error.__cause__
            if cause is not None and not isinstance(cause, DevHostError):
                log.error("refusing to start: %s\n%s", error, _format_traceback(cause))
            else:
                log.error("refusing to start: %s", error)
            return 1
        return asyncio.run(self._run_until_signal())

    async def _run_until_signal(self) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def _on_signal(signum: signal.Signals) -> None:
            if not stop.is_set():
                log.info("%s received: stopping", signum.name)
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, _on_signal, signum)
        try:
            await self.serve(stop)
        except DevHostError as error:
            log.error("cannot start: %s", error)
            return 1
        return 0

    async def serve(self, stop_event: asyncio.Event) -> None:
        """Run the triggers until ``stop_event`` is set, then drain and close everything."""
        self.load()
        self._slot_freed = asyncio.Event()
        threads = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "").strip()
        self._executor = ThreadPoolExecutor(
            max_workers=int(threads) if threads.isdigit() and int(threads) > 0 else None,
            thread_name_prefix="devhost-function",
        )
        loops: list[asyncio.Task[None]] = []
        try:
            listeners = [
                _QueueListener(self, spec, spec.trigger)
                for spec in self.functions
                if isinstance(spec.trigger, QueueTrigger)
            ]
            for listener in listeners:
                await listener.prepare()
            timers = [
                _TimerRunner(self, spec, spec.trigger)
                for spec in self.functions
                if isinstance(spec.trigger, TimerTrigger)
            ]
            self.http = self._start_http()
            self._describe_start(listeners, timers)
            self._announce_http()
            self._last_activity = time.monotonic()
            loops = [asyncio.create_task(listener.run(stop_event)) for listener in listeners]
            loops += [asyncio.create_task(timer.run(stop_event)) for timer in timers]
            if self.once_idle_seconds is not None:
                loops.append(asyncio.create_task(self._watch_idle(stop_event)))
            stopper = asyncio.create_task(stop_event.wait())
            done, _ = await asyncio.wait({stopper, *loops}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and not task.cancelled() and task.exception():
                    error = task.exception()
                    assert error is not None
                    log.error("host loop failed: %s", _describe(error), exc_info=error)
            stop_event.set()
            await stopper
            await asyncio.gather(*loops, return_exceptions=True)
            if self.http is not None:
                await self.http.stop_accepting()
            await self._drain()
            if self.http is not None:
                await self.http.wait_answered(self.drain_seconds)
        finally:
            if self.http is not None:
                self.http.close()
            for task in loops:
                task.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)
            for client in self._clients.values():
                client.close()
            self._clients.clear()
        log.info("stopped")

    def _describe_start(self, listeners: list[_QueueListener], timers: list[_TimerRunner]) -> None:
        queues = self.options.queues
        for listener in listeners:
            log.info(
                "%s: queueTrigger on %s (batchSize %d, newBatchThreshold %d, "
                "maxDequeueCount %d, visibilityTimeout %s, messageEncoding %s)",
                listener.spec.name,
                listener.trigger.queue_name,
                queues.batch_size,
                queues.new_batch_threshold,
                queues.max_dequeue_count,
                _span(queues.visibility_timeout),
                queues.message_encoding,
            )
        for timer in timers:
            log.info(
                "%s: timerTrigger '%s'%s, next at %s",
                timer.spec.name,
                timer.trigger.schedule.expression,
                " (runOnStartup)" if timer.trigger.run_on_startup else "",
                timer.trigger.schedule.next_after(datetime.now(UTC)).isoformat(),
            )
        log.info("ready (%d function(s))", len(self.functions))

    def _start_http(self) -> HttpListener:
        """Listen on 127.0.0.1 (always, like the real host, so its port is known even
        before the app has HTTP functions)."""
        try:
            listener = HttpListener(self, self.functions, self.http_port)
        except OSError as error:
            raise DevHostError(f"cannot listen on 127.0.0.1:{self.http_port}: {error}") from error
        listener.start(asyncio.get_running_loop())
        return listener

    def _announce_http(self) -> None:
        """Log the HTTP routes as `func start` lists them; write the port file."""
        assert self.http is not None
        base = self.http.base_url
        log.info("HTTP on %s (auth levels are not enforced locally, as with func start)", base)
        for spec, trigger in self.http.routes:
            methods = ",".join(trigger.methods) if trigger.methods else "any method"
            log.info("%s: [%s] %s/%s", spec.name, methods, base, trigger.template.text)
        if self.http_ready_file is not None:
            staging = self.http_ready_file.with_name(self.http_ready_file.name + ".tmp")
            staging.write_text(f"{self.http.port}\n", encoding="utf-8")
            staging.replace(self.http_ready_file)

    async def _watch_idle(self, stop: asyncio.Event) -> None:
        assert self.once_idle_seconds is not None
        while not stop.is_set():
            idle = time.monotonic() - self._last_activity
            if not self._inflight and idle >= self.once_idle_seconds:
                log.info("idle for %.1fs: stopping", self.once_idle_seconds)
                stop.set()
                return
            await _wait_event(stop, 0.05)

    async def _drain(self) -> None:
        if not self._inflight:
            return
        log.info(
            "waiting up to %.0fs for %d running invocation(s)",
            self.drain_seconds,
            len(self._inflight),
        )
        _, pending = await asyncio.wait(set(self._inflight), timeout=self.drain_seconds)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d invocation(s) still running", len(pending))
            await asyncio.wait(pending, timeout=self.drain_seconds)

    # -- shared pieces used by listeners and timers -------------------------------------

    def touch(self) -> None:
        self._last_activity = time.monotonic()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine)
        self._inflight.add(task)

        def _done(finished: asyncio.Task[None]) -> None:
            self._inflight.discard(finished)
            self.touch()
            self._slot_freed.set()
            if not finished.cancelled() and finished.exception() is not None:
                error = finished.exception()
                log.error("internal error: %s", error, exc_info=error)

        task.add_done_callback(_done)
        return task

    async def wait_slot_freed(self, stop: asyncio.Event) -> None:
        self._slot_freed.clear()
        waiters = [
            asyncio.create_task(self._slot_freed.wait()),
            asyncio.create_task(stop.wait()),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def service_client(self, connection_string: str) -> QueueServiceClient:
        client = self._clients.get(connection_string)
        if client is None:
            client = QueueServiceClient.from_connection_string(
                connection_string,
                retry_policy=ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=2),
            )
            self._clients[connection_string] = client
        return client

    async def invoke(
        self, spec: FunctionSpec, trigger_value: object, invocation_id: str
    ) -> BaseException | None:
        """Run the function once; return the error it ended with (None if it succeeded)."""
        try:
            await self.call(spec, trigger_value, invocation_id)
        except (Exception, SystemExit) as error:
            return error
        return None

    async def call(self, spec: FunctionSpec, trigger_value: object, invocation_id: str) -> object:
        """Run the function once and return its value; raise what it raised, or
        FunctionTimeoutError after host.json functionTimeout."""
        kwargs: dict[str, object] = {spec.arg_name: trigger_value}
        if spec.context_arg is not None:
            kwargs[spec.context_arg] = _Context(invocation_id, spec.name, str(self.app_dir))
        timeout = self.options.function_timeout
        seconds = None if timeout is None else timeout.total_seconds()
        awaitable: Awaitable[object]
        if spec.is_async:
            awaitable = spec.func(**kwargs)
        else:
            assert self._executor is not None
            call: Callable[[], object] = functools.partial(copy_context().run, spec.func, **kwargs)
            awaitable = asyncio.get_running_loop().run_in_executor(self._executor, call)
        try:
            return await asyncio.wait_for(awaitable, seconds)
        except TimeoutError:
            assert timeout is not None
            message = f"timed out after {_span(timeout)} (host.json functionTimeout)"
            if not spec.is_async:
                message += "; its thread keeps running (Python cannot stop it)"
            raise FunctionTimeoutError(message) from None


# --------------------------------------------------------------------------- queues


class _QueueListener:
    """Polls one queue like the host's queue listener and runs the function per message."""

    def __init__(self, host: DevHost, spec: FunctionSpec, trigger: QueueTrigger) -> None:
        self.host = host
        self.spec = spec
        self.trigger = trigger
        self.options: QueuesOptions = host.options.queues
        service = host.service_client(trigger.connection_string)
        self.queue: QueueClient = service.get_queue_client(trigger.queue_name)
        self.poison_name = trigger.queue_name + POISON_SUFFIX
        self.poison: QueueClient = service.get_queue_client(self.poison_name)
        self._poison_ready = False
        self._running: set[asyncio.Task[None]] = set()

    async def prepare(self) -> None:
        try:
            await asyncio.to_thread(self._create_if_missing, self.queue)
        except ResourceExistsError:
            pass
        except Exception as error:
            raise DevHostError(
                f"function '{self.spec.name}': cannot create or reach queue "
                f"'{self.trigger.queue_name}' with connection '{self.trigger.connection}' "
                f"({self.queue.url}): {_describe(error)}"
            ) from error

    @staticmethod
    def _create_if_missing(queue: QueueClient) -> None:
        with contextlib.suppress(ResourceExistsError):
            queue.create_queue()

    def _receive(self) -> list[QueueMessage]:
        return list(
            self.queue.receive_messages(
                messages_per_page=self.options.batch_size,
                max_messages=self.options.batch_size,
                visibility_timeout=int(LEASE.total_seconds()),
            )
        )

    async def run(self, stop: asyncio.Event) -> None:
        delay = MIN_POLLING_INTERVAL
        maximum = self.options.max_polling_interval.total_seconds()
        failing = False
        while not stop.is_set():
            # Like the host: fetch another batch once at most newBatchThreshold are running.
            while len(self._running) > self.options.new_batch_threshold and not stop.is_set():
                await self.host.wait_slot_freed(stop)
            if stop.is_set():
                break
            try:
                messages = await asyncio.to_thread(self._receive)
            except Exception as error:
                if not failing:
                    log.warning(
                        "%s: cannot receive from %s: %s (retrying every %.1fs)",
                        self.spec.name,
                        self.trigger.queue_name,
                        _describe(error),
                        maximum,
                    )
                failing = True
                await _wait_event(stop, maximum)
                continue
            if failing:
                log.info("%s: receiving from %s again", self.spec.name, self.trigger.queue_name)
                failing = False
            if messages:
                self.host.touch()
                for message in messages:
                    task = self.host.spawn(self._process(message))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
                delay = MIN_POLLING_INTERVAL
                continue
            await _wait_event(stop, delay)
            delay = min(delay * 2, maximum)

    def _decode(self, text: str) -> bytes:
        if self.options.message_encoding == "none":
            return text.encode("utf-8")
        compact = "".join(text.split())
        return base64.b64decode(compact, validate=True)

    async def _process(self, message: QueueMessage) -> None:
        name = self.spec.name
        count = message.dequeue_count or 0
        maximum = self.options.max_dequeue_count
        text: str = message.content if message.content is not None else ""
        if count > maximum:
            # A host stopped while running it; the real host poisons it before invoking.
            log.warning(
                "%s id=%s: dequeue count %d exceeds maxDequeueCount %d",
                name,
                message.id,
                count,
                maximum,
            )
            await self._to_poison(message, text)
            return
        try:
            body = self._decode(text)
        except (binascii.Error, ValueError) as error:
            log.error(
                "%s id=%s: not valid base64 (host.json messageEncoding is base64): %s",
                name,
                message.id,
                error,
            )
            await self._to_poison(message, text)
            return
        argument = FunctionQueueMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body,
            dequeue_count=count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        started = time.monotonic()
        try:
            outcome = await self.host.invoke(self.spec, argument, str(uuid.uuid4()))
        except asyncio.CancelledError:
            log.warning("%s id=%s: cancelled at shutdown, released to the queue", name, message.id)
            await self._release(message, timedelta(0))
            raise
        elapsed = time.monotonic() - started
        if outcome is None:
            log.info("%s ok %.2fs id=%s dequeue=%d/%d", name, elapsed, message.id, count, maximum)
            await self._delete(message)
            return
        log.error(
            "%s failed %.2fs id=%s (dequeue %d/%d): %s\n%s",
            name,
            elapsed,
            message.id,
            count,
            maximum,
            _describe(outcome),
            _format_traceback(outcome),
        )
        if count >= maximum:
            await self._to_poison(message, text)
        else:
            await self._release(message, self.options.visibility_timeout)
            log.info(
                "%s id=%s: retry after %s (visibilityTimeout)",
                name,
                message.id,
                _span(self.options.visibility_timeout),
            )

    async def _delete(self, message: QueueMessage) -> None:
        try:
            await asyncio.to_thread(self.queue.delete_message, message.id, message.pop_receipt)
        except (ResourceNotFoundError, HttpResponseError) as error:
            log.warning(
                "%s id=%s: could not delete the message: %s",
                self.spec.name,
                message.id,
                _describe(error),
            )

    async def _release(self, message: QueueMessage, after: timedelta) -> None:
        try:
            await asyncio.to_thread(
                self.queue.update_message,
                message.id,
                message.pop_receipt,
                visibility_timeout=int(after.total_seconds()),
            )
        except (ResourceNotFoundError, HttpResponseError) as error:
            log.warning(
                "%s id=%s: could not release the message: %s",
                self.spec.name,
                message.id,
                _describe(error),
            )

    async def _to_poison(self, message: QueueMessage, text: str) -> None:
        if not self._poison_ready:
            await asyncio.to_thread(self._create_if_missing, self.poison)
            self._poison_ready = True
        await asyncio.to_thread(self.poison.send_message, text)
        await self._delete(message)
        log.warning(
            "%s id=%s: moved to %s (dequeue %d/%d)",
            self.spec.name,
            message.id,
            self.poison_name,
            message.dequeue_count or 0,
            self.options.max_dequeue_count,
        )


# --------------------------------------------------------------------------- timers


class _TimerRunner:
    """Fires one timer function on its schedule, never overlapping itself."""

    def __init__(self, host: DevHost, spec: FunctionSpec, trigger: TimerTrigger) -> None:
        self.host = host
        self.spec = spec
        self.trigger = trigger

    async def run(self, stop: asyncio.Event) -> None:
        schedule = self.trigger.schedule
        last: datetime | None = None
        if self.trigger.run_on_startup:
            now = datetime.now(UTC)
            if not await self._fire(stop, past_due=False, last=None, scheduled=now):
                return
            last = now
        due = schedule.next_after(datetime.now(UTC))
        past_due = False
        while not stop.is_set():
            remaining = (due - datetime.now(UTC)).total_seconds()
            if remaining > 0:
                if await _wait_event(stop, remaining):
                    break
                continue
            if not await self._fire(stop, past_due=past_due, last=last, scheduled=due):
                break
            last = due
            finished = datetime.now(UTC)
            due = schedule.next_after(due)
            past_due = due <= finished
            if past_due:
                # Ticks missed while it ran are coalesced into one past-due invocation.
                while (following := schedule.next_after(due)) <= finished:
                    due = following

    async def _fire(
        self, stop: asyncio.Event, *, past_due: bool, last: datetime | None, scheduled: datetime
    ) -> bool:
        """Run one invocation (shielded from the loop's cancellation); False if stopping."""
        status = {
            "Last": (last or datetime.min.replace(tzinfo=UTC)).isoformat(),
            "Next": self.trigger.schedule.next_after(scheduled).isoformat(),
            "LastUpdated": datetime.now(UTC).isoformat(),
        }
        request = TimerRequest(
            past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True}
        )
        task = self.host.spawn(self._invoke(request, past_due))
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        return not stop.is_set()

    async def _invoke(self, request: TimerRequest, past_due: bool) -> None:
        started = time.monotonic()
        error = await self.host.invoke(self.spec, request, str(uuid.uuid4()))
        elapsed = time.monotonic() - started
        kind = "timer, past due" if past_due else "timer"
        if error is None:
            log.info("%s ok %.2fs (%s)", self.spec.name, elapsed, kind)
        else:
            log.error(
                "%s failed %.2fs (%s): %s\n%s",
                self.spec.name,
                elapsed,
                kind,
                _describe(error),
                _format_traceback(error),
            )
