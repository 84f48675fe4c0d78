"""Headers between the edge and an origin: hop-by-hop ones (RFC 9110 7.6.1) and those
CloudFront strips, the names a Connection header lists, the size of an answer's head, and the
Content-Length of a body the edge holds."""

from __future__ import annotations

import aiohttp
from multidict import CIMultiDict

from edgeproxy.limits import MAX_REQUEST_HEAD
from edgeproxy.messages import Headers, OriginTarget

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


def head_size(resp: aiohttp.ClientResponse) -> int:
    """Bytes of the answer's status line and headers, as they came on the wire."""
    status_line = len(f"HTTP/1.1 {resp.status} {resp.reason or ''}\r\n")
    return status_line + sum(len(k) + len(v) + 4 for k, v in resp.raw_headers) + 2


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


# The origin's Transfer-Encoding stays with its answer, although hop-by-hop: CloudFront shows
# it in the origin-response event, where it is read-only (reference 4.2; a function deleting
# it gets the 502, serverless-express#369), and an answer that came chunked goes on chunked
# (DG RequestAndResponseBehaviorCustomOrigin, "Transfer Encoding"). The viewer's head is
# framed by the edge alone (``server/head.py`` reads it, never copies it).
_KEPT_FROM_ORIGIN = frozenset({"transfer-encoding"})


def fetch_headers(headers: Headers, target: OriginTarget) -> CIMultiDict[str]:
    """``outgoing_headers`` plus ``Connection: Keep-Alive``: CloudFront "replaces this header
    with Connection: Keep-Alive before forwarding the request to your origin" [DG
    RequestAndResponseBehaviorCustomOrigin]. (A WebSocket handshake says Upgrade instead:
    origin/tunnel.py writes its own.)"""
    out = outgoing_headers(headers, target)
    out["Connection"] = "Keep-Alive"
    return out


def response_headers(resp: aiohttp.ClientResponse) -> Headers:
    """The origin's headers as sent, minus hop-by-hop ones (but Transfer-Encoding) and
    those its Connection names."""
    raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers]
    return without_hop_by_hop(raw, keep=_KEPT_FROM_ORIGIN)


def without_hop_by_hop(headers: Headers, keep: frozenset[str] = frozenset()) -> Headers:
    """``headers`` (an origin's answer) minus hop-by-hop ones and those Connection names,
    except the names in ``keep``."""
    drop = (HOP_BY_HOP | _connection_named(headers)) - keep
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
