"""The one flow of a request through the edge (DESIGN section 1), free of aiohttp types.

``Edge.handle`` takes the viewer's ``EdgeRequest`` and returns the ``EdgeResponse`` to send,
with every CloudFront header set. Each step is one short method; where a step leads is read
from the tables in ``stages.py`` and ``misses.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from edgeproxy.access_log import log_access
from edgeproxy.cache.conditional import answer_conditional
from edgeproxy.cache.key import CacheKey, cache_key
from edgeproxy.cache.ranges import apply_range, apply_range_stream
from edgeproxy.cache.store import CacheStore
from edgeproxy.collapsing import Collapser, may_collapse, shared_object
from edgeproxy.config.custom_error_pages import ErrorPages
from edgeproxy.error_responses import ErrorResponses, error_response, page_rule
from edgeproxy.errors import (
    EdgeError,
    GeoBlocked,
    InternalError,
    MethodNotAllowed,
    ProtocolNotAllowed,
)
from edgeproxy.exchange import (
    HISTORY_BYTES,
    EdgeIdentity,
    Exchange,
    History,
    StageCalls,
    new_request_id,
)
from edgeproxy.functions.hooks import HookRunner
from edgeproxy.messages import EdgeRequest, EdgeResponse, Headers, header_value
from edgeproxy.metrics import EdgeMetrics
from edgeproxy.misses import Fetched, Misses, aged
from edgeproxy.origin.client import OriginClient
from edgeproxy.routes import Route, Routes
from edgeproxy.stages import Source, Stage, viewer_response_runs, x_cache_for
from edgeproxy.viewer.cloudfront_headers import (
    NOTHING_SENT,
    ViewerFacts,
    https_redirect,
    sent_cf_headers,
    split_viewer_cf_headers,
    toward_origin,
    viewer_cf_headers,
)
from edgeproxy.viewer.geo import GeoLocator
from edgeproxy.viewer.request_checks import (
    NOTHING_TRUSTED,
    ServedHosts,
    as_received,
    check_limits,
    names_cloudfront_header,
    needs_full_flow,
)
from edgeproxy.viewer.response_headers import (
    ServerTiming,
    apply_response_headers,
    preflight_response,
)

if TYPE_CHECKING:  # imported (with the redis client) only when configured: runtime.py
    from edgeproxy.cache.regional import RegionalTier

__all__ = ["Edge", "EdgeIdentity", "Exchange"]

log = logging.getLogger("edgeproxy.access")
error_log = logging.getLogger("edgeproxy.error")


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
        error_pages: ErrorPages | None = None,
        hosts: ServedHosts | None = None,
        clock: Callable[[], float] = time.time,
        history: int = 1000,
        regional: RegionalTier | None = None,
        history_bytes: int = HISTORY_BYTES,
    ) -> None:
        self.routes = routes
        self.hosts = hosts or ServedHosts(())
        self.cache = cache
        self.hooks = hooks
        self.origin = origin
        self.identity = identity
        self.geo = geo
        self.trust_viewer_headers = trust_viewer_headers
        self.error_pages = error_pages or ErrorPages(())
        self.clock = clock
        self.calls = StageCalls(hooks, identity)
        self.regional = regional  # the tier every PoP shares (cache/regional.py), if any
        self.misses = Misses(cache, self.calls, origin, clock, default_root_object, regional)
        self.errors = ErrorResponses(self.error_pages, routes, self._page)
        self.collapser: Collapser[Fetched] = Collapser()
        self.recent = History(history, history_bytes)
        self.counters: Counter[str] = Counter()
        self.metrics = EdgeMetrics()  # GET /metrics (admin/metrics.py)
        self._background: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Background work that lives as long as the edge: with a regional tier, applying
        the invalidations any PoP publishes to this PoP's cache."""
        if self.regional is not None:
            task = asyncio.get_running_loop().create_task(self.regional.listen(self.invalidate))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def invalidate(self, paths: list[str]) -> int:
        """Remove what the invalidation ``paths`` name from this PoP's cache, in steps with
        viewers answered between them (``CacheStore.invalidation``); how many went."""
        removed = 0
        for path in paths:
            for count in self.cache.invalidation(path):
                removed += count
                await asyncio.sleep(0)
        return removed

    async def handle(self, request: EdgeRequest) -> EdgeResponse:
        ex = Exchange(new_request_id(), request.method, request.uri, self.clock())
        received = request.headers  # the flow may replace the list: the record keeps this one
        try:
            response = await self._serve(ex, request)
        except EdgeError as err:
            response = await self.errors.for_error(ex, err)
        except Exception as exc:  # a defect of ours: the viewer still gets CloudFront's 502
            error_log.exception("%s internal error", ex.request_id)
            response = error_response(ex, InternalError(repr(exc)))
        self._finalise(ex, response)
        self._record(ex, request, response, received)
        return response

    def hit(self, request: EdgeRequest) -> EdgeResponse | None:
        """A fresh cache hit answered at once, without awaiting anything; None when the
        request needs the full flow (``handle``). Same headers, X-Cache, Age, records and
        counters as ``handle`` gives the same hit: it is the same steps, minus the ones
        that cannot apply (see ``Route.fast_hits``)."""
        route = self.routes.select(request.uri)
        fast = route.fast_hits and request.method in route.cached_methods and not request.has_body
        if not fast or needs_full_flow(request):  # HTTP/1.0 too: ``as_received`` changes it
            return None
        host = header_value(request.headers, "host") or ""
        if not self.hosts.serves(host):
            return None  # the full flow refuses it (check_limits)
        key = cache_key(route.key_policy, request, self.identity.meta.distribution_domain_name)
        stored = self.cache.peek(key, request.method)
        now = self.clock()
        if stored is None or not stored.is_fresh(now):
            return None
        if stored.disk is not None:
            return None  # a file is streamed, which only the full flow's writer does
        if page_rule(self.error_pages, Source.CACHE, stored.status) is not None:
            return None  # the full flow serves the custom error page
        self.cache.get(key, request.method)  # counted and in LRU order, as handle's lookup
        ex = Exchange(new_request_id(), request.method, request.uri, now, source=Source.CACHE)
        ex.route, ex.viewer, ex.behavior = route, request, route.index
        ex.looked_up(key, "hit", stored, route, now)
        response = aged(stored.response(), stored.age(now))
        self._finalise(ex, response)
        self._record(ex, request, response)
        return response

    def _record(
        self,
        ex: Exchange,
        request: EdgeRequest,
        response: EdgeResponse,
        received: Headers | None = None,
    ) -> None:
        """The exchange into the recent list, the counters, the metrics and the access log."""
        ex.viewer = None  # the history keeps what happened, never a request or its body
        ex.answered(request, response, received)
        self.recent.add(ex)
        self.counters[ex.x_cache] += 1
        self.metrics.record(ex)
        if ex.origin_fetches:
            self.counters["origin_fetches"] += ex.origin_fetches
        if log.isEnabledFor(logging.INFO):
            log_access(log, ex, request, response, self.identity.pop, self.clock)

    async def close(self) -> None:
        """Stop background refreshes and compression threads (what was passed in: its owner)."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self.misses.compressor.close()
        self.cache.close()
        if self.regional is not None:
            await self.regional.close()

    # -- steps ---------------------------------------------------------------------------

    async def _serve(self, ex: Exchange, request: EdgeRequest) -> EdgeResponse:
        # The numbered steps of DESIGN section 1; step 11 is ``_finalise`` in ``handle``.
        check_limits(request, self.hosts)  # 1
        request = as_received(request)
        route = ex.route = self.routes.select(request.uri)  # 2
        ex.behavior = route.index
        refusal = self._viewer_policy(ex, route, request)  # 3
        if refusal is not None:
            return refusal
        trusted, sent = NOTHING_TRUSTED, NOTHING_SENT
        if names_cloudfront_header(request.headers):
            # viewer-request sees what the viewer sent, simulated values aside (cloudfront_headers)
            sent = sent_cf_headers(request.headers)
            if self.trust_viewer_headers:
                request.headers, trusted = split_viewer_cf_headers(request.headers)
        # A CloudFront Function at viewer-request sees the CloudFront-* headers the policies
        # add (DG example-function-redirect-url); a Lambda@Edge function does not.
        shown = (
            self._cf_headers(route, request, trusted)
            if Stage.VIEWER_REQUEST in route.functions
            else []
        )
        result = await self.calls.request(ex, route, Stage.VIEWER_REQUEST, request, shown)  # 4
        if isinstance(result, EdgeResponse):
            ex.source = self.calls.generated_at_viewer_request(route)
            return result
        viewer = ex.viewer = result
        if names_cloudfront_header(viewer.headers):
            viewer.headers = toward_origin(viewer.headers, sent, route.cf_header_names)
        if route.response_headers is not None:
            preflight = preflight_response(route.response_headers, viewer)
            if preflight is not None:
                ex.source = Source.PREFLIGHT
                return preflight
        cf_headers = self._cf_headers(route, viewer, trusted)  # 5
        response = await self._cached_or_fetched(ex, route, viewer, cf_headers)  # 6-9
        if not ex.whole_object:
            response = _from_object(viewer, response)
        page = await self.errors.custom_page(ex, response.status, viewer)  # error_responses.py
        if page is not None:
            return page
        return await self._viewer_response(ex, route, viewer, response)  # 10

    def _cf_headers(self, route: Route, viewer: EdgeRequest, trusted: dict[str, str]) -> Headers:
        """The CloudFront-* headers the route names, added after viewer-request."""
        if not route.cf_header_names:
            return []
        facts = ViewerFacts(viewer, self.geo.locate(viewer.client_ip), trusted)
        return viewer_cf_headers(route.cf_header_names, facts)

    def _viewer_policy(
        self, ex: Exchange, route: Route, request: EdgeRequest
    ) -> EdgeResponse | None:
        """Protocol policy, geo restriction, then allowed methods (reference 1, steps 3-4)."""
        if request.scheme == "http" and route.viewer_protocol_policy == "redirect-to-https":
            ex.source = Source.REDIRECT
            return https_redirect(request, self.identity.https_port)
        if request.scheme == "http" and route.viewer_protocol_policy == "https-only":
            raise ProtocolNotAllowed("this behavior is HTTPS only")
        if not self.geo.admits(request, self.trust_viewer_headers):
            raise GeoBlocked("the viewer's country is restricted (geo_restriction)")
        if request.method not in route.allowed_methods:
            raise MethodNotAllowed(f"{request.method} not in allowed_methods")
        return None

    async def _cached_or_fetched(
        self, ex: Exchange, route: Route, viewer: EdgeRequest, cf_headers: Headers
    ) -> EdgeResponse:
        keyed = viewer
        if cf_headers:
            keyed = viewer.copy()
            keyed.headers = [*viewer.headers, *cf_headers]
        # Only expiry and invalidation remove an object (reference 7.14): a POST, PUT or DELETE
        # passes through and leaves it (RFC 9111 4.4 is not CloudFront's rule).
        if viewer.method not in route.cached_methods or viewer.websocket:  # never cached
            response, ex.source = await self.misses.fetch(ex, route, keyed, None)
            return response
        key = cache_key(route.key_policy, keyed, self.identity.meta.distribution_domain_name)
        stored = self.cache.get(key, viewer.method)
        now = self.clock()
        if stored is not None and stored.is_fresh(now):
            ex.source = Source.CACHE
            ex.looked_up(key, "hit", stored, route, now)
            return aged(stored.response(), stored.age(now))
        if stored is not None and stored.may_serve_while_revalidating(now):
            self._refresh_in_background(route, keyed, key)
            ex.source = Source.CACHE
            ex.looked_up(key, "stale-while-revalidate", stored, route, now)
            return aged(stored.response(), stored.age(now))
        if viewer.method != "GET":  # HEAD (with HEAD, reference 7.3) and OPTIONS: not collapsed
            response, ex.source = await self.misses.fetch(ex, route, keyed, key, stored)
        else:
            response, ex.source = await self._collapsed(ex, route, keyed, key)
        self._decided(ex, route, key, viewer.method)
        return response

    def _decided(self, ex: Exchange, route: Route, key: CacheKey, method: str) -> None:
        """A miss's cache decision, read back from the cache: what it holds under the key
        now, if it was stored (or refreshed) by this exchange."""
        stored = self.cache.peek(key, method)
        if stored is not None and stored.stored_at < ex.started:
            stored = None  # an older object: this exchange stored nothing
        ex.looked_up(key, _LOOKUP_RESULT.get(ex.source, "miss"), stored, route, self.clock())

    async def _collapsed(
        self, ex: Exchange, route: Route, request: EdgeRequest, key: CacheKey
    ) -> Fetched:
        """A GET miss: its own origin fetch, or a wait for the one under way (collapsing.py)."""

        collapse = may_collapse(route)

        def fetch() -> Awaitable[Fetched]:  # a stale object under the key may be revalidated
            stale = self.cache.peek(key, "GET")
            return self.misses.fetch(ex, route, request, key, stale, collapse=collapse)

        if not collapse:
            return await fetch()
        fetched, shared = await self.collapser.join(key, fetch)
        if not shared:
            return fetched
        stored = shared_object(self.cache.peek(key, "GET"), self.clock())
        if stored is None:  # not an object for everyone: this viewer asks the origin itself
            return await fetch()
        return aged(stored.response(), stored.age(self.clock())), Source.CACHE

    def _refresh_in_background(self, route: Route, request: EdgeRequest, key: CacheKey) -> None:
        """stale-while-revalidate: the viewer gets the stale object now; one refresh runs."""
        stale = self.cache.peek(key, request.method)
        head = request.method == "HEAD"
        if self.collapser.in_flight(key) or stale is None or stale.head_only != head:
            return  # a HEAD's refresh would put a bodiless answer over the GET's object
        ex = Exchange(new_request_id(), request.method, request.uri, self.clock())

        async def refresh() -> None:
            try:
                await self.collapser.run(
                    key, lambda: self.misses.fetch(ex, route, request, key, stale)
                )
            except EdgeError as err:
                error_log.warning("%s background refresh failed: %s", ex.request_id, err)

        task = asyncio.get_running_loop().create_task(refresh())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _viewer_response(
        self, ex: Exchange, route: Route, viewer: EdgeRequest, response: EdgeResponse
    ) -> EdgeResponse:
        if not viewer_response_runs(ex.source, response.status):
            return response
        stream = response.stream
        try:
            answer = await self.calls.response(ex, route, Stage.VIEWER_RESPONSE, viewer, response)
        except BaseException:
            if stream is not None:
                _close_later(stream)  # the error's answer goes instead
            raise
        if stream is not None and answer.stream is not stream:
            _close_later(stream)  # the function replaced the body: release the origin
        return answer

    def _page(self, ex: Exchange, route: Route, request: EdgeRequest) -> Awaitable[EdgeResponse]:
        """A custom error page is looked up and fetched like any object (step 6-9)."""
        return self._cached_or_fetched(ex, route, request, [])

    # -- the way out -----------------------------------------------------------------------

    def _finalise(self, ex: Exchange, response: EdgeResponse) -> None:
        """Set the headers CloudFront owns toward the viewer (reference 6.3)."""
        ex.x_cache = ex.x_cache or x_cache_for(ex.source, response.status)
        ex.status = response.status
        policy = ex.route.response_headers if ex.route is not None else None
        if policy is not None and ex.viewer is not None:
            timing = ServerTiming(
                _TIMING[ex.source], self.identity.pop, ex.request_id, _hit_layer(ex.source)
            )
            response.headers = apply_response_headers(
                policy, ex.viewer, response.headers, response.status, timing=timing
            )
        response.headers = [
            *response.headers,
            ("Via", self.identity.via),
            ("X-Cache", ex.x_cache),
            ("X-Amz-Cf-Pop", self.identity.pop),
            ("X-Amz-Cf-Id", ex.request_id),
        ]


def _from_object(viewer: EdgeRequest, response: EdgeResponse) -> EdgeResponse:
    """The viewer's own conditional or Range request answered from a whole 200 object the
    edge holds or just fetched (the edge never forwards them on a cacheable miss)."""
    if response.status != 200:
        return response
    headers = viewer.headers
    if not any(name[0] in "iIrR" for name, _ in headers):
        return response  # no If-* and no Range header: nothing to answer
    answer = answer_conditional(200, response.headers, viewer.method, headers)
    if answer is None:
        answer = (
            apply_range(200, response.headers, response.body, headers, method=viewer.method)
            if response.stream is None
            else apply_range_stream(response, headers, method=viewer.method)
        )
    if answer is None:
        return response
    if response.stream is not None and answer.stream is None:
        _close_later(response.stream)  # a 304 or 416 answered instead of the stream
    age = header_value(response.headers, "age")
    if age is not None and header_value(answer.headers, "age") is None:
        answer.headers.append(("Age", age))
    return answer


def _close_later(stream: object) -> None:
    """Close a stream that will not be sent (a file of the disk tier or an origin body)."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        task = asyncio.get_running_loop().create_task(close())
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)


_CLOSING: set[asyncio.Task[None]] = set()


# The cache decision's result per source, after a fetch (a collapsed waiter's is CACHE).
_LOOKUP_RESULT = {
    Source.REFRESHED: "refresh",
    Source.REGIONAL: "hit in the regional tier",
    Source.CACHE: "hit (collapsed onto another request's fetch)",
    Source.ORIGIN_REQUEST_GENERATED: "miss (origin-request generated the response)",
}

# Server-Timing's cache result per source.
_TIMING = {source: "miss" for source in Source} | {
    Source.CACHE: "hit",
    Source.REGIONAL: "hit",
    Source.REFRESHED: "refresh",
}


def _hit_layer(source: Source) -> str:
    """Server-Timing's cdn-hit-layer: REC for the regional tier's objects, else the PoP's
    own cache (DG understanding-response-headers-policies.html#server-timing-header)."""
    return "REC" if source is Source.REGIONAL else "EDGE"
