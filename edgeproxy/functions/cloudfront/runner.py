"""Runs CloudFront Functions: one Node.js process (``runtime.mjs``) per edge holds every
function in its own ``node:vm`` context. Messages are ``protocol.py`` frames; the runtime
answers each in order, so calls are pipelined: each waits for its own reply, the next may be
written before.

The process starts on the first call and again after it died (a call in flight then fails
as an execution error). Why a process and not an engine inside the edge: docs/functions.md.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeproxy.errors import FunctionExecutionError, FunctionThrottled, HandlerError
from edgeproxy.functions import protocol
from edgeproxy.functions.cloudfront import event as events
from edgeproxy.functions.cloudfront.origins import OriginHelperError, OriginLookup, chosen_origins
from edgeproxy.functions.cloudfront.stores import CloudFrontFunction
from edgeproxy.functions.events import EventMeta
from edgeproxy.functions.node import node_binary
from edgeproxy.functions.trace import StageTrace
from edgeproxy.messages import EdgeRequest, EdgeResponse, Headers, OriginChain
from edgeproxy.stages import Stage

log = logging.getLogger("edgeproxy.functions")

RUNTIME = Path(__file__).resolve().with_name("runtime.mjs")
# CloudFront's limit is a fraction of a millisecond of its own compute, not published; a
# local machine is slower and busier, so the local limit is wider (docs/functions.md).
COMPUTE_LIMIT_MS = 50
_HEAP_BACKSTOP_MB = 128  # a runaway function ends the process, not the machine


class RuntimeGone(Exception):
    """The runtime process ended before it answered."""


@dataclass
class Outcome:
    """What one call did, as ``aws cloudfront test-function`` reports it."""

    output: Any  # the function's return value (parsed JSON), when it ran to the end
    error: str | None
    kind: str | None  # None | "execution" | "throttled"
    logs: list[str] = field(default_factory=list)
    utilization: int = 0
    origins: list[Any] = field(default_factory=list)


class FunctionRuntime:
    """The edge's one CloudFront Functions runtime process."""

    def __init__(self, compute_limit_ms: float = COMPUTE_LIMIT_MS) -> None:
        self.compute_limit_ms = compute_limit_ms
        self._process: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Lock = asyncio.Lock()
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._reader: asyncio.Task[None] | None = None
        self._loaded: dict[str, str | None] = {}  # function key → its load error, if any
        self._stores: dict[str, int] = {}  # store id → the version the process holds

    async def call(self, function: CloudFrontFunction, event: Any) -> Outcome:
        """Run ``function`` on ``event``; a load error is an execution error of the call."""
        sent = await self._send(function, event)
        replies = [(op, await future) for op, future in sent]
        for op, reply in replies:
            if op == "load" and not reply.get("ok"):
                self._loaded[function.key] = str(reply.get("error"))
        load_error = self._loaded.get(function.key)
        if load_error is not None:
            return Outcome(None, load_error, "execution")
        reply = replies[-1][1]
        if not reply.get("ok") and reply.get("kind") is None:
            return Outcome(None, str(reply.get("error")), "execution")
        output = protocol.decode(reply["output"]) if reply.get("output") is not None else None
        return Outcome(
            output,
            reply.get("error"),
            reply.get("kind"),
            list(reply.get("logs") or []),
            int(reply.get("utilization") or 0),
            list(reply.get("origins") or []),
        )

    async def _send(
        self, function: CloudFrontFunction, event: Any
    ) -> list[tuple[str, asyncio.Future[Any]]]:
        """Write what the process lacks (the function, changed stores), then the call."""
        await self._ensure_started()
        messages: list[Any] = []
        previous = function.key
        if function.refresh() and self._loaded.pop(previous, "gone") != "gone":
            # a saved file is the code of this call: its key changes, the old code goes
            messages.append({"op": "unload", "key": previous})
        for store in function.stores:
            store.refresh()
            if self._stores.get(store.id) != store.version:
                self._stores[store.id] = store.version
                messages.append(
                    {"op": "kvs", "id": store.id, "data": store.data, "meta": store.meta()}
                )
        if function.key not in self._loaded:
            self._loaded[function.key] = None
            messages.append(
                {
                    "op": "load",
                    "key": function.key,
                    "name": function.name,
                    "code": function.code,
                    "runtime": function.runtime,
                    "kvs": function.default_store,
                }
            )
        messages.append({"op": "call", "key": function.key, "event": event})
        return [(m["op"], self._write(m)) for m in messages]

    def _write(self, message: Any) -> asyncio.Future[Any]:
        assert self._process is not None and self._process.stdin is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self._process.stdin.write(protocol.frame(message))
        return future

    async def _ensure_started(self) -> None:
        if self._process is not None and self._process.returncode is None:
            return
        async with self._starting:
            if self._process is not None and self._process.returncode is None:
                return
            self._loaded.clear()
            self._stores.clear()
            setpriv = shutil.which("setpriv")
            argv = (
                *((setpriv, "--pdeathsig", "KILL") if setpriv else ()),
                node_binary(),
                f"--max-old-space-size={_HEAP_BACKSTOP_MB}",
                str(RUNTIME),
                str(self.compute_limit_ms),
            )
            self._process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
            self._reader = asyncio.get_running_loop().create_task(self._read(self._process))

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while True:
                head = await process.stdout.readexactly(protocol.FRAME.size)
                (size,) = protocol.FRAME.unpack(head)
                reply = protocol.decode(await process.stdout.readexactly(size))
                if self._waiting:
                    future = self._waiting.popleft()
                    if not future.done():
                        future.set_result(reply)
        except (asyncio.IncompleteReadError, ValueError, ConnectionError) as exc:
            log.warning("CloudFront Functions runtime ended: %r", exc)
        finally:
            while self._waiting:
                future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(RuntimeGone("the runtime process ended"))
            if process.returncode is None:
                process.kill()

    async def close(self) -> None:
        process, self._process = self._process, None
        if self._reader is not None:  # first: a process ended on purpose is not news
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if process is None:
            return
        if process.returncode is None:
            process.kill()
        await process.wait()


