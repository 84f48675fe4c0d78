"""Checks on a viewer request that need no I/O: CloudFront's size and method refusals, and
whether a request can take the quick hit path or needs the full flow."""

from __future__ import annotations

from .errors import BodyNotAllowed, RequestTooLarge
from .limits import MAX_URL_LENGTH
from .messages import EdgeRequest, Headers

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
    if url_too_long(request):
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


def check_limits(request: EdgeRequest) -> None:
    """CloudFront's refusals before anything runs (reference 1, step 1)."""
    if url_too_long(request):
        raise RequestTooLarge("URL over 8,192 bytes")
    if request.method == "GET" and request.has_body:
        raise BodyNotAllowed("a GET request with a body")
