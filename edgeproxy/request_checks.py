"""Checks on a viewer request that need no I/O: CloudFront's size and method refusals, what
it removes from a request as it takes it in, and whether a request can take the quick hit
path or needs the full flow."""

from __future__ import annotations

from dataclasses import replace

from .errors import BodyNotAllowed, RequestTooLarge
from .limits import MAX_URL_LENGTH
from .messages import EdgeRequest, Headers, without_headers

# Viewer headers after which only the full flow answers: the edge answers conditionals and
# ranges itself (``_from_object``), and CloudFront-* headers are trusted or removed.
FULL_FLOW_HEADERS = frozenset(
    {"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"}
)


def url_too_long(request: EdgeRequest) -> bool:
    """Path plus ``?query`` over 8,192 bytes: CloudFront's 413 (reference 1, step 1)."""
    query = len(request.querystring)
    return len(request.uri) + (query + 1 if query else 0) > MAX_URL_LENGTH


def needs_full_flow(request: EdgeRequest) -> bool:
    """Whether anything but the cache lookup could apply to this request's answer."""
    # a WebSocket is never looked up; 1.0: see ``as_received``
    if url_too_long(request) or request.websocket or request.http_version == "1.0":
        return True
    for name, _ in request.headers:
        first = name[0]
        if first in "iIrR" and name.lower() in FULL_FLOW_HEADERS:
            return True
        if first in "cC" and len(name) > 11 and name[:11].lower() == "cloudfront-":
            return True
    return False


NOTHING_TRUSTED: dict[str, str] = {}  # never written: split_viewer_cf_headers makes its own


def names_cloudfront_header(headers: Headers) -> bool:
    """Whether the viewer sent any ``CloudFront-*`` header (cheap: most never do)."""
    for name, _ in headers:
        if len(name) > 11 and name[0] in "cC" and name[:11].lower() == "cloudfront-":
            return True
    return False


_ACCEPT_ENCODING = frozenset({"accept-encoding"})


def as_received(request: EdgeRequest) -> EdgeRequest:
    """The request as CloudFront takes it in: an HTTP/1.0 viewer's Accept-Encoding removed
    (reference 7.9, DG ServingCompressedFiles), before anything reads it, so the cache key,
    the request to the origin and compression all see a viewer that accepts no encoding:
    the origin is never asked for a compressed body that would be stored under the identity
    key. Whether viewer-request sees the header CloudFront does not say [inf]: here not."""
    if request.http_version != "1.0":
        return request
    return replace(request, headers=without_headers(request.headers, _ACCEPT_ENCODING))


def check_limits(request: EdgeRequest) -> None:
    """CloudFront's refusals before anything runs (reference 1, step 1)."""
    if url_too_long(request):
        raise RequestTooLarge("URL over 8,192 bytes")
    if request.method == "GET" and request.body:
        raise BodyNotAllowed("a GET request with a body")
