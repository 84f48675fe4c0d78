"""One exchange (a viewer request's trip through the edge), the edge's identity, and the
calls into the stages that record which ran."""

from __future__ import annotations

import base64
import os
import random
import time
from dataclasses import dataclass, field

from edgeproxy.errors import EdgeError
from edgeproxy.functions.cloudfront.runner import Origins, run_viewer_request, run_viewer_response
from edgeproxy.functions.events import EventMeta
from edgeproxy.functions.hooks import HookRunner
from edgeproxy.messages import EdgeRequest, EdgeResponse, Headers, OriginChain, without_headers
from edgeproxy.routes import Route
from edgeproxy.stages import Source, Stage

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

    def record(self) -> dict[str, object]:
        """A plain dict for the admin API and logs."""
        return {
            "request_id": self.request_id,
            "method": self.method,
            "uri": self.uri,
            "status": self.status,
            "x_cache": self.x_cache,
            "source": self.source.value,  # which tier answered: cache, regional, origin...
            "stages": list(self.stages),
            "behavior": self.behavior,
            "origin_fetches": self.origin_fetches,
            "error": self.error,
        }


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
    """Runs a route's hook for a stage, if it has one, and records that it ran. No event is
    built for a stage without a handler."""

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
        started = time.perf_counter()
        if function is not None:
            ex.stages.append(stage.value)
            meta = self.identity.meta
            origins = Origins(route.origins[request.scheme], route.origin_by_id(request.scheme))
            try:
                result, ex.origins = await run_viewer_request(
                    self.hooks.functions,
                    function,
                    request,
                    meta,
                    ex.request_id,
                    shown or [],
                    origins,
                )
            finally:
                _timed(ex, stage, function.name, started)
        elif hook is not None:
            ex.stages.append(stage.value)
            try:
                result = await self.hooks.run_request(
                    hook, request, self.identity.meta, ex.request_id
                )
            finally:
                _timed(ex, stage, hook.function_name, started)
        else:
            return request
        if isinstance(result, EdgeResponse):
            result.headers = without_headers(result.headers, EDGE_OWNED_HEADERS)
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
        started = time.perf_counter()
        if function is not None:
            ex.stages.append(stage.value)
            try:
                return await run_viewer_response(
                    self.hooks.functions,
                    function,
                    request,
                    response,
                    self.identity.meta,
                    ex.request_id,
                )
            finally:
                _timed(ex, stage, function.name, started)
        hook = route.hooks.get(stage)
        if hook is None:
            return response
        ex.stages.append(stage.value)
        try:
            return await self.hooks.run_response(
                hook, request, response, self.identity.meta, ex.request_id
            )
        finally:
            _timed(ex, stage, hook.function_name, started)

    @staticmethod
    def generated_at_viewer_request(route: Route) -> Source:
        """Where a response viewer-request generated came from: a CloudFront Function's
        reads ``FunctionGeneratedResponse``, a Lambda@Edge function's
        ``LambdaGeneratedResponse`` (stages.py ``X_CACHE``)."""
        if Stage.VIEWER_REQUEST in route.functions:
            return Source.FUNCTION_GENERATED
        return Source.VIEWER_REQUEST_GENERATED


def _timed(ex: Exchange, stage: Stage, name: str, started: float) -> None:
    ex.timings.append((stage.value, name, time.perf_counter() - started))
