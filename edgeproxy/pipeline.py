"""The one flow of a request through the edge (DESIGN section 1), free of aiohttp types.

``Edge.handle`` takes the viewer's ``EdgeRequest`` and returns the ``EdgeResponse`` to send,
with every CloudFront header set. Each step is one short method; where a step leads is read
from the tables in ``stages.py``.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .cache import CachedObject, CacheStore, Collapser
from .cachekey import CacheKey, cache_key
from .errorpage import render_error_page
from .errors import (
    EdgeError,
    HandlerError,
    InternalError,
    MethodNotAllowed,
    ProtocolNotAllowed,
    RequestTooLarge,
)
from .events import EventMeta
from .forwarding import origin_request, wire_headers
from .hooks import HookRunner
from .limits import MAX_URL_LENGTH
from .messages import EdgeRequest, EdgeResponse, Headers, header_value, without_headers
from .origin import OriginClient
from .routes import Route, Routes
from .stages import Source, Stage, viewer_response_runs, x_cache_for
from .ttl import freshness
from .viewer import (
    GeoLocator,
    ViewerFacts,
    https_redirect,
    split_viewer_cf_headers,
    viewer_cf_headers,
)

log = logging.getLogger("edgeproxy.access")
error_log = logging.getLogger("edgeproxy.error")

# Headers the edge owns on the way to the viewer: whatever came before is replaced.
_EDGE_RESPONSE_HEADERS = frozenset({"via", "x-cache", "x-amz-cf-pop", "x-amz-cf-id"})


def new_request_id() -> str:
    """40 random bytes, URL-safe base64: 56 characters ending in ``==``, like CloudFront's."""
    return base64.urlsafe_b64encode(os.urandom(40)).decode("ascii")


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

    def record(self) -> dict[str, object]:
        """A plain dict for the admin API and logs."""
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
        return cls(pop, f"1.1 {os.urandom(16).hex()}.cloudfront.net (CloudFront)", meta, https_port)


