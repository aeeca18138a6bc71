"""Sending one Graph call through msgraph-sdk's request adapter (auth, middleware), with
a few short retries, the process's throttling gate and the app's shared pacing (the
identity budget is the app's, however many instances: guarantee 8); answers are read as
raw JSON, which avoids loading ~1,200 typed model modules on a cold start
(docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_request_adapter import GraphRequestAdapter

from shared.adapters.graph.gate import ThrottleGate
from shared.adapters.graph.translate import parse_json, record, translate
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.service.ports import Pacer

log = logging.getLogger("user_onboarding.graph")
_ERRORS: Final = {"XXX": ODataError}
Build = Callable[[], RequestInformation]


class GraphSender:
    """`send` a call, waiting for the gate, retrying briefly; raise GraphError when Graph
    says no or asks to wait longer than `max_inline_wait` (the pending queue does the long
    waiting).

    With a `pacer`, every call on the identity budget also waits for its turn at Graph,
    shared by all the app's instances (a write for one of the app's write turns, any call
    for a pause another instance was told about), and each 429 is shared with them. The
    gate stays the fast path: it holds this process at once, without storage. A call then
    waits for Graph's `Retry-After` as long as for its turn, up to the pacer's horizon."""

    def __init__(
        self,
        adapter: GraphRequestAdapter,
        *,
        retries: int = 2,
        max_inline_wait: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        gate: ThrottleGate | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.adapter = adapter
        self._retries = retries
        self._max_inline_wait = max_inline_wait
        self._sleep = sleep
        self.gate = gate or ThrottleGate()
        self.pacer = pacer

    def url(self, path: str) -> str:
        return str(self.adapter.base_url) + path

    def get(self, path: str) -> Build:
        def build() -> RequestInformation:
            info = RequestInformation(Method.GET)
            info.url = self.url(path)
            return info

        return build

    def post(self, path: str, payload: Any = None) -> Build:
        """A POST with a JSON body (or none): one way to build one."""

        def build() -> RequestInformation:
            info = RequestInformation(Method.POST)
            info.url = self.url(path)
            if payload is not None:
                info.headers = HeadersCollection()
                info.set_stream_content(json.dumps(payload).encode(), "application/json")
            return info

        return build

    async def send(
        self,
        call: GraphCall,
        build: Build,
        *,
        expect_body: bool = True,
        also_retry: Sequence[GraphErrorKind] = (),
    ) -> Any:
        """Retried inline: throttling and outages; for writes, a 404 (the user a lookup has
        just returned is not on the replica yet); and `also_retry`.

        Hand-written rather than a retry library (stamina, tenacity; msgraph's own retry
        handler is off): the wait depends on the process-wide throttling gate, which can
        refuse to send at all; a wait longer than `max_inline_wait` must end the attempt
        (not sleep), so the invocation stays short and the queue does the waiting; and
        which answers are retryable depends on the call."""
        retryable = _retryable(call, also_retry)
        attempt = 0
        while True:
            await self._wait_for_gate(call)
            try:
                return await self._once(build, expect_body, call)
            except (APIError, httpx.HTTPError) as exc:
                error = translate(exc, call)
            if error.kind == GraphErrorKind.THROTTLED and _paced(call):
                self._throttled(call, error)
            record(error)
            wait = error.retry_after if error.retry_after is not None else 0.5 * 2**attempt
            if error.kind not in retryable or attempt >= self._retries:
                raise error
            if wait > self._longest_wait(error.kind):
                raise error
            attempt += 1
            log.info(
                "Graph %s on %s (%s %s); retrying in %.1fs (attempt %d)",
                error.kind,
                error.call,
                error.status or "no answer",
                error.code,
                wait,
                attempt,
            )
            if error.kind != GraphErrorKind.THROTTLED:  # the gate already makes 429s wait
                await self._sleep(wait)

    async def _wait_for_gate(self, call: GraphCall) -> None:
        if not _paced(call):
            return
        closed = self.gate.closed_for(write=call.is_write)
        if closed > self._longest_wait(GraphErrorKind.THROTTLED):
            raise self.gate.refusal(call, closed)
        if closed > 0:
            await self._sleep(closed)
        if self.pacer is not None and call.directory_budget:
            await self.pacer.wait_turn(call)

    def _longest_wait(self, kind: GraphErrorKind) -> float:
        """How long a call may wait in its invocation before its request is parked: for
        throttling, as long as for its turn at Graph when the app paces itself."""
        if kind == GraphErrorKind.THROTTLED and self.pacer is not None:
            return max(self._max_inline_wait, self.pacer.horizon)
        return self._max_inline_wait

    def _throttled(self, call: GraphCall, error: GraphError) -> None:
        self.gate.close(error, write=call.is_write)
        if self.pacer is not None and call.directory_budget:
            self.pacer.throttled(call, error)

    async def _once(self, build: Build, expect_body: bool, call: GraphCall) -> Any:
        info = build()
        info.headers.try_add("Accept", "application/json")
        if not expect_body:
            await self.adapter.send_no_response_content_async(info, _ERRORS)
            return None
        raw = await self.adapter.send_primitive_async(info, "bytes", _ERRORS)
        return parse_json(raw, call)

    def note_throttling(self, error: GraphError) -> None:
        """Each `$batch` item is throttled on its own: an item's 429 closes the gate too."""
        record(error)
        if error.kind == GraphErrorKind.THROTTLED:
            self._throttled(error.call, error)


def _paced(call: GraphCall) -> bool:
    """Calls whose 429s pause the sender's gate: the identity budget's, and (in a sender of
    their own, with a gate of its own) Teams'."""
    return call.directory_budget or call.teams_budget


def _retryable(call: GraphCall, also_retry: Sequence[GraphErrorKind]) -> set[GraphErrorKind]:
    if not _paced(call):  # its own limits; the caller decides about retries
        return set()
    if call == GraphCall.ASSIGN_NUMBER:
        # An order: only a 429 proves it was not placed. A timeout or a 5xx may have placed
        # it, and sending it again would be a second order (the decisions read the number
        # before ordering again).
        return {GraphErrorKind.THROTTLED, *also_retry}
    retryable = {GraphErrorKind.THROTTLED, GraphErrorKind.UNAVAILABLE, *also_retry}
    if call.is_write:
        retryable.add(GraphErrorKind.NOT_FOUND)
    return retryable
