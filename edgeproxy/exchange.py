"""One exchange (a viewer request's trip through the edge), the edge's identity, and the
calls into the stages that record which ran.

An exchange keeps what happened for the admin API and the timeline UI (docs/admin.md): the
viewer's request and response, each stage call's event, result and REPORT figures
(``functions/trace.py``), the cache decision and each origin request with its answer. What
it keeps is bounded (bodies cut at ``BODY_LIMIT``, events at ``trace.STRING_LIMIT``), and the
``History`` of exchanges by count and by bytes. The quick hit path keeps references to
header lists that are never changed after the answer (``Seen``), nothing is rendered until
the admin API asks (``Exchange.detail``)."""

from __future__ import annotations

import base64
import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from edgeproxy.cache.key import CacheKey
from edgeproxy.cache.store import CachedObject
from edgeproxy.cache.ttl import TtlPolicy
from edgeproxy.errors import EdgeError
from edgeproxy.functions.cloudfront.runner import Origins, run_viewer_request, run_viewer_response
from edgeproxy.functions.cloudfront.stores import CloudFrontFunction
from edgeproxy.functions.events import EventMeta
from edgeproxy.functions.hooks import HookRunner
from edgeproxy.functions.trace import StageTrace
from edgeproxy.messages import (
    EdgeRequest,
    EdgeResponse,
    Headers,
    OriginChain,
    header_value,
    without_headers,
)
from edgeproxy.routes import Route
from edgeproxy.stages import Source, Stage

BODY_LIMIT = 16 * 1024  # bytes of a body an exchange keeps (viewer request, origin, viewer)
HEADER_WEIGHT = 80  # bytes a kept header is counted as (``Seen.weight``)
HISTORY_COUNT = 1000  # exchanges the history keeps ...
HISTORY_BYTES = 32 * 1024 * 1024  # ... and at most this many bytes of their details

# Headers the edge owns toward the viewer (reference 6.3): whatever an origin or a handler
# sent under these names is dropped where its answer enters the edge (a generated response
# in ``StageCalls.request``, an origin's answer in misses.py), so hits need no filtering.
# (Handler validation refuses them in a generated response already: X-Cache and X-Amz-Cf-*
# are disallowed, Via read-only; the drop keeps what is stored clean whatever it lets by.)
EDGE_OWNED_HEADERS = frozenset({"via", "x-cache", "x-amz-cf-pop", "x-amz-cf-id"})


def new_request_id() -> str:
    """40 random bytes, URL-safe base64: 56 characters ending in ``==``, like CloudFront's.
    An identifier, not a secret: the fast non-cryptographic generator is enough."""
    return base64.urlsafe_b64encode(random.randbytes(40)).decode("ascii")


@dataclass(slots=True)
class Seen:
    """A request or a response at one point of the exchange. ``headers`` is the list the
    message held then (a header list is replaced, never changed, once the answer is made),
    ``body`` its first ``BODY_LIMIT`` bytes, ``size`` its whole length (None: streamed, not
    known when recorded)."""

    headers: Headers
    body: bytes = b""
    size: int | None = 0
    method: str = ""  # a request's
    uri: str = ""
    query: str = ""
    status: int = 0  # a response's

    @classmethod
    def request(cls, request: EdgeRequest, headers: Headers | None = None) -> Seen:
        size = request.body_size
        return cls(
            request.headers if headers is None else headers,
            request.body[:BODY_LIMIT],
            size,
            request.method,
            request.uri,
            request.querystring,
        )

    @classmethod
    def response(cls, response: EdgeResponse, headers: Headers | None = None) -> Seen:
        streamed = response.stream is not None
        return cls(
            response.headers if headers is None else headers,
            response.body[:BODY_LIMIT],
            None if streamed else len(response.body),
            status=response.status,
        )

    @property
    def weight(self) -> int:
        """Bytes it holds, roughly (the history's bound): the body exactly, a header at
        ``HEADER_WEIGHT`` (summing each one's length would cost the quick hit path a sixth
        of its time; a viewer's head is bounded by ``limits.MAX_REQUEST_HEAD`` anyway)."""
        return len(self.body) + HEADER_WEIGHT * len(self.headers) + 64

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = (
            {"status": self.status}
            if self.status
            else {"method": self.method, "uri": self.uri, "query": self.query}
        )
        return {
            **shown,
            "headers": [[k, v] for k, v in self.headers],
            "body_size": self.size,
            "body_kept": len(self.body),
            "body_truncated": self.size is None or self.size > len(self.body),
        }