class Edge:
    """The edge location: routes, cache, hooks and origin client wired into one flow."""

    def __init__(
        self,
        routes: Routes,
        cache: CacheStore,
        hooks: HookRunner,
        origin: OriginClient,
        identity: EdgeIdentity,
        geo: GeoLocator,
        *,
        trust_viewer_headers: bool = False,
        default_root_object: str = "",
        clock: Callable[[], float] = time.time,
        history: int = 1000,
    ) -> None:
        self.routes = routes
        self.cache = cache
        self.hooks = hooks
        self.origin = origin
        self.identity = identity
        self.geo = geo
        self.trust_viewer_headers = trust_viewer_headers
        self.default_root_object = default_root_object
        self.clock = clock
        self.collapser: Collapser[tuple[EdgeResponse, Source]] = Collapser()
        self.recent: deque[Exchange] = deque(maxlen=history)
        self.counters: Counter[str] = Counter()

    async def handle(self, request: EdgeRequest) -> EdgeResponse:
        ex = Exchange(new_request_id(), request.method, request.uri, self.clock())
        try:
            response = await self._serve(ex, request)
        except EdgeError as err:
            response = self._error_response(ex, err)
        except Exception as exc:  # a defect of ours: the viewer still gets CloudFront's 502
            error_log.exception("%s internal error", ex.request_id)
            response = self._error_response(ex, InternalError(repr(exc)))
        self._finalise(ex, response)
        self.recent.append(ex)
        self.counters[ex.x_cache] += 1
        log.info("%s %s %s %s %s", ex.method, ex.uri, ex.status, ex.x_cache, ex.request_id)
        return response

    # -- steps ---------------------------------------------------------------------------

    async def _serve(self, ex: Exchange, request: EdgeRequest) -> EdgeResponse:
        _check_limits(request)
        route = self.routes.select(request.uri)
        ex.behavior = route.index
        refusal = self._viewer_policy(ex, route, request)
        if refusal is not None:
            return refusal
        request.headers, trusted = split_viewer_cf_headers(
            request.headers, self.trust_viewer_headers
        )
        result = await self._run_request_stage(ex, route, Stage.VIEWER_REQUEST, request)
        if isinstance(result, EdgeResponse):
            ex.source = Source.VIEWER_REQUEST_GENERATED
            return result
        viewer = result
        facts = ViewerFacts(viewer, self.geo.locate(viewer.client_ip), trusted)
        cf_headers = viewer_cf_headers(route.cf_header_names, facts)
        response = await self._cached_or_fetched(ex, route, viewer, cf_headers)
        return await self._viewer_response(ex, route, viewer, response)

    def _viewer_policy(
        self, ex: Exchange, route: Route, request: EdgeRequest
    ) -> EdgeResponse | None:
        """Protocol policy, then allowed methods (reference 1, steps 3-4)."""
        if request.scheme == "http" and route.viewer_protocol_policy == "redirect-to-https":
            ex.source = Source.REDIRECT
            return https_redirect(request, self.identity.https_port)
        if request.scheme == "http" and route.viewer_protocol_policy == "https-only":
            raise ProtocolNotAllowed("this behavior is HTTPS only")
        if request.method not in route.allowed_methods:
            raise MethodNotAllowed(f"{request.method} not in allowed_methods")
        return None

    async def _cached_or_fetched(
        self, ex: Exchange, route: Route, viewer: EdgeRequest, cf_headers: Headers
    ) -> EdgeResponse:
        keyed = replace(viewer, headers=[*viewer.headers, *cf_headers])
        if viewer.method not in route.cached_methods:
            response, ex.source = await self._fetch(ex, route, keyed, None)
            return response
        key = cache_key(route.key_policy, keyed, header_value(viewer.headers, "host") or "")
        stored = self.cache.get(key)
        now = self.clock()
        if stored is not None and stored.is_fresh(now):
            ex.source = Source.CACHE
            return _from_cache(stored, now)
        if viewer.method != "GET":  # HEAD misses go to the origin alone, never stored
            response, ex.source = await self._fetch(ex, route, keyed, None)
            return response
        return await self._collapsed_fetch(ex, route, keyed, key)

    async def _collapsed_fetch(
        self, ex: Exchange, route: Route, request: EdgeRequest, key: CacheKey
    ) -> EdgeResponse:
        """Concurrent misses for one key share one origin fetch; the others count as hits."""
        (response, source), shared = await self.collapser.join(
            key, lambda: self._fetch(ex, route, request, key)
        )
        ex.source = Source.CACHE if shared else source
        return _copy(response) if shared else response

    async def _fetch(
        self, ex: Exchange, route: Route, viewer: EdgeRequest, key: CacheKey | None
    ) -> tuple[EdgeResponse, Source]:
        """origin-request, the origin fetch, origin-response, and storing the result."""
        to_origin = origin_request(
            self._with_origin(route, viewer), route.key_policy, self.identity.via
        )
        result = await self._run_request_stage(ex, route, Stage.ORIGIN_REQUEST, to_origin)
        if isinstance(result, EdgeResponse):
            self._store(route, key, result)
            return _copy(result), Source.ORIGIN_REQUEST_GENERATED
        ex.origin_fetches += 1
        self.counters["origin_fetches"] += 1
        response = await self.origin.fetch(result, wire_headers(result, ex.request_id))
        response = await self._run_response_stage(
            ex, route, Stage.ORIGIN_RESPONSE, result, response
        )
        if route.strip_set_cookie:
            response.headers = without_headers(response.headers, _SET_COOKIE)
        self._store(route, key, response)
        return _copy(response), Source.ORIGIN

    def _with_origin(self, route: Route, viewer: EdgeRequest) -> EdgeRequest:
        """The viewer request aimed at the route's origin; the default root object applies
        to the exact root only (reference 7.3)."""
        uri = viewer.uri
        if uri == "/" and self.default_root_object:
            uri = "/" + self.default_root_object
        return replace(viewer, uri=uri, origin=route.origins[viewer.scheme])

    def _store(self, route: Route, key: CacheKey | None, response: EdgeResponse) -> None:
        if key is None:
            return
        now = self.clock()
        fresh = freshness(route.ttl_policy, response.status, response.headers, now)
        if fresh is None or fresh.ttl <= 0:
            return
        self.cache.put(key, CachedObject.from_response(response, now, fresh))

    async def _viewer_response(
        self, ex: Exchange, route: Route, viewer: EdgeRequest, response: EdgeResponse
    ) -> EdgeResponse:
        if not viewer_response_runs(ex.source, response.status):
            return response
        return await self._run_response_stage(ex, route, Stage.VIEWER_RESPONSE, viewer, response)

    # -- stages ----------------------------------------------------------------------------

    async def _run_request_stage(
        self, ex: Exchange, route: Route, stage: Stage, request: EdgeRequest
    ) -> EdgeRequest | EdgeResponse:
        hook = route.hooks.get(stage)
        if hook is None:
            return request
        ex.stages.append(stage.value)
        return await self.hooks.run_request(hook, request, self.identity.meta, ex.request_id)

    async def _run_response_stage(
        self,
        ex: Exchange,
        route: Route,
        stage: Stage,
        request: EdgeRequest,
        response: EdgeResponse,
    ) -> EdgeResponse:
        hook = route.hooks.get(stage)
        if hook is None:
            return response
        ex.stages.append(stage.value)
        return await self.hooks.run_response(
            hook, request, response, self.identity.meta, ex.request_id
        )

    # -- the way out -----------------------------------------------------------------------

    def _error_response(self, ex: Exchange, err: EdgeError) -> EdgeResponse:
        ex.source = Source.EDGE
        ex.error = str(err)
        if isinstance(err, HandlerError):
            error_log.error("%s %s", ex.request_id, err)
        else:
            error_log.warning("%s %s: %s", ex.request_id, type(err).__name__, err)
        ex.x_cache = err.x_cache
        headers = [("Content-Type", "text/html"), ("Server", "CloudFront")]
        return EdgeResponse(err.status, headers, render_error_page(err, ex.request_id))

    def _finalise(self, ex: Exchange, response: EdgeResponse) -> None:
        """Set the headers CloudFront owns toward the viewer (reference 6.3)."""
        ex.x_cache = ex.x_cache or x_cache_for(ex.source, response.status)
        ex.status = response.status
        response.headers = [
            *without_headers(response.headers, _EDGE_RESPONSE_HEADERS),
            ("Via", self.identity.via),
            ("X-Cache", ex.x_cache),
            ("X-Amz-Cf-Pop", self.identity.pop),
            ("X-Amz-Cf-Id", ex.request_id),
        ]


_SET_COOKIE = frozenset({"set-cookie"})


def _check_limits(request: EdgeRequest) -> None:
    if len(request.uri) + len(request.querystring) + 1 > MAX_URL_LENGTH:
        raise RequestTooLarge("URL over 8,192 bytes")


def _from_cache(stored: CachedObject, now: float) -> EdgeResponse:
    # HEAD gets the GET entry too: the server sends its headers without the body.
    headers = [*stored.headers, ("Age", str(int(stored.age(now))))]
    return EdgeResponse(stored.status, headers, stored.body, stored.reason)


def _copy(response: EdgeResponse) -> EdgeResponse:
    """A response whose header list later stages may change without touching the stored one."""
    return EdgeResponse(response.status, list(response.headers), response.body, response.reason)
