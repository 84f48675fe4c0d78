"""The miss path: origin-request, the origin fetch (revalidating a stale object, failing over
within an origin group, serving stale on error), origin-response, and storing the result.

What each origin outcome leads to (reference 7.4, 7.8, 7.11, 7.12):

    outcome                                     → served as
    origin-request generated a response         → it, stored (its rule)  ORIGIN_REQUEST_GENERATED
    304 to our revalidation of a stale object    → stored object, refreshed  REFRESHED
    connection error / timeout / 5xx, stale object usable on error
                                                → stale object           REFRESHED
    failover status or connection error, a secondary origin left (GET, HEAD, OPTIONS)
                                                → try the secondary (origin-request runs again)
    anything else                               → it, after origin-response, stored if cacheable
                                                  (its rule)            ORIGIN

"Stored" is asked of the stage's rule (``STAGE_RULES[stage].generated_is_cached``) in
``stored_under``, and then of the TTL rules (cache/ttl.py) in ``Misses._store``.

With a regional tier (cache/regional.py), a miss of this PoP's cache looks there first: a
fresh object there is served (``Source.REGIONAL``) and fills this PoP's cache, and neither
origin-request nor origin-response runs, as at CloudFront, where they run at the regional
edge cache. ``_store`` is the one place that decides what is stored, for both tiers. A GET
that may collapse (collapsing.py ``may_collapse``) takes the regional lock first, so
concurrent misses on every PoP and worker make one origin fetch (``_fetch_once``).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from edgeproxy.cache.compression import Compressor
from edgeproxy.cache.conditional import revalidation_headers
from edgeproxy.cache.disk import DiskWriter
from edgeproxy.cache.httpdate import initial_age
from edgeproxy.cache.key import CacheKey
from edgeproxy.cache.ranges import whole_from_partial, widened_range
from edgeproxy.cache.store import CachedObject, CacheStore
from edgeproxy.cache.ttl import freshness, parse_cache_control, uncached_fields
from edgeproxy.cache.vary import revalidates, viewer_vary
from edgeproxy.errors import OriginError
from edgeproxy.exchange import EDGE_OWNED_HEADERS, Exchange, StageCalls
from edgeproxy.messages import (
    EdgeRequest,
    EdgeResponse,
    OriginTarget,
    decimal_value,
    header_value,
    without_headers,
)
from edgeproxy.origin.client import OriginClient
from edgeproxy.origin.forwarding import origin_request, wire_headers
from edgeproxy.origin.tunnel import open_tunnel
from edgeproxy.routes import Route
from edgeproxy.stages import STAGE_RULES, Source, Stage, response_stages_run

if TYPE_CHECKING:  # imported (with the redis client) only when configured: runtime.py
    from edgeproxy.cache.regional import RegionalTier

FAILOVER_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STALE_ON_ERROR_STATUSES = frozenset({500, 502, 503, 504})
NO_STALE_DIRECTIVES = frozenset({"must-revalidate", "proxy-revalidate", "s-maxage"})

# The edge asks the origin for whole objects and answers viewer conditionals and ranges
# from them itself, so these viewer headers never reach the origin on a cacheable miss; a
# viewer's Range becomes a Range for the whole object (cache/ranges.py ``widened_range``).
VIEWER_CONDITIONALS = frozenset(
    {"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"}
)
_DROPPED_WITH_COOKIES = EDGE_OWNED_HEADERS | {"set-cookie"}
_NOT_STORED = frozenset({"age"})  # the edge computes Age for every hit

Fetched = tuple[EdgeResponse, Source]


class Misses:
    """Everything that happens when the edge goes to the origin."""

    def __init__(
        self,
        cache: CacheStore,
        calls: StageCalls,
        origin: OriginClient,
        clock: Callable[[], float],
        default_root_object: str = "",
        regional: RegionalTier | None = None,
    ) -> None:
        self.cache = cache
        self.regional = regional
        self.calls = calls
        self.origin = origin
        self.clock = clock
        self.default_root_object = default_root_object
        self.compressor = Compressor()  # its threads stop in ``Edge.close``

    async def fetch(
        self,
        ex: Exchange,
        route: Route,
        viewer: EdgeRequest,
        key: CacheKey | None,
        stale: CachedObject | None = None,
        *,
        collapse: bool = False,
    ) -> Fetched:
        """Fetch for ``viewer``; ``key`` None means nothing is stored; ``stale`` is an expired
        object under ``key`` that may be revalidated or served if the origin fails;
        ``collapse``: concurrent misses for ``key`` on every PoP may share this fetch."""
        if key is None or self.regional is None or viewer.body_stream is not None:
            return await self._fetch(ex, route, viewer, key, stale)
        found = await self._regional_hit(key, viewer.method)
        if found is not None:
            return found
        if not collapse:
            return await self._fetch(ex, route, viewer, key, stale)
        return await self._fetch_once(self.regional, ex, route, viewer, key, stale)

    async def _regional_hit(self, key: CacheKey, method: str) -> Fetched | None:
        """A fresh object of the regional tier for ``method``, put in this PoP's cache too."""
        assert self.regional is not None
        found = await self.regional.get(key)
        if found is None or not found.serves(method):
            return None
        response = aged(found.response(), found.age(self.clock()))
        self.cache.put(key, found)
        return response, Source.REGIONAL

    async def _fetch_once(
        self,
        regional: RegionalTier,
        ex: Exchange,
        route: Route,
        viewer: EdgeRequest,
        key: CacheKey,
        stale: CachedObject | None,
    ) -> Fetched:
        """One origin fetch for ``key`` across PoPs: the lock's holder fetches (and stores,
        ``_store``); the others wait for its object. No object for them (not for sharing,
        or the holder died and its lock expired): each fetches for itself."""
        token = await regional.lock(key)
        if token is None:
            if await regional.wait_for(key) is not None:
                found = await self._regional_hit(key, viewer.method)
                if found is not None:
                    return found
            return await self._fetch(ex, route, viewer, key, stale)
        try:
            # stored by a holder that let go between our look and our lock
            found = await self._regional_hit(key, viewer.method)
            if found is not None:
                return found
            return await self._fetch(ex, route, viewer, key, stale)
        finally:
            await regional.unlock(key, token)

    async def _fetch(
        self,
        ex: Exchange,
        route: Route,
        viewer: EdgeRequest,
        key: CacheKey | None,
        stale: CachedObject | None,
    ) -> Fetched:
        """origin-request, the origin, origin-response: everything past the caches."""
        # A streamed viewer body can go to one origin only: its bytes are not kept.
        failover = viewer.method in FAILOVER_METHODS and viewer.body_stream is None
        chain = ex.origins or route.origins[viewer.scheme]
        targets = chain.tried(failover)
        for position, target in enumerate(targets):
            last = position == len(targets) - 1
            try:
                sent, response = await self._attempt(ex, route, viewer, target, key, stale)
            except OriginError:
                if not last:
                    continue
                if stale is not None and self._usable_on_error(stale):
                    return stale.response(), Source.REFRESHED
                raise
            if sent is None:  # origin-request generated it
                await self._store(route, stored_under(Stage.ORIGIN_REQUEST, key), response)
                return _copy(response), Source.ORIGIN_REQUEST_GENERATED
            if not last and response.status in chain.failover_codes:
                await _discard(response)
                continue
            return await self._settle(ex, route, viewer, sent, response, key, stale)
        raise AssertionError("a route always has an origin")

    async def _attempt(
        self,
        ex: Exchange,
        route: Route,
        viewer: EdgeRequest,
        target: OriginTarget,
        key: CacheKey | None,
        stale: CachedObject | None,
    ) -> tuple[EdgeRequest | None, EdgeResponse]:
        """origin-request, then the fetch; (None, generated) when the stage answered."""
        to_origin = origin_request(
            self._aimed(viewer, target, key, stale), route.key_policy, self.calls.identity.via
        )
        if Stage.ORIGIN_REQUEST in route.hooks:
            # CloudFront resolves the origin's name before origin-request runs: a name that
            # does not resolve is 502 OriginDnsError and the function is not invoked
            # (Developer Guide, Restrictions on Lambda@Edge: DNS resolution).
            await self.origin.address(target.domain_name)
        result = await self.calls.request(ex, route, Stage.ORIGIN_REQUEST, to_origin)
        if isinstance(result, EdgeResponse):
            return None, result
        ex.origin_fetches += 1
        wire = wire_headers(result, ex.request_id)
        call = ex.to_origin(result, wire)
        started, failure = time.perf_counter(), ""
        try:
            if result.websocket:  # a handshake goes over a connection of its own, kept after
                answer = await open_tunnel(self.origin, result, wire)
            else:
                answer = await self.origin.fetch(result, wire)
        except OriginError as err:
            failure = type(err).__name__
            ex.from_origin(call, None, str(err))
            raise
        finally:  # counted by metrics.py when the exchange is recorded
            ex.origin_attempts.append((time.perf_counter() - started, failure))
        ex.from_origin(call, answer)
        return result, answer

    def _aimed(
        self,
        viewer: EdgeRequest,
        target: OriginTarget,
        key: CacheKey | None,
        stale: CachedObject | None,
    ) -> EdgeRequest:
        """The viewer request aimed at ``target``: the default root object for the exact
        root (reference 7.3), viewer conditionals replaced by the edge's own revalidation."""
        uri = viewer.uri
        if uri == "/" and self.default_root_object:
            uri = "/" + self.default_root_object
        headers = viewer.headers
        if key is not None:
            widened = widened_range(headers) if viewer.method == "GET" else None
            headers = without_headers(headers, VIEWER_CONDITIONALS)
            if widened is not None:
                headers = [*headers, ("Range", widened)]
            if stale is not None and revalidates(stale.headers):
                headers = [*headers, *revalidation_headers(stale)]
        aimed = viewer.copy()
        aimed.uri, aimed.headers, aimed.origin = uri, headers, target
        return aimed

    async def _settle(
        self,
        ex: Exchange,
        route: Route,
        viewer: EdgeRequest,
        sent: EdgeRequest,
        response: EdgeResponse,
        key: CacheKey | None,
        stale: CachedObject | None,
    ) -> Fetched:
        """origin-response, then refresh, stale-on-error or store."""
        if stale is not None and response.status in STALE_ON_ERROR_STATUSES:
            if self._usable_on_error(stale):
                await _discard(response)
                return stale.response(), Source.REFRESHED
        if response_stages_run(response.status):
            response = await self.calls.response(ex, route, Stage.ORIGIN_RESPONSE, sent, response)
        dropped = _DROPPED_WITH_COOKIES if route.strip_set_cookie else EDGE_OWNED_HEADERS
        response.headers = viewer_vary(route.vary, without_headers(response.headers, dropped))
        if response.status == 304 and stale is not None and key is not None:
            return await self._refreshed(route, key, stale, response), Source.REFRESHED
        if key is not None and header_value(sent.headers, "range") is not None:
            response = self._ranged(ex, response)
        response = await self._compressed(route, viewer, response)
        under = stored_under(Stage.ORIGIN_RESPONSE, key)
        stored = await self._store(route, under, response, viewer)
        if stored is not None and response.stream is not None:
            response = self._copied_to_disk(stored, response)
        return _copy(response), Source.ORIGIN

    def _copied_to_disk(
        self, stored: tuple[CacheKey, CachedObject], response: EdgeResponse
    ) -> EdgeResponse:
        """A streamed object (too large for memory) copied to the disk tier as it passes to
        the viewer; kept only once whole (cache/disk.py)."""
        assert response.stream is not None
        length = decimal_value(header_value(response.headers, "content-length") or "", 2**63)
        writer = self.cache.writer(*stored, length)
        if writer is None:
            return response
        teed = response.copy()
        teed.stream = _teed(response.stream, writer)
        return teed

    def _ranged(self, ex: Exchange, response: EdgeResponse) -> EdgeResponse:
        """The origin's answer to the edge's widened Range (DG RangeGETs): a 206 holding the
        whole object is that object (a 200, cut for the viewer later); a 200 means the origin
        ignored the Range, so this viewer gets the whole object (``Exchange.whole_object``);
        a 206 holding a part is passed on as it is, and not stored (misses ``_store``)."""
        whole = whole_from_partial(response)
        if whole is not None:
            return whole
        ex.whole_object = response.status == 200
        return response

    async def _compressed(
        self, route: Route, viewer: EdgeRequest, response: EdgeResponse
    ) -> EdgeResponse:
        """The response as CloudFront compresses it for this viewer (reference 7.9); what is
        stored is the compressed copy, under a key holding the normalised Accept-Encoding."""
        if response.stream is not None:
            return response
        packed = await self.compressor.compress(
            route.compression, viewer, response.status, response.headers, response.body
        )
        if packed is None:
            return response
        compressed = response.copy()
        compressed.headers, compressed.body = packed.headers, packed.body
        return compressed

    async def _refreshed(
        self, route: Route, key: CacheKey, stale: CachedObject, not_modified: EdgeResponse
    ) -> EdgeResponse:
        """The stale object made fresh by a 304, in this PoP's cache and, being the same
        object every PoP would fetch, in the regional tier too (a disk object stays here, as
        ``_store`` keeps streamed objects)."""
        now = self.clock()
        update = without_headers(not_modified.headers, _NOT_STORED)
        names = frozenset(k.lower() for k, _ in update)
        merged = [*without_headers(stale.headers, names), *update]
        fresh = freshness(route.ttl_policy, stale.status, merged, now)
        refreshed = self.cache.refresh(key, update, fresh) if fresh else None
        if refreshed is not None and self.regional is not None and refreshed.disk is None:
            await self.regional.put(key, refreshed)
        return (refreshed or stale).response()

    async def _store(
        self,
        route: Route,
        key: CacheKey | None,
        response: EdgeResponse,
        viewer: EdgeRequest | None = None,
    ) -> tuple[CacheKey, CachedObject] | None:
        """Store ``response`` when cacheable, in this PoP's cache and the regional tier; a
        streamed one is only returned, with its key, for the caller to copy as it streams
        (``_copied_to_disk``), and stays this PoP's."""
        if key is None or response.status == 206:
            return None  # a 206 here is a part of an object, never the object (``_ranged``)
        if viewer is not None and not _storable_for(viewer, response):
            return None
        now = self.clock()
        fresh = freshness(route.ttl_policy, response.status, response.headers, now)
        if fresh is None:
            return None
        # An object that arrives with an Age is that much older already (RFC 9111 4.2.3);
        # the fields a no-cache="..." / private="..." names are this viewer's only (7.7).
        kept = response.copy()
        kept.headers = without_headers(
            response.headers, _NOT_STORED | uncached_fields(response.headers)
        )
        stored = CachedObject.from_response(
            kept,
            now - initial_age(response.headers, now),
            fresh,
        )
        # GET and HEAD share a key: a HEAD's bodiless answer serves HEADs only (cache/store.py).
        stored.head_only = viewer is not None and viewer.method == "HEAD"
        if response.stream is None:
            if self.regional is not None:  # before the L1 put: a disk copy empties ``body``
                await self.regional.put(key, stored)
            self.cache.put(key, stored)
        return key, stored

    def _usable_on_error(self, stale: CachedObject) -> bool:
        # Without stale-if-error, CloudFront serves an expired object it still holds when the
        # origin fails (reference 7.4); stale-if-error bounds that, and =0 turns it off.
        # must-revalidate, proxy-revalidate and s-maxage forbid it (RFC 9111 4.2.4, 5.2.2).
        directives = parse_cache_control(header_value(stale.headers, "cache-control") or "")
        if not NO_STALE_DIRECTIVES.isdisjoint(directives):
            return False
        return stale.may_serve_on_error(self.clock(), math.inf)