@dataclass(slots=True)
class StageCall:
    """One function that ran: what it was given and what it gave back (as the edge holds
    them, and as its event and result), how long it took, and its error if it failed."""

    stage: str
    function: str
    kind: str  # "lambda@edge" | "cloudfront-function"
    start_ms: float
    before: Seen
    trace: StageTrace
    after: Seen | None = None
    duration_ms: float = 0.0
    error: str = ""
    label: str = ""  # the function's name in metrics (never a machine path)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "function": self.function,
            "kind": self.kind,
            "start_ms": round(self.start_ms, 3),
            "duration_ms": round(self.duration_ms, 3),
            "input": self.before.as_dict(),
            "output": None if self.after is None else self.after.as_dict(),
            "generated_response": bool(self.after and self.after.status and not self.before.status),
            "diff": None if self.after is None else diff(self.before, self.after),
            "event": self.trace.event,
            "result": self.trace.result,
            "report": self.trace.report,
            "logs": self.trace.logs,
            "error": self.error,
        }


@dataclass(slots=True)
class OriginCall:
    """One request to an origin (one per failover attempt) and its answer."""

    target: str
    request: Seen
    start_ms: float
    response: Seen | None = None
    duration_ms: float = 0.0
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "start_ms": round(self.start_ms, 3),
            "duration_ms": round(self.duration_ms, 3),
            "request": self.request.as_dict(),
            "response": None if self.response is None else self.response.as_dict(),
            "error": self.error,
        }


@dataclass(slots=True)
class CacheDecision:
    """What the cache said: the key, hit / stale / miss, and the stored object's TTL with
    the inputs it was computed from (the TTL rules are cache/ttl.py's, not repeated here)."""

    key: CacheKey
    result: str  # "hit" | "stale-while-revalidate" | "miss" | "refresh"
    stored: CachedObject | None = None  # the object served or stored, None: not stored
    policy: TtlPolicy | None = None
    now: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        stored, found = self.stored, None
        if stored is not None:
            found = {
                "status": stored.status,
                "ttl_s": stored.ttl,
                "age_s": round(max(0.0, self.now - stored.stored_at), 3),
                "stale_while_revalidate_s": stored.stale_while_revalidate,
                "stale_if_error_s": stored.stale_if_error,
            }
        return {
            "key": self.key._asdict(),
            "result": self.result,
            "stored": found,
            "ttl_why": self._why(),
        }

    def _why(self) -> dict[str, Any]:
        """The TTL's inputs: the origin's Cache-Control and Expires, the policy's bounds."""
        headers = self.stored.headers if self.stored is not None else []
        policy = self.policy
        return {
            "cache_control": header_value(headers, "cache-control"),
            "expires": header_value(headers, "expires"),
            "min_ttl": None if policy is None else policy.min_ttl,
            "default_ttl": None if policy is None else policy.default_ttl,
            "max_ttl": None if policy is None else policy.max_ttl,
        }


