"""The origin client: one keep-alive pool, timeouts, hop-by-hop headers, error mapping.

This is one of the three modules that touch sockets (with server.py and admin.py). Every
aiohttp error is converted here, once, into the edge's own ``OriginError`` tree.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict
from yarl import URL

from .errors import OriginConnectError, OriginResponseError, OriginTimeout
from .messages import EdgeRequest, EdgeResponse, Headers, OriginTarget

# Hop-by-hop headers (RFC 9110 7.6.1) plus those CloudFront strips from origin answers
# (reference 6.3): never passed from one connection to the next.
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

# The body length is ours to set on the way out.
_DROP_FROM_ORIGIN = HOP_BY_HOP | {"content-length"}

# aiohttp adds these on its own unless told not to; the edge decides them itself.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


class StaticResolver(AbstractResolver):
    """Resolves names from ``edge.resolve`` and literal addresses; nothing else is looked up
    unless a fallback resolver is given (tests never reach DNS)."""

    def __init__(self, table: Mapping[str, str], fallback: AbstractResolver | None) -> None:
        self._table = {"localhost": "127.0.0.1", **table}
        self._fallback = fallback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self._table.get(host, host)
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            if self._fallback is None:
                raise OSError(f"cannot resolve {host!r}: not in edge.resolve") from None
            return await self._fallback.resolve(host, port, family)
        fam = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        return [
            {
                "hostname": host,
                "host": str(ip),
                "port": port,
                "family": fam,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        if self._fallback is not None:
            await self._fallback.close()


class OriginClient:
    """Fetches from origins over one shared keep-alive pool."""

    def __init__(self, resolve: Mapping[str, str], *, use_dns: bool = True) -> None:
        self._resolve = dict(resolve)
        self._use_dns = use_dns
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        fallback = aiohttp.DefaultResolver() if self._use_dns else None
        connector = aiohttp.TCPConnector(
            resolver=StaticResolver(self._resolve, fallback),
            limit=0,
            keepalive_timeout=5.0,
            use_dns_cache=False,
        )
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=_NO_AUTO_HEADERS,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, request: EdgeRequest, headers: Headers) -> EdgeResponse:
        """Send ``request`` to ``request.origin`` with exactly ``headers``; retry connection
        failures up to the origin's connection attempts, as CloudFront does."""
        target = request.origin
        assert target is not None, "the pipeline sets the origin before fetching"
        if self._session is None:
            self._session = self._open()
        attempts = max(1, target.connection_attempts)
        for attempt in range(1, attempts + 1):
            try:
                return await self._fetch_once(self._session, request, target, headers)
            except OriginConnectError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    async def _fetch_once(
        self,
        session: aiohttp.ClientSession,
        request: EdgeRequest,
        target: OriginTarget,
        headers: Headers,
    ) -> EdgeResponse:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=target.connection_timeout, sock_read=target.read_timeout
        )
        try:
            async with session.request(
                request.method,
                origin_url(request, target),
                headers=_multidict(headers),
                data=request.body or None,
                allow_redirects=False,
                timeout=timeout,
                ssl=_ssl_setting(target),
            ) as resp:
                body = await resp.read()
                return EdgeResponse(resp.status, _response_headers(resp), body, resp.reason or "")
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise OriginTimeout(f"origin {target.domain_name} did not answer in time") from exc
        except (aiohttp.ClientConnectorError, OSError) as exc:
            raise OriginConnectError(f"cannot connect to {target.domain_name}: {exc}") from exc
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
            raise OriginResponseError(f"bad answer from {target.domain_name}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise OriginResponseError(f"origin {target.domain_name} failed: {exc}") from exc


def origin_url(request: EdgeRequest, target: OriginTarget) -> URL:
    """The URL the edge requests: origin path prefix + the request's path and query, as the
    viewer (or a handler) wrote them (already encoded, so never re-encoded here)."""
    host = target.domain_name
    if ":" in host:  # an IPv6 literal, allowed locally
        host = f"[{host}]"
    raw = f"{target.protocol}://{host}:{target.port}{target.path}{request.target}"
    return URL(raw, encoded=True)


def _multidict(headers: Headers) -> CIMultiDict[str]:
    return CIMultiDict(headers)


def _ssl_setting(target: OriginTarget) -> bool:
    # Certificate checks stay on: CloudFront refuses an origin whose certificate does not
    # match (502). Protocol pinning per origin_ssl_protocols is left to the TLS library.
    return True


def _response_headers(resp: aiohttp.ClientResponse) -> Headers:
    return [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in resp.raw_headers
        if k.decode("latin-1").lower() not in _DROP_FROM_ORIGIN
    ]
