"""The origin client: one keep-alive pool, CloudFront's connection attempts and timeouts, its
limits on what an origin may send, hop-by-hop headers, and error mapping.

This is one of the three modules that touch sockets (with server/listeners.py and
admin/api.py). Every
aiohttp error is converted once, into the edge's own ``OriginError`` tree, by the table in
``origin_retries``, which also says when another attempt follows (reference 4.7, 7.12).

A body within ``max_body`` bytes is read whole (a partial one is an error, never an answer);
a larger one, announced by its Content-Length or growing past the limit while read, comes
back as ``EdgeResponse.stream`` (an ``OriginStream``), which the caller passes on and never
caches.

A pooled connection is reused only while its origin sends exactly the answers asked for
(``origin_connection``): any byte between an answer and the next request closes it.

``edge.resolve`` maps origin names to local addresses; an entry with a port
(``"eu.example.com": "127.0.0.1:8081"``) also replaces the origin's port and protocol: that
name is fetched at that address over plain HTTP, so a local server can stand in for a real
host (the Host header still names it).
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Mapping

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict
from yarl import URL

from edgeproxy.config.edge_settings import resolve_address
from edgeproxy.errors import OriginDnsError, OriginResponseError
from edgeproxy.limits import MAX_REQUEST_HEAD
from edgeproxy.messages import EdgeRequest, EdgeResponse, Headers, OriginTarget
from edgeproxy.origin.connection import OriginConnector
from edgeproxy.origin.retries import AttemptFailed, AttemptTrace, converted, is_stale, mark_reused

# Hop-by-hop headers (RFC 9110 7.6.1) plus those CloudFront strips from origin answers
# (reference 6.3): never passed from one connection to the next, in either direction.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# Toward the origin the body is framed by us: a viewer's body streams on as it came, with its
# Content-Length or chunked (CloudFront forwards both headers), a body the edge holds goes
# with its own length (aiohttp sets both). Expect is dropped, as CloudFront does: the edge
# answers the viewer's 100-continue itself, once the body is needed.
_DROP_TO_ORIGIN = HOP_BY_HOP | {"content-length", "expect"}

# Names the edge writes itself: a viewer's ``Connection: <name>`` never removes them.
_EDGE_OWNED = frozenset({"host", "via", "x-forwarded-for", "x-amz-cf-id", "user-agent"})

# CloudFront's 20,480-byte limit on a request head also applies to origin answers (ref. 5).
MAX_RESPONSE_HEAD = MAX_REQUEST_HEAD

# The default of edge.cache.max_object_bytes: bodies over it are streamed, not held.
DEFAULT_MAX_BODY = 64 * 1024 * 1024

# aiohttp adds these on its own unless told not to; the edge decides them itself.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")

# Answers without a body whatever their Content-Length says (it describes the GET body).
_NO_BODY_STATUSES = frozenset({204, 304})


class StaticResolver(AbstractResolver):
    """Resolves names from ``edge.resolve`` and literal addresses; nothing else is looked up
    unless a fallback resolver is given (tests never reach DNS)."""

    def __init__(self, table: Mapping[str, str], fallback: AbstractResolver | None) -> None:
        self._table = {"localhost": "127.0.0.1", **table}
        self._fallback = fallback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self._table.get(host.lower(), host)
        try:
            ip = _ip_family(address)
        except ValueError:
            if self._fallback is None:
                raise OSError(f"cannot resolve {host!r}: not in edge.resolve") from None
            return await self._fallback.resolve(host, port, family)
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": ip,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        if self._fallback is not None:
            await self._fallback.close()


def _ip_family(address: str) -> socket.AddressFamily:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, address)
        except OSError:
            continue
        return family
    raise ValueError(address)


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
        tracing = aiohttp.TraceConfig()
        tracing.on_connection_reuseconn.append(mark_reused)
        connector = OriginConnector(
            resolver=StaticResolver(self._addresses, fallback),
            limit=0,
            keepalive_timeout=5.0,
            use_dns_cache=False,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=_NO_AUTO_HEADERS,
            cookie_jar=aiohttp.DummyCookieJar(),
            trace_configs=[tracing],
            # Lines and fields up to the whole head limit; the total is checked per answer.
            max_line_size=MAX_RESPONSE_HEAD,
            max_field_size=MAX_RESPONSE_HEAD,
            max_headers=MAX_RESPONSE_HEAD // 4,
        )
        # aiohttp retries an idempotent request once on its own when any connection drops
        # before the answer; here attempts are counted (connection_attempts) and only a stale
        # pooled connection gets a free retry. There is no public switch: aiohttp's own test
        # client turns it off the same way.
        session._retry_connection = False
        return session

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
            trace = AttemptTrace()
            try:
                return await self._attempt(self._session, request, target, headers, trace)
            except AttemptFailed as failed:
                if not _sendable_again(request):
                    raise failed.error from failed.__cause__
                if stale_retry and is_stale(failed, trace, request.method):
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
        trace: AttemptTrace,
    ) -> EdgeResponse:
        protocol, port = self.wire_target(target)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=target.connection_timeout, sock_read=target.read_timeout
        )
        sent = outgoing_headers(headers, target)
        stream = request.body_stream
        if stream is not None and stream.length is not None:
            sent["Content-Length"] = str(stream.length)  # else aiohttp sends it chunked
        try:
            resp = await session.request(
                request.method,
                origin_url(request, target, protocol, port),
                headers=sent,
                data=stream if stream is not None else request.body or None,
                allow_redirects=False,
                timeout=timeout,
                ssl=_ssl_setting(target),
                trace_request_ctx=trace,
            )
        except (aiohttp.ClientError, OSError) as exc:
            if stream is not None and stream.error is not None:
                raise stream.error from exc  # the viewer's body failed, not the origin
            raise AttemptFailed(*converted(exc, target.domain_name)) from exc
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


class OriginStream:
    """An origin body too large to hold, passed on chunk by chunk as it arrives.

    Iterating yields the chunks; a body that ends short of its Content-Length (or an
    incomplete chunked one) raises ``OriginResponseError``, a stalled one ``OriginTimeout``.
    ``aclose()`` before the end drops the origin connection; the end returns it to the pool.
    """

    def __init__(
        self, resp: aiohttp.ClientResponse, host: str, first: list[bytes] | None = None
    ) -> None:
        self._resp = resp
        self._host = host
        self._first = deque(first or ())
        self._done = False

    def __aiter__(self) -> OriginStream:
        return self

    async def __anext__(self) -> bytes:
        if self._first:
            return self._first.popleft()
        if self._done:
            raise StopAsyncIteration
        try:
            data = await self._resp.content.readany()
        except (aiohttp.ClientError, OSError) as exc:
            self._drop()
            raise converted(exc, self._host)[0] from exc
        except BaseException:
            self._drop()
            raise
        if not data:
            self._done = True
            self._resp.release()
            raise StopAsyncIteration
        return data

    async def aclose(self) -> None:
        if not self._done:
            self._drop()

    def _drop(self) -> None:
        self._done = True
        self._first.clear()
        self._resp.close()


async def read_up_to(content: aiohttp.StreamReader, limit: int) -> tuple[list[bytes], bool]:
    """The body's chunks until its end (True) or until they pass ``limit`` bytes (False)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        data = await content.readany()
        if not data:
            return chunks, True
        chunks.append(data)
        size += len(data)
    return chunks, False