@dataclass(slots=True)
class Exchange:
    """One viewer request's trip through the edge."""

    request_id: str
    method: str
    uri: str
    started: float
    stages: list[str] = field(default_factory=list)
    source: Source = Source.EDGE
    status: int = 0
    x_cache: str = ""
    behavior: int = -1
    origin_fetches: int = 0
    error: str = ""
    route: Route | None = None  # the behavior that served it, once selected
    viewer: EdgeRequest | None = None  # the request after viewer-request, until recorded
    # The origin ignored the edge's Range: this viewer gets the whole object (DG RangeGETs).
    whole_object: bool = False
    # The origins a CloudFront Function's origin helpers chose at viewer-request; None: the
    # behavior's own (``Route.origins``).
    origins: OriginChain | None = None
    # What the metrics count once the exchange is recorded (metrics.py): each stage call
    # (stage, function name, seconds), each origin attempt (seconds, error class name or
    # ""), and the class of the error the viewer was answered with.
    timings: list[tuple[str, str, float]] = field(default_factory=list)
    origin_attempts: list[tuple[float, str]] = field(default_factory=list)
    error_type: type[EdgeError] | None = None
    # What happened, for the admin API's detail (module docstring).
    t0: float = field(default_factory=time.perf_counter)
    duration_ms: float = 0.0
    # The viewer's request and response as plain values (``answered``; a tuple: this is
    # the quick hit path), made ``Seen`` when asked (``request``, ``response``).
    answer: tuple[Any, ...] | None = None
    # Tuples, () until something is added: no allocation on the quick hit path.
    calls: tuple[StageCall, ...] = ()
    origin_calls: tuple[OriginCall, ...] = ()
    cache: CacheDecision | None = None
    size: int = 0  # bytes of the above, roughly (``History``)

    def record(self) -> dict[str, object]:
        """A plain dict for the admin API and logs: the list's summary of the exchange."""
        return {
            "request_id": self.request_id,
            "method": self.method,
            "uri": self.uri,
            "status": self.status,
            "x_cache": self.x_cache,
            "stages": list(self.stages),
            "behavior": self.behavior,
            "origin_fetches": self.origin_fetches,
            "error": self.error,
            "source": self.source.value,  # which tier answered: cache, regional, origin...
            "id": self.request_id,
            "started": self.started,
            "query": self.answer[2] if self.answer is not None else "",
            "path_pattern": self.route.behavior.path_pattern if self.route is not None else "",
            "duration_ms": round(self.duration_ms, 3),
        }

    def since(self) -> float:
        """Milliseconds since the exchange started."""
        return (time.perf_counter() - self.t0) * 1000

    def answered(
        self, request: EdgeRequest, response: EdgeResponse, headers: Headers | None = None
    ) -> None:
        """The exchange is over: its duration, the viewer's request (``headers``: as they
        arrived, when the flow replaced the list since) and response kept."""
        self.duration_ms = self.since()
        kept, given = response.body[:BODY_LIMIT], request.body[:BODY_LIMIT]
        sent = request.headers if headers is None else headers
        size = None if response.stream is not None else len(response.body)
        self.answer = (
            request.method, request.uri, request.querystring, sent, given, request.body_size,
            response.status, response.headers, kept, size,
        )  # fmt: skip
        weight = HEADER_WEIGHT * (len(sent) + len(response.headers)) + len(given) + len(kept)
        self.size += weight + 512

    @property
    def request(self) -> Seen | None:
        """The viewer's request as it arrived."""
        found = self.answer
        if found is None:
            return None
        method, uri, query, headers, body, size = found[:6]
        return Seen(headers, body, size, method, uri, query)

    @property
    def response(self) -> Seen | None:
        """The response as the viewer got it."""
        found = self.answer
        return None if found is None else Seen(found[7], found[8], found[9], status=found[6])

    def looked_up(
        self, key: CacheKey, result: str, stored: CachedObject | None, route: Route, now: float
    ) -> None:
        """The cache's decision for this exchange (the quick hit path and the full flow)."""
        self.cache = CacheDecision(key, result, stored, route.ttl_policy, now)

    def to_origin(self, request: EdgeRequest, wire: Headers) -> OriginCall:
        """An origin request about to be sent (``wire``: its headers as sent)."""
        target = request.origin
        where = "" if target is None else f"{target.protocol}://{target.domain_name}:{target.port}"
        call = OriginCall(where, Seen.request(request, wire), self.since())
        self.origin_calls += (call,)
        self.size += call.request.weight + 128
        return call

    def from_origin(self, call: OriginCall, response: EdgeResponse | None, error: str = "") -> None:
        call.duration_ms = self.since() - call.start_ms
        call.error = error
        if response is not None:
            call.response = Seen.response(response, list(response.headers))
            self.size += call.response.weight

    def detail(self) -> dict[str, Any]:
        """Everything the exchange kept, for ``GET /exchanges/<id>``."""
        calls = [call.as_dict() for call in self.calls]
        origins = [call.as_dict() for call in self.origin_calls]
        return {
            **self.record(),
            "source": self.source.value,
            "request": None if self.request is None else self.request.as_dict(),
            "stage_calls": calls,
            "cache": None if self.cache is None else self.cache.as_dict(),
            "origin": origins,
            "response": None if self.response is None else self.response.as_dict(),
            "timings": self._timings(),
            "body_limit": BODY_LIMIT,
        }

    def _timings(self) -> list[dict[str, Any]]:
        steps = [(f"{c.stage} {c.function}", c.start_ms, c.duration_ms) for c in self.calls]
        steps += [(f"origin {c.target}", c.start_ms, c.duration_ms) for c in self.origin_calls]
        steps.sort(key=lambda step: step[1])
        return [
            {"step": name, "start_ms": round(start, 3), "duration_ms": round(took, 3)}
            for name, start, took in [*steps, ("total", 0.0, self.duration_ms)]
        ]

    def body(self, which: str) -> Seen | None:
        """The kept body of ``request``, ``response`` or ``origin-<n>`` (the n-th origin
        answer, from 0); None when there is no such message."""
        if which == "request":
            return self.request
        if which == "response":
            return self.response
        name, _, number = which.partition("-")
        if name == "origin" and number.isascii() and number.isdigit():
            index = int(number)
            if index < len(self.origin_calls):
                return self.origin_calls[index].response
        return None


