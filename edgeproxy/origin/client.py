"""The origin client: one keep-alive pool, CloudFront's connection attempts and timeouts, and
its limits on what an origin may send.

This is one of the three modules that touch sockets (with server/listeners.py and
admin/api.py). Every aiohttp error is converted once, into the edge's own ``OriginError``
tree, by the table in ``origin/retries.py``, which also says when another attempt follows
(reference 4.7, 7.12). What goes to and comes from an origin's headers is
``origin/headers.py``; where a name leads, ``origin/resolver.py``.

A body within ``max_body`` bytes is read whole (a partial one is an error, never an answer);
a larger one, announced by its Content-Length or growing past the limit while read, comes
back as ``EdgeResponse.stream`` (an ``OriginStream``, ``origin/stream.py``), which the caller
passes on and never caches.

A pooled connection is reused only while its origin sends exactly the answers asked for
(``origin/connection.py``): any byte between an answer and the next request closes it.

``edge.resolve`` maps origin names to local addresses; an entry with a port
(``"eu.example.com": "127.0.0.1:8081"``) also replaces the origin's port and protocol: that
name is fetched at that address over plain HTTP, so a local server can stand in for a real
host (the Host header still names it).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping

import aiohttp
from yarl import URL

from edgeproxy.config.edge_settings import resolve_address
from edgeproxy.errors import OriginDnsError, OriginResponseError
from edgeproxy.messages import EdgeRequest, EdgeResponse, Headers, OriginTarget
from edgeproxy.origin.connection import HANDOUT, Handout, OriginConnector
from edgeproxy.origin.headers import (
    MAX_RESPONSE_HEAD,
    fetch_headers,
    head_size,
    response_headers,
    with_length,
)
from edgeproxy.origin.resolver import StaticResolver
from edgeproxy.origin.retries import (
    AttemptFailed,
    converted,
    failure_of,
    is_stale,
    single_attempt,
)
from edgeproxy.origin.stream import OriginStream, read_up_to

# The default of edge.cache.max_object_bytes: bodies over it are streamed, not held.
DEFAULT_MAX_BODY = 64 * 1024 * 1024

# aiohttp adds these on its own unless told not to; the edge decides them itself.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")

# Answers without a body whatever their Content-Length says (it describes the GET body).
_NO_BODY_STATUSES = frozenset({204, 304})


class OriginClient:
    """Fetches from origins over one shared keep-alive pool.

    ``resolve`` is ``edge.resolve`` (name → ``"ip"`` or ``"ip:port"``); ``use_dns`` False
    makes any other name fail as an unknown host; bodies over ``max_body`` bytes are streamed.
    """

    def __init__(
        self,
        resolve: Mapping[str, str],
        *,
        use_dns: bool = True,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        entries = {name.lower(): resolve_address(value) for name, value in resolve.items()}
        self._addresses = {name: ip for name, (ip, _) in entries.items()}
        self._ports = {name: port for name, (_, port) in entries.items() if port is not None}
        self._use_dns = use_dns
        self.max_body = max_body
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        fallback = aiohttp.DefaultResolver() if self._use_dns else None
        connector = OriginConnector(
            resolver=StaticResolver(self._addresses, fallback),
            limit=0,
            keepalive_timeout=5.0,
            use_dns_cache=False,
        )
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=_NO_AUTO_HEADERS,
            cookie_jar=aiohttp.DummyCookieJar(),
            middlewares=(single_attempt,),  # attempts are counted here, not by aiohttp
            # Lines and fields up to the whole head limit; the total is checked per answer.
            max_line_size=MAX_RESPONSE_HEAD,
            max_field_size=MAX_RESPONSE_HEAD,
            max_headers=MAX_RESPONSE_HEAD // 4,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def wire_target(self, target: OriginTarget) -> tuple[str, int]:
        """(protocol, port) a fetch for ``target`` really uses: an ``edge.resolve`` entry
        with a port sends it there over plain HTTP."""
        port = self._ports.get(target.domain_name.lower())
        return (target.protocol, target.port) if port is None else ("http", port)

    async def address(self, host: str) -> str:
        """The address a fetch for ``host`` connects to: ``edge.resolve``, a literal, or
        DNS when allowed (for connections of their own: a WebSocket's, server/websocket.py)."""
        fallback = aiohttp.DefaultResolver() if self._use_dns else None
        resolver = StaticResolver(self._addresses, fallback)
        try:
            return str((await resolver.resolve(host))[0]["host"])
        except OSError as exc:
            raise OriginDnsError(f"cannot resolve {host}: {exc!r}") from exc
        finally:
            await resolver.close()

    async def fetch(self, request: EdgeRequest, headers: Headers) -> EdgeResponse:
        """Send ``request`` to ``request.origin`` with ``headers`` (hop-by-hop ones dropped);
        try again as CloudFront does (see the table above), up to connection_attempts."""
        target = request.origin
        assert target is not None, "the pipeline sets the origin before fetching"
        if self._session is None:
            self._session = self._open()
        attempts = max(1, target.connection_attempts)
        attempt, stale_retry = 1, True
        while True:
            handout = Handout()
            try:
                return await self._attempt(self._session, request, target, headers, handout)
            except AttemptFailed as failed:
                if not _sendable_again(request):
                    raise failed.error from failed.__cause__
                if stale_retry and is_stale(failed, handout.reused, request.method):
                    stale_retry = False
                    continue
                if attempt >= attempts or not failed.retry.allows(request.method):
                    raise failed.error from failed.__cause__
                attempt += 1

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        request: EdgeRequest,
        target: OriginTarget,
        headers: Headers,
        handout: Handout,
    ) -> EdgeResponse:
        protocol, port = self.wire_target(target)
        timeout = _timeout(target.connection_timeout, target.read_timeout)
        sent = fetch_headers(headers, target)
        stream = request.body_stream
        if stream is not None and stream.length is not None:
            sent["Content-Length"] = str(stream.length)  # else aiohttp sends it chunked
        asked = HANDOUT.set(handout)  # OriginConnector.connect marks a pooled connection
        try:
            resp = await session.request(
                request.method,
                origin_url(request, target, protocol, port),
                headers=sent,
                data=stream if stream is not None else request.body or None,
                allow_redirects=False,
                timeout=timeout,
                ssl=_ssl_setting(target),
            )
        except (aiohttp.ClientError, OSError) as exc:
            if stream is not None and stream.error is not None:
                raise stream.error from exc  # the viewer's body failed, not the origin
            met = failure_of(exc)
            raise AttemptFailed(*converted(met, target.domain_name)) from met
        finally:
            HANDOUT.reset(asked)
        return await self._answer(resp, request.method, target.domain_name)

    async def _answer(self, resp: aiohttp.ClientResponse, method: str, host: str) -> EdgeResponse:
        """The answer whose head arrived: checked, then its body read or streamed."""
        try:
            size = head_size(resp)
            if size > MAX_RESPONSE_HEAD:
                raise OriginResponseError(
                    f"{host} sent {size} bytes of headers (CloudFront's limit: 20,480)"
                )
            return await self._body(resp, method, host)
        except (aiohttp.ClientError, OSError) as exc:
            resp.close()
            raise converted(exc, host)[0] from exc
        except BaseException:
            resp.close()
            raise

    async def _body(self, resp: aiohttp.ClientResponse, method: str, host: str) -> EdgeResponse:
        headers = response_headers(resp)
        reason = resp.reason or ""
        if method == "HEAD" or resp.status in _NO_BODY_STATUSES or resp.status < 200:
            resp.release()
            return EdgeResponse(resp.status, headers, b"", reason)
        declared = resp.content_length
        if declared is not None and declared > self.max_body:
            chunks: list[bytes] = []
            complete = False
        else:
            chunks, complete = await read_up_to(resp.content, self.max_body)
        if not complete:
            stream = OriginStream(resp, host, chunks)
            return EdgeResponse(resp.status, headers, reason=reason, stream=stream)
        resp.release()
        body = b"".join(chunks)
        return EdgeResponse(resp.status, with_length(headers, len(body)), body, reason)