def aged(response: EdgeResponse, age: float) -> EdgeResponse:
    """A stored object as served: its Age is the edge's (which counts the origin's Age at
    storing). HEAD gets the GET entry too: the server sends no body for it."""
    response.headers.append(("Age", str(int(age))))  # stored objects hold no Age (_store)
    return response


def stored_under(stage: Stage, key: CacheKey | None) -> CacheKey | None:
    """The key to store what ``stage`` returned under, or None when the stage's rule says
    it is never stored. The one reader of ``generated_is_cached``: only origin-side stages
    reach here (viewer-request runs before the key exists, viewer-response after the store)."""
    return key if STAGE_RULES[stage].generated_is_cached else None


# An answer to a request with Authorization is shared only when the origin says so (RFC 9111
# 3.5); reference 7.5 says nothing of Authorization in the key, so the RFC rule stands.
_SHAREABLE_WITH_AUTH = frozenset({"public", "s-maxage", "must-revalidate"})


def _storable_for(viewer: EdgeRequest, response: EdgeResponse) -> bool:
    if header_value(viewer.headers, "authorization") is None:
        return True
    directives = parse_cache_control(header_value(response.headers, "cache-control") or "")
    return not _SHAREABLE_WITH_AUTH.isdisjoint(directives)


async def _teed(stream: AsyncIterator[bytes], writer: DiskWriter) -> AsyncIterator[bytes]:
    """``stream`` passed on while ``writer`` copies it; kept only if it reached its end (an
    origin that dies mid-body raises, a viewer that leaves closes this: both abort)."""
    whole = False
    try:
        async for data in stream:
            writer.write(data)
            yield data
        whole = True
    finally:
        if whole:
            writer.commit()
        else:
            writer.abort()
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()


def _copy(response: EdgeResponse) -> EdgeResponse:
    """A response whose header list later stages may change without touching a stored one."""
    copied = response.copy()
    copied.headers = list(response.headers)
    return copied


async def _discard(response: EdgeResponse) -> None:
    """Release a response that will not be used (a streamed body holds a connection)."""
    close = getattr(response.stream, "aclose", None)  # async generators only
    if close is not None:
        await close()