def diff(before: Seen, after: Seen) -> dict[str, Any]:
    """What a function changed: headers added, removed and changed (by lower-case name, all
    values of a name compared), and the method, uri, query string or status it changed."""
    old, new = _by_name(before.headers), _by_name(after.headers)
    changes: dict[str, Any] = {
        "headers_added": [[name, *new[name]] for name in new if name not in old],
        "headers_removed": [[name, *old[name]] for name in old if name not in new],
        "headers_changed": [
            {"name": name, "before": old[name], "after": new[name]}
            for name in new
            if name in old and old[name] != new[name]
        ],
    }
    for part in ("method", "uri", "query", "status"):
        was, now = getattr(before, part), getattr(after, part)
        if was != now and (was or now) and not (part == "status" and not was):
            changes[part] = [was, now]
    if after.status and not before.status:
        changes["generated"] = after.status
    return changes


def _by_name(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in headers:
        found.setdefault(name.lower(), []).append(value)
    return found


class History(deque[Exchange]):
    """The most recent exchanges, oldest first, bounded by count and by bytes; ``listeners``
    hear of each one as it is added (the admin API's live stream)."""

    def __init__(self, count: int = HISTORY_COUNT, size: int = HISTORY_BYTES) -> None:
        super().__init__()
        self.max_count = count
        self.budget = size
        self.held = 0
        self.listeners: list[Callable[[Exchange], None]] = []

    def add(self, ex: Exchange) -> None:
        self.append(ex)
        self.held += ex.size
        while len(self) > 1 and (len(self) > self.max_count or self.held > self.budget):
            self.held -= self.popleft().size
        for listener in self.listeners:
            listener(ex)

    def find(self, request_id: str) -> Exchange | None:
        for ex in reversed(self):
            if ex.request_id == request_id:
                return ex
        return None


@dataclass(frozen=True, slots=True)
class EdgeIdentity:
    """How this edge names itself in headers and events."""

    pop: str
    via: str  # "1.1 <32 hex>.cloudfront.net (CloudFront)"
    meta: EventMeta
    https_port: int | None = None

    @classmethod
    def create(cls, pop: str, meta: EventMeta, https_port: int | None = None) -> EdgeIdentity:
        via = f"1.1 {os.urandom(16).hex()}.cloudfront.net (CloudFront)"
        return cls(pop, via, meta, https_port)


class StageCalls:
    """Runs a route's hook for a stage, if it has one, and records that it ran (and what it
    saw and did: ``StageCall``). No event is built for a stage without a handler."""

    def __init__(self, hooks: HookRunner, identity: EdgeIdentity) -> None:
        self.hooks = hooks
        self.identity = identity

    async def request(
        self,
        ex: Exchange,
        route: Route,
        stage: Stage,
        request: EdgeRequest,
        shown: Headers | None = None,
    ) -> EdgeRequest | EdgeResponse:
        """The request the stage passes on, or the response it generated. ``shown``: headers
        a CloudFront Function sees besides the request's (the CloudFront-* headers)."""
        function = route.functions.get(stage)
        hook = route.hooks.get(stage)
        if function is None and hook is None:
            return request
        meta, trace = self.identity.meta, StageTrace()
        if function is not None:
            call = _started(
                ex, stage, function.name, "cloudfront-function", _copied(request), trace
            )
            origins = Origins(route.origins[request.scheme], route.origin_by_id(request.scheme))
            running = self._function_request(ex, function, request, shown, origins, trace)
        else:
            assert hook is not None
            call = _started(ex, stage, hook.handler.name, "lambda@edge", _copied(request), trace)
            call.label = hook.function_name
            running = self.hooks.run_request(hook, request, meta, ex.request_id, trace)
        with _timed(ex, call):
            result = await running
        if isinstance(result, EdgeResponse):
            result.headers = without_headers(result.headers, EDGE_OWNED_HEADERS)
            call.after = Seen.response(result)
        else:
            call.after = _copied(result)
        ex.size += call.after.weight
        return result

    async def response(
        self,
        ex: Exchange,
        route: Route,
        stage: Stage,
        request: EdgeRequest,
        response: EdgeResponse,
    ) -> EdgeResponse:
        function = route.functions.get(stage)
        hook = route.hooks.get(stage)
        if function is None and hook is None:
            return response
        meta, trace = self.identity.meta, StageTrace()
        # The list as it is now: the edge adds headers to a response after this stage.
        before = Seen.response(response, list(response.headers))
        if function is not None:
            call = _started(ex, stage, function.name, "cloudfront-function", before, trace)
            running = run_viewer_response(
                self.hooks.functions, function, request, response, meta, ex.request_id, trace
            )
        else:
            assert hook is not None
            call = _started(ex, stage, hook.handler.name, "lambda@edge", before, trace)
            call.label = hook.function_name
            running = self.hooks.run_response(hook, request, response, meta, ex.request_id, trace)
        with _timed(ex, call):
            result = await running
        call.after = Seen.response(result, list(result.headers))
        ex.size += call.after.weight
        return result

    async def _function_request(
        self,
        ex: Exchange,
        function: CloudFrontFunction,
        request: EdgeRequest,
        shown: Headers | None,
        origins: Origins,
        trace: StageTrace,
    ) -> EdgeRequest | EdgeResponse:
        """A CloudFront Function at viewer-request; the origins its helpers chose go on the
        exchange (``Misses.fetch`` reads them)."""
        result, ex.origins = await run_viewer_request(
            self.hooks.functions,
            function,
            request,
            self.identity.meta,
            ex.request_id,
            shown or [],
            origins,
            trace,
        )
        return result

    @staticmethod
    def generated_at_viewer_request(route: Route) -> Source:
        """Where a response viewer-request generated came from: a CloudFront Function's
        reads ``FunctionGeneratedResponse``, a Lambda@Edge function's
        ``LambdaGeneratedResponse`` (stages.py ``X_CACHE``)."""
        if Stage.VIEWER_REQUEST in route.functions:
            return Source.FUNCTION_GENERATED
        return Source.VIEWER_REQUEST_GENERATED


def _copied(request: EdgeRequest) -> Seen:
    return Seen.request(request, list(request.headers))


def _started(
    ex: Exchange, stage: Stage, function: str, kind: str, before: Seen, trace: StageTrace
) -> StageCall:
    ex.stages.append(stage.value)
    call = StageCall(stage.value, function, kind, ex.since(), before, trace)
    ex.calls += (call,)
    ex.size += before.weight + 256
    return call


class _timed:
    """Times a stage call; an error it raises is kept on the call, then goes on."""

    __slots__ = ("ex", "call")

    def __init__(self, ex: Exchange, call: StageCall) -> None:
        self.ex, self.call = ex, call

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        call = self.call
        call.duration_ms = self.ex.since() - call.start_ms
        self.ex.timings.append((call.stage, call.label or call.function, call.duration_ms / 1e3))
        if error is not None:
            call.error = str(error) if isinstance(error, EdgeError) else repr(error)
        self.ex.size += call.trace.size