def origin_url(
    request: EdgeRequest, target: OriginTarget, protocol: str = "", port: int = 0
) -> URL:
    """The URL the edge requests: origin path prefix + the request's path and query, as the
    viewer (or a handler) wrote them (already encoded, so never re-encoded here)."""
    host = target.domain_name
    if ":" in host:  # an IPv6 literal, allowed locally
        host = f"[{host}]"
    scheme = protocol or target.protocol
    raw = f"{scheme}://{host}:{port or target.port}{target.path}{request.target}"
    return URL(raw, encoded=True)


@functools.lru_cache(maxsize=64)
def _timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    """One (frozen) timeout per pair of an origin's timeouts, built once, not per request."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


def _sendable_again(request: EdgeRequest) -> bool:
    """Whether another attempt can send the same request: not once a streamed viewer body
    began to go out (its bytes are gone)."""
    return request.body_stream is None or not request.body_stream.started


def _ssl_setting(target: OriginTarget) -> bool | ssl.SSLContext:
    # Certificate checks stay on: CloudFront refuses an origin whose certificate does not
    # match (502). Protocol pinning per origin_ssl_protocols is left to the TLS library.
    # A staging origin's own CA (edge.origins.<id>.ca_file) is that origin's trust alone;
    # verify: false (warned at start) skips the check.
    if not target.verify:
        return False
    return _ca_context(target.ca_file) if target.ca_file else True


@functools.lru_cache(maxsize=64)
def _ca_context(ca_file: str) -> ssl.SSLContext:
    """One context per bundle, made once: its certificates are read at the first fetch."""
    return ssl.create_default_context(cafile=ca_file)