def head_size(resp: aiohttp.ClientResponse) -> int:
    """Bytes of the answer's status line and headers, as they came on the wire."""
    status_line = len(f"HTTP/1.1 {resp.status} {resp.reason or ''}\r\n")
    return status_line + sum(len(k) + len(v) + 4 for k, v in resp.raw_headers) + 2


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


def _connection_named(headers: Headers) -> frozenset[str]:
    """Names listed in Connection headers: hop-by-hop for this connection only."""
    return frozenset(
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    )


def outgoing_headers(headers: Headers, target: OriginTarget) -> CIMultiDict[str]:
    """``headers`` minus hop-by-hop and framing ones; a name in Connection goes too unless
    the edge itself sets it (Host, Via, X-Forwarded-For, CloudFront-*, custom headers)."""
    kept = _EDGE_OWNED | {name.lower() for name, _ in target.custom_headers}
    named = {n for n in _connection_named(headers) - kept if not n.startswith("cloudfront-")}
    drop = _DROP_TO_ORIGIN | named
    # aiohttp replaces, rather than adds, a repeated name written in another case (its
    # ClientSession compares names case-sensitively there): each repeat takes the case of
    # the name's first line, so every value reaches the origin.
    spelled: dict[str, str] = {}
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers:
        lname = name.lower()
        if lname not in drop:
            out.add(spelled.setdefault(lname, name), value)
    return out


def response_headers(resp: aiohttp.ClientResponse) -> Headers:
    """The origin's headers as sent, minus hop-by-hop ones and those its Connection names."""
    raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers]
    return without_hop_by_hop(raw)


def without_hop_by_hop(headers: Headers) -> Headers:
    """``headers`` (an origin's answer) minus hop-by-hop ones and those Connection names."""
    drop = HOP_BY_HOP | _connection_named(headers)
    return [(k, v) for k, v in headers if k.lower() not in drop]


def with_length(headers: Headers, length: int) -> Headers:
    """``headers`` whose Content-Length (if the origin sent one) is ``length``, the bytes
    actually received; no Content-Length is added where the origin sent none (chunked)."""
    out: Headers = []
    for name, value in headers:
        if name.lower() != "content-length":
            out.append((name, value))
        elif not any(n.lower() == "content-length" for n, _ in out):
            out.append((name, str(length)))
    return out


def _sendable_again(request: EdgeRequest) -> bool:
    """Whether another attempt can send the same request: not once a streamed viewer body
    began to go out (its bytes are gone)."""
    return request.body_stream is None or not request.body_stream.started


def _ssl_setting(target: OriginTarget) -> bool:
    # Certificate checks stay on: CloudFront refuses an origin whose certificate does not
    # match (502). Protocol pinning per origin_ssl_protocols is left to the TLS library.
    return True
