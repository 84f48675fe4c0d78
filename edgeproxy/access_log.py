"""One access line per exchange, in the field order of CloudFront's standard logs (tab
separated, ``-`` for empty), plus the stages that ran. Formatted only when the access logger
is enabled, so a quiet edge pays nothing for it.

A WebSocket is logged as CloudFront logs one (standard log fields, AWS AccessLogs page): when
its connection closes (date and time), with cs-protocol ``ws``/``wss`` and the bytes the
connection carried each way as sc-bytes and cs-bytes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import quote

from edgeproxy.exchange import Exchange
from edgeproxy.messages import EdgeRequest, EdgeResponse, SwitchedConnection, header_value

# cs-protocol of the access log for a WebSocket, by the viewer's scheme (CloudFront's
# standard log: http, https, ws or wss).
WEBSOCKET_PROTOCOLS = {"http": "ws", "https": "wss"}

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


def log_access(
    logger: logging.Logger,
    ex: Exchange,
    request: EdgeRequest,
    response: EdgeResponse,
    pop: str,
    clock: Callable[[], float],
) -> None:
    """Log the exchange's line now, or a WebSocket's once its tunnel closes."""
    tunnel = response.tunnel
    if tunnel is None:
        logger.info("%s", access_line(ex, request, response, pop, clock()))
        return

    def closed() -> None:
        logger.info("%s", access_line(ex, request, response, pop, clock(), tunnel))

    tunnel.on_close.append(closed)


def access_line(
    ex: Exchange,
    request: EdgeRequest,
    response: EdgeResponse,
    pop: str,
    now: float,
    tunnel: SwitchedConnection | None = None,
) -> str:
    """The exchange as one tab-separated line, fields as ``FIELDS`` names them; ``tunnel``:
    a WebSocket's line, written when it closed at ``now``."""
    headers = request.headers
    tls = request.tls.split(":")
    size, received, when, protocol = len(response.body), request.body_size, ex.started, ""
    if tunnel is not None:
        size, received, when = tunnel.sent, tunnel.received, now
        protocol = WEBSOCKET_PROTOCOLS.get(request.scheme, "")
    values = (
        time.strftime("%Y-%m-%d", time.gmtime(when)),
        time.strftime("%H:%M:%S", time.gmtime(when)),
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
        protocol or request.scheme,
        str(received),
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
