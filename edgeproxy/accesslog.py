"""One access line per exchange, in the field order of CloudFront's standard logs (tab
separated, ``-`` for empty), plus the stages that ran. Formatted only when the access logger
is enabled, so a quiet edge pays nothing for it."""

from __future__ import annotations

import time
from urllib.parse import quote

from .exchange import Exchange
from .messages import EdgeRequest, EdgeResponse, header_value

# CloudFront's x-edge-result-type per X-Cache value (reference 6.5).
RESULT_TYPES = {
    "Hit from cloudfront": "Hit",
    "RefreshHit from cloudfront": "RefreshHit",
    "Miss from cloudfront": "Miss",
    "Redirect from cloudfront": "Redirect",
    "Error from cloudfront": "Error",
    "LambdaGeneratedResponse from cloudfront": "LambdaGeneratedResponse",
    "LambdaValidationError from cloudfront": "LambdaValidationError",
    "LambdaExecutionError from cloudfront": "LambdaExecutionError",
    "LambdaLimitExceeded from cloudfront": "LambdaLimitExceeded",
}

FIELDS = (
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status "
    "cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id "
    "x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher "
    "cs-protocol-version c-port sc-content-type sc-content-len x-edgeproxy-stages"
).split()


def access_line(
    ex: Exchange, request: EdgeRequest, response: EdgeResponse, pop: str, now: float
) -> str:
    """The exchange as one tab-separated line, fields as ``FIELDS`` names them."""
    headers = request.headers
    tls = request.tls.split(":")
    size = len(response.body)
    values = (
        time.strftime("%Y-%m-%d", time.gmtime(ex.started)),
        time.strftime("%H:%M:%S", time.gmtime(ex.started)),
        pop,
        str(size),
        request.client_ip,
        request.method,
        header_value(headers, "host"),
        request.uri,
        str(ex.status),
        header_value(headers, "referer"),
        header_value(headers, "user-agent"),
        request.querystring,
        header_value(headers, "cookie"),
        RESULT_TYPES.get(ex.x_cache, "Error"),
        ex.request_id,
        header_value(headers, "host"),
        request.scheme,
        str(request.body_size),
        f"{max(0.0, now - ex.started):.3f}",
        header_value(headers, "x-forwarded-for"),
        tls[0] if len(tls) == 3 else None,
        tls[1] if len(tls) == 3 else None,
        f"HTTP/{request.http_version}",
        str(request.client_port),
        header_value(response.headers, "content-type"),
        str(size),
        ",".join(ex.stages),
    )
    return "\t".join(_field(v) for v in values)


def _field(value: str | None) -> str:
    # CloudFront URL-encodes spaces and other unsafe characters in its log fields.
    return quote(value, safe="/:;,=&?*!$'()@+-._~%") if value else "-"
