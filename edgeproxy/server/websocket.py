"""HTTP Upgrade at the edge: which upgrade is a WebSocket, what any other becomes, and the
head that switches a viewer's connection; the tunnel itself is ``origin/tunnel.py``'s.

Theory of operation
-------------------
llhttp stops at the head of any request with ``Connection: Upgrade`` and ``Upgrade``,
before its body, and leaves the rest of the bytes to the caller. The viewer protocol
(``server/protocol.py``) asks ``is_websocket``:

* no (``Upgrade: h2c`` from ``curl --http2``, a POST with ``Upgrade: websocket``, anything
  else): the edge speaks HTTP/1.1 only, so the upgrade is ignored. ``plain_head`` gives the
  head again without it (Upgrade, HTTP2-Settings and those tokens of Connection), and that
  head and the bytes after it are parsed again: the body is framed by its Content-Length or
  chunks like any request's, never read as a next request (request smuggling), and no 101 is
  ever sent for it.
* yes (a GET over HTTP/1.1 with ``Upgrade: websocket`` and no body): CloudFront tunnels
  WebSockets on every behavior. The request takes the one flow (``Edge.handle``) with
  ``EdgeRequest.websocket`` set: viewer policy, viewer-request, origin-request, no cache
  lookup and nothing stored (``docs/caching.md``, WebSockets). ``open_tunnel`` is its
  origin fetch: a connection of its own, the handshake sent with ``Upgrade: websocket`` and
  ``Connection: Upgrade`` (the viewer's Sec-WebSocket-* headers reach the origin when the
  behavior forwards them, as on CloudFront). A 101 comes back as an ``EdgeResponse`` holding
  the ``Tunnel``; any other answer is a normal response and the connection closes after it.

After the 101 is relayed (``switch_head``), ``Tunnel.relay`` copies bytes both ways unchanged
until either side closes, or the origin sends nothing for the idle timeout (CloudFront's
10-minute WebSocket idle quota by default, ``limits.TUNNEL_IDLE_TIMEOUT_S``). Each direction
waits for the other side's buffer to drain, so neither grows without bound.
"""

from __future__ import annotations

from http import HTTPStatus

from edgeproxy.messages import EdgeResponse, Headers, header_value

# What belongs to an upgrade the edge does not perform: never forwarded, never seen by a
# function (RFC 9113 3.1 retired h2c; HTTP2-Settings exists only for it).
_UPGRADE_HEADERS = frozenset({"upgrade", "http2-settings"})

# -- the viewer's request --------------------------------------------------------------------


def is_websocket(method: bytes, version: str, headers: Headers) -> bool:
    """A WebSocket handshake (RFC 6455 4.1): GET over HTTP/1.1, ``Upgrade: websocket``, no
    body. (``Connection: Upgrade`` is what made llhttp stop at the head.)"""
    if method != b"GET" or version != "1.1":
        return False
    upgrade = header_value(headers, "upgrade")
    if upgrade is None or upgrade.strip().lower() != "websocket":
        return False
    length = header_value(headers, "content-length")
    chunked = header_value(headers, "transfer-encoding") is not None
    return not chunked and (length is None or length.strip() == "0")


def plain_head(method: bytes, url: bytes, version: str, headers: Headers) -> bytes:
    """The request's head without its upgrade: to be parsed again, so its body is framed
    like any request's. Connection keeps its other tokens (close, keep-alive)."""
    lines = [f"{method.decode('ascii')} {url.decode('latin-1')} HTTP/{version}"]
    for name, value in headers:
        lname = name.lower()
        if lname in _UPGRADE_HEADERS:
            continue
        if lname == "connection":
            tokens = [t for t in value.split(",") if t.strip().lower() not in _UPGRADE_HEADERS]
            value = ",".join(tokens).strip()
            if not value:
                continue
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def switch_head(response: EdgeResponse) -> bytes:
    """The 101 the viewer gets: the origin's headers (hop-by-hop ones dropped where the
    answer entered the edge) with CloudFront's, and the upgrade itself."""
    reason = response.reason or HTTPStatus.SWITCHING_PROTOCOLS.phrase
    lines = [f"HTTP/1.1 101 {reason}", *(f"{k}: {v}" for k, v in response.headers)]
    lines += ["Upgrade: websocket", "Connection: Upgrade"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