# --- the stages --------------------------------------------------------------------------


def _failure(function: CloudFrontFunction, stage: Stage, outcome: Outcome) -> HandlerError:
    kind = FunctionThrottled if outcome.kind == "throttled" else FunctionExecutionError
    return kind(outcome.error or "failed", stage=stage.value, handler=function.name)


async def _outcome(
    runtime: FunctionRuntime,
    function: CloudFrontFunction,
    stage: Stage,
    event: Any,
    trace: StageTrace | None,
) -> Outcome:
    if trace is not None:
        trace.took_event(event)
    try:
        outcome = await runtime.call(function, event)
    except RuntimeGone as exc:
        raise FunctionExecutionError(str(exc), stage=stage.value, handler=function.name) from None
    for line in outcome.logs:
        log.info("%s %s", function.name, line)
    if trace is not None:
        trace.took_result(outcome.output)
        trace.took_logs(outcome.logs)
        trace.report = {"compute_utilization": outcome.utilization}
    if outcome.kind is not None:
        raise _failure(function, stage, outcome)
    return outcome


@dataclass(frozen=True)
class Origins:
    """What the origin helpers of a viewer-request call start from: the origins the miss
    would go to, and the distribution's origins by ID."""

    current: OriginChain
    lookup: OriginLookup


async def run_viewer_request(
    runtime: FunctionRuntime,
    function: CloudFrontFunction,
    request: EdgeRequest,
    meta: EventMeta,
    request_id: str,
    shown: Headers | None = None,
    origins: Origins | None = None,
    trace: StageTrace | None = None,
) -> tuple[EdgeRequest | EdgeResponse, OriginChain | None]:
    """The request to go on with, or the response the function generated; and the origins
    the function chose with the origin helpers (None when it called none). ``shown``: the
    CloudFront-* headers the function sees; the edge adds them itself afterwards, so they
    are not taken back from its result."""
    stage = Stage.VIEWER_REQUEST
    event = events.function_event(stage, meta, request_id, request, shown=shown or [])
    outcome = await _outcome(runtime, function, stage, event, trace)
    result = outcome.output
    try:
        if not isinstance(result, dict):
            raise events.FunctionResultError("the function must return the request or a response")
        if events.is_generated(result):
            return events.generated_response(result), None
        request = events.result_request(result, request, event["request"], shown or [])
        if not outcome.origins or origins is None:
            return request, None
        return request, chosen_origins(outcome.origins, origins.current, origins.lookup)
    except (events.FunctionResultError, OriginHelperError) as exc:
        raise FunctionExecutionError(str(exc), stage=stage.value, handler=function.name) from None


async def run_viewer_response(
    runtime: FunctionRuntime,
    function: CloudFrontFunction,
    request: EdgeRequest,
    response: EdgeResponse,
    meta: EventMeta,
    request_id: str,
    trace: StageTrace | None = None,
) -> EdgeResponse:
    stage = Stage.VIEWER_RESPONSE
    event = events.function_event(stage, meta, request_id, request, response)
    result = (await _outcome(runtime, function, stage, event, trace)).output
    try:
        if not isinstance(result, dict):
            raise events.FunctionResultError("the function must return the response")
        return events.result_response(result, response, event["response"])
    except events.FunctionResultError as exc:
        raise FunctionExecutionError(str(exc), stage=stage.value, handler=function.name) from None
