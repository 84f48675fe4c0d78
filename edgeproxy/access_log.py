"""One access line per exchange, in the field order of CloudFront's standard logs (tab
separated, ``-`` for empty), plus the stages that ran. Formatted only when the access logger
is enabled, so a quiet edge pays nothing for it.

A WebSocket is logged as CloudFront logs one (standard log fields, AWS AccessLogs page): when
its connection closes (date and time), with cs-protocol ``ws``/``wss`` and the bytes the
connection carried each way as sc-bytes and cs-bytes."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from functools import partial
from urllib.parse import quote

from edgeproxy.exchange import Exchange
from edgeproxy.messages import (
    EdgeRequest,
    EdgeResponse,
    Headers,
    SwitchedConnection,
)

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
    "FunctionGeneratedResponse from cloudfront": "FunctionGeneratedResponse",
}

# x-edge-detailed-result-type when the result type is Error: the specific error, by our
# error class (AWS AccessLogs page, "x-edge-detailed-result-type"); any other: "Error".
DETAILED_ERRORS = {
    "OriginConnectError": "OriginConnectError",
    "OriginDnsError": "OriginDnsError",
    "OriginTimeout": "OriginReadError",
    "OriginResponseError": "OriginInvalidResponseError",
    "OriginError": "OriginError",
    "GeoBlocked": "ClientGeoBlocked",
    "MethodNotAllowed": "InvalidRequestMethod",
    "BadRequest": "InvalidRequest",
    "RequestTooLarge": "InvalidRequest",
    "UnknownHost": "InvalidRequest",
}

# CloudFront's standard log (legacy) fields, in its order (AWS AccessLogs page, "Standard log
# file fields"), then ours: the stages that ran. ``#Fields:`` names them in a log's header.
FIELDS = (
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status "
    "cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id "
    "x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher "
    "x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port "
    "time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len "
    "sc-range-start sc-range-end x-edgeproxy-stages"
).split()


def header_lines() -> str:
    """What a CloudFront standard log file starts with."""
    return "#Version: 1.0\n#Fields: " + " ".join(FIELDS) + "\n"


EMPTY = "-"  # an empty field, in CloudFront's standard logs


class AccessRecord:
    """One exchange's field values (``FIELDS`` order, ``EMPTY`` for empty), formatted only
    when a handler writes it: tab separated (str) or as a JSON object (``as_json``)."""

    __slots__ = ("values", "when")

    def __init__(self, values: tuple[str, ...], when: float) -> None:
        self.values = values
        self.when = when

    def __str__(self) -> str:
        # Most lines need no encoding: joined as they are, one match proves it (only safe
        # characters, and no tab inside a value: the tabs are the separators). Else field by
        # field.
        line = "\t".join(self.values)
        if _SAFE_LINE.fullmatch(line) is not None and line.count("\t") == _TABS:
            return line
        return "\t".join([_field(v) for v in self.values])

    def as_json(self) -> str:
        """Like a CloudFront real-time log record: ``timestamp`` (epoch seconds, ms), then
        the fields by name, as received (JSON escapes what a TSV line URL-encodes), null for
        an empty one."""
        fields: dict[str, object] = {"timestamp": round(self.when, 3)}
        fields.update(
            (name, None if value == EMPTY else value)
            for name, value in zip(FIELDS[2:], self.values[2:], strict=True)
        )
        return json.dumps(fields, separators=(",", ":"))


AccessWriter = Callable[[AccessRecord], None]

# Where the lines go when ``edgeproxy serve`` configured the access log (log_setup.py): a
# buffer written out in batches, without ``logging``'s per-record work. Unset (tests, an
# edge in someone's process), lines go to the ``edgeproxy.access`` logger.
_writer: AccessWriter | None = None


def set_access_writer(writer: AccessWriter | None) -> None:
    """Send access records to ``writer`` instead of the logger (None: the logger again)."""
    global _writer
    _writer = writer


def log_access(
    logger: logging.Logger,
    ex: Exchange,
    request: EdgeRequest,
    response: EdgeResponse,
    pop: str,
    clock: Callable[[], float],
) -> None:
    """Log the exchange's line now, or a WebSocket's once its tunnel closes. The caller
    checked that ``logger`` is enabled for INFO (``--log-level`` and ``off`` silence it)."""
    write = _writer or partial(logger.info, "%s")
    tunnel = response.tunnel
    if tunnel is None:
        write(access_record(ex, request, response, pop, clock()))
        return

    def closed() -> None:
        write(access_record(ex, request, response, pop, clock(), tunnel))

    tunnel.on_close.append(closed)


def access_line(
    ex: Exchange,
    request: EdgeRequest,
    response: EdgeResponse,
    pop: str,
    now: float,
    tunnel: SwitchedConnection | None = None,
) -> str:
    """The exchange as one tab-separated line, fields as ``FIELDS`` names them."""
    return str(access_record(ex, request, response, pop, now, tunnel))


def access_record(
    ex: Exchange,
    request: EdgeRequest,
    response: EdgeResponse,
    pop: str,
    now: float,
    tunnel: SwitchedConnection | None = None,
) -> AccessRecord:
    """The exchange's fields; ``tunnel``: a WebSocket's, written when it closed at ``now``."""
    seen = _first_values(request.headers, _LOGGED_HEADERS)
    tls = request.tls.split(":") if request.tls else ()
    size, received, when, protocol = len(response.body), request.body_size, ex.started, ""
    if tunnel is not None:
        size, received, when = tunnel.sent, tunnel.received, now
        protocol = WEBSOCKET_PROTOCOLS.get(request.scheme, "")
    result = RESULT_TYPES.get(ex.x_cache, "Error")
    taken = "%.3f" % (now - ex.started if now > ex.started else 0.0)
    answer = _first_values(response.headers, _RESPONSE_HEADERS)
    first, last = _range(answer.get("content-range"))
    host = seen.get("host") or EMPTY
    date, clock = _date_time(when)
    sent = str(size)
    values = (
        date,
        clock,
        pop or EMPTY,
        sent,
        request.client_ip or EMPTY,
        request.method,
        host,
        request.uri,
        str(ex.status),
        seen.get("referer") or EMPTY,
        seen.get("user-agent") or EMPTY,
        request.querystring or EMPTY,
        seen.get("cookie") or EMPTY,
        result,
        ex.request_id,
        host,
        protocol or request.scheme,
        str(received),
        taken,
        seen.get("x-forwarded-for") or EMPTY,
        tls[0] if len(tls) == 3 else EMPTY,
        tls[1] if len(tls) == 3 else EMPTY,
        result,  # x-edge-response-result-type: no viewer hung up on us that we record
        _PROTOCOL_VERSIONS.get(request.http_version) or f"HTTP/{request.http_version}",
        EMPTY,  # fle-status: no field-level encryption
        EMPTY,  # fle-encrypted-fields
        str(request.client_port),
        taken,  # time-to-first-byte: the edge writes a response as a whole
        result if result != "Error" else _detailed(ex),
        answer.get("content-type") or EMPTY,
        sent,
        first,
        last,
        ",".join(ex.stages) or EMPTY,
    )
    return AccessRecord(values, when)


# The viewer's headers a line holds (the first of each name, as ``header_value`` reads), and
# the response's.
_LOGGED_HEADERS = frozenset({"host", "referer", "user-agent", "cookie", "x-forwarded-for"})
_RESPONSE_HEADERS = frozenset({"content-type", "content-range"})
_PROTOCOL_VERSIONS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}


def _first_values(headers: Headers, names: frozenset[str]) -> dict[str, str]:
    """The first value of each of ``names`` in ``headers``, in one pass."""
    seen: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in names and lower not in seen:
            seen[lower] = value
    return seen


_last_second: tuple[int, tuple[str, str]] = (-1, ("", ""))


def _date_time(when: float) -> tuple[str, str]:
    """The date and time fields (UTC) of ``when``: formatted once a second, not per line."""
    global _last_second
    second = int(when)
    if _last_second[0] != second:
        stamp = time.gmtime(second)
        _last_second = (
            second,
            (time.strftime("%Y-%m-%d", stamp), time.strftime("%H:%M:%S", stamp)),
        )
    return _last_second[1]


def _detailed(ex: Exchange) -> str:
    """x-edge-detailed-result-type of an Error."""
    if ex.error_type is None:
        return "Error"
    return DETAILED_ERRORS.get(ex.error_type.__name__, "Error")


def _range(content_range: str | None) -> tuple[str, str]:
    """sc-range-start and sc-range-end of a ``Content-Range: bytes a-b/n`` answer."""
    if not content_range or not content_range.startswith("bytes "):
        return EMPTY, EMPTY
    first, _, last = content_range[6:].partition("/")[0].partition("-")
    if not (first.isdigit() and last.isdigit()):
        return EMPTY, EMPTY
    return first, last


# CloudFront URL-encodes spaces and other unsafe characters in its log fields: these are safe.
_SAFE = "/:;,=&?*!$'()@+-._~%"
# A value with none but these characters is its own encoding: most are, and the check is a
# fraction of what ``quote`` costs.
_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9" + re.escape(_SAFE) + "]")
_SAFE_LINE = re.compile(r"[\tA-Za-z0-9" + re.escape(_SAFE) + "]*")  # a line's tabs too
_TABS = len(FIELDS) - 1


def _field(value: str) -> str:
    if not value:
        return EMPTY
    return quote(value, safe=_SAFE) if _NEEDS_QUOTING.search(value) else value
