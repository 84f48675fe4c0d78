"""CloudFront event JSON ⇄ the edge's own values (reference section 2).

Building: ``request_event`` and ``response_event`` make the ``{"Records": [{"cf": …}]}`` dict a
handler receives. Headers become CloudFront's map (lower-case name → list of ``{key, value}``,
one entry per occurrence, in order); disallowed headers (reference 4.1) are left out, as
CloudFront never shows them.

Converting back (after ``validation`` accepted the result): ``request_from_result``,
``response_from_result`` and ``generated_response``. A result with a ``status`` key from a
request stage is a generated response (CloudFront does not document how it tells; the
serverless-offline-edge-lambda simulator uses the same test). Header entries without ``key``
get the map key title-cased; an entry whose ``key`` names another header than its map key is
sent under the map key title-cased (reference section 10 #10).

Headers the handler never saw (disallowed ones) are kept as they were; when the handler left
the visible headers as they were, the original list is copied as is, so a round trip keeps
order, case and repeats exactly.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any

from edgeproxy.messages import EdgeRequest, EdgeResponse, Headers, OriginTarget, without_headers
from edgeproxy.stages import STAGE_RULES, Stage

log = logging.getLogger("edgeproxy.handler")

Json = dict[str, Any]
HeaderMap = dict[str, list[dict[str, str]]]

# Reference 4.1, lower-case. Never shown to a handler, never accepted from one.
DISALLOWED_HEADERS = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "upgrade",
        "x-accel-buffering",
        "x-accel-charset",
        "x-accel-limit-rate",
        "x-accel-redirect",
        "x-amzn-auth",
        "x-amzn-cf-billing",
        "x-amzn-cf-id",
        "x-amzn-cf-xff",
        "x-amzn-errortype",
        "x-amzn-fle-profile",
        "x-amzn-header-count",
        "x-amzn-header-order",
        "x-amzn-lambda-integration-tag",
        "x-amzn-requestid",
        "x-cache",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
DISALLOWED_PREFIXES = ("x-amz-cf-", "x-edge-")

# How a generated or replaced body is written (reference 3.2, 3.4).
BODY_ENCODINGS = ("text", "base64")


@dataclass(frozen=True, slots=True)
class EventMeta:
    """The distribution fields of every event's ``config``."""

    distribution_domain_name: str
    distribution_id: str


def is_disallowed_header(lname: str) -> bool:
    """Whether a lower-case header name is on CloudFront's disallowed list."""
    return lname in DISALLOWED_HEADERS or lname.startswith(DISALLOWED_PREFIXES)


def title_case(name: str) -> str:
    """``user-agent`` → ``User-Agent``: how Lambda@Edge fills a missing ``key``."""
    return "-".join(part[:1].upper() + part[1:] for part in name.lower().split("-"))


def status_description(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# --- building events -------------------------------------------------------------------------


def headers_map(headers: Headers) -> HeaderMap:
    """Our header list as CloudFront's map, disallowed names left out."""
    out: HeaderMap = {}
    for name, value in headers:
        lname = name.lower()
        if lname in DISALLOWED_HEADERS or lname.startswith(DISALLOWED_PREFIXES):
            continue
        entries = out.get(lname)
        if entries is None:
            out[lname] = [{"key": name, "value": value}]
        else:
            entries.append({"key": name, "value": value})
    return out


def _number(value: float) -> int | float:
    # CloudFront writes whole seconds as JSON integers.
    return int(value) if value == int(value) else value


def origin_object(origin: OriginTarget) -> Json:
    """The ``origin`` object of an origin event: ``custom``, or ``s3`` for an S3-style
    origin (reference 2.6)."""
    if origin.kind == "s3":
        return {
            "s3": {
                "authMethod": origin.s3_auth_method,
                "customHeaders": headers_map(origin.custom_headers),
                "domainName": origin.domain_name,
                "path": origin.path,
                "region": origin.s3_region,
            }
        }
    return {
        "custom": {
            "customHeaders": headers_map(origin.custom_headers),
            "domainName": origin.domain_name,
            "keepaliveTimeout": _number(origin.keepalive_timeout),
            "path": origin.path,
            "port": origin.port,
            "protocol": origin.protocol,
            "readTimeout": _number(origin.read_timeout),
            "sslProtocols": list(origin.ssl_protocols),
        }
    }


def body_object(body: bytes, truncate_at: int) -> Json:
    """The Include Body ``body`` object: base64, cut at the stage's limit (reference 2.5)."""
    truncated = len(body) > truncate_at
    return {
        "inputTruncated": truncated,
        "action": "read-only",
        "encoding": "base64",
        "data": base64.b64encode(body[:truncate_at] if truncated else body).decode("ascii"),
    }


def request_object(stage: Stage, request: EdgeRequest, include_body: bool) -> Json:
    """The event's ``request``; keys in CloudFront's (alphabetical) order."""
    rule = STAGE_RULES[stage]
    obj: Json = {}
    if include_body and rule.request_stage:
        obj["body"] = body_object(request.body, rule.body_truncate_at)
    obj["clientIp"] = request.client_ip
    obj["headers"] = headers_map(request.headers)
    obj["method"] = request.method
    if rule.has_origin and request.origin is not None:
        obj["origin"] = origin_object(request.origin)
    obj["querystring"] = request.querystring
    obj["uri"] = request.uri
    return obj


def response_object(response: EdgeResponse) -> Json:
    return {
        "headers": headers_map(response.headers),
        "status": str(response.status),
        "statusDescription": response.reason or status_description(response.status),
    }


def _envelope(stage: Stage, meta: EventMeta, request_id: str, cf: Json) -> Json:
    config = {
        "distributionDomainName": meta.distribution_domain_name,
        "distributionId": meta.distribution_id,
        "eventType": stage.value,
        "requestId": request_id,
    }
    return {"Records": [{"cf": {"config": config, **cf}}]}


def request_event(
    stage: Stage, request: EdgeRequest, meta: EventMeta, request_id: str, include_body: bool
) -> Json:
    """The event for viewer-request or origin-request."""
    return _envelope(
        stage, meta, request_id, {"request": request_object(stage, request, include_body)}
    )


def response_event(
    stage: Stage, request: EdgeRequest, response: EdgeResponse, meta: EventMeta, request_id: str
) -> Json:
    """The event for origin-response or viewer-response (no body: reference 2.3)."""
    cf = {"request": request_object(stage, request, False), "response": response_object(response)}
    return _envelope(stage, meta, request_id, cf)


# --- converting results back -----------------------------------------------------------------


def is_response_result(result: Json) -> bool:
    """A request stage's result is a generated response when it has a ``status`` key."""
    return "status" in result


def headers_from_map(header_map: Any) -> Headers:
    """CloudFront's header map (already validated) as our header list."""
    out: Headers = []
    for name, entries in header_map.items():
        lname = name.lower()
        for entry in entries:
            key = entry.get("key")
            if not isinstance(key, str) or key.lower() != lname:
                key = title_case(lname)
            out.append((key, entry["value"]))
    return out


def _grouped(headers: Headers) -> Headers:
    """``headers`` in event order: repeats moved up to their name's first occurrence."""
    groups: dict[str, Headers] = {}
    for header in headers:
        groups.setdefault(header[0].lower(), []).append(header)
    return [header for group in groups.values() for header in group]


def merge_headers(original: Headers, returned: Headers) -> Headers:
    """What to send after a handler returned ``returned`` for the visible part of ``original``.

    Unchanged → a copy of ``original`` (keeps interleaved repeats and hidden headers in place;
    a copy, so a later change to the result never reaches the input); changed → ``returned``
    plus the headers the handler never saw.
    """
    hidden: Headers = []
    visible: Headers = []
    for header in original:
        (hidden if is_disallowed_header(header[0].lower()) else visible).append(header)
    if returned == visible or returned == _grouped(visible):
        return original.copy()
    return returned + hidden


def decode_body(data: Any, encoding: Any) -> bytes:
    """A returned body (already validated): text is UTF-8, base64 is decoded."""
    if encoding == "base64":
        return base64.b64decode("".join(str(data).split()))
    return str(data).encode("utf-8")


def _replaced_request_body(body: Any) -> bytes | None:
    # read-only (or anything but replace) sends the full original body, not the truncated copy.
    if not isinstance(body, dict) or body.get("action") != "replace":
        return None
    return decode_body(body.get("data", ""), body.get("encoding", "base64"))


def _origin_from_result(origin: Any, previous: OriginTarget | None) -> OriginTarget | None:
    """The ``origin`` a handler returned, as an OriginTarget (s3 → https:443 to its domain).

    Only the origin changes: the Host header stays as it was (reference 2.6), so a handler
    that switches origin sets ``host`` itself, as every AWS example does."""
    if not isinstance(origin, dict):
        return previous
    base = previous or OriginTarget(domain_name="", port=443, protocol="https")
    if isinstance(origin.get("custom"), dict):
        return _custom_origin(origin["custom"], base)
    s3 = origin.get("s3")
    if isinstance(s3, dict):
        return replace(
            base,
            domain_name=s3["domainName"],
            port=443,
            protocol="https",
            path=s3.get("path", ""),
            custom_headers=headers_from_map(s3.get("customHeaders") or {}),
            kind="s3",
            s3_auth_method=s3.get("authMethod", "none"),
            s3_region=s3.get("region", ""),
        )
    return previous


def _custom_origin(custom: Json, base: OriginTarget) -> OriginTarget:
    return replace(
        base,
        domain_name=custom["domainName"],
        port=int(custom.get("port", base.port)),
        protocol=custom.get("protocol", base.protocol),
        path=custom.get("path", base.path),
        custom_headers=headers_from_map(custom.get("customHeaders") or {}),
        read_timeout=float(custom.get("readTimeout", base.read_timeout)),
        keepalive_timeout=float(custom.get("keepaliveTimeout", base.keepalive_timeout)),
        ssl_protocols=tuple(custom.get("sslProtocols", base.ssl_protocols)),
        kind="custom",
        s3_auth_method="none",
        s3_region="",
    )


# The edge frames a request body itself: a replaced body goes with its own length.
_FRAMING = frozenset({"content-length", "transfer-encoding"})


def _framed(headers: Headers, body: bytes) -> Headers:
    """``headers`` for a replaced ``body``: sent with a Content-Length, never chunked."""
    return [*without_headers(headers, _FRAMING), ("Content-Length", str(len(body)))]


def request_from_result(
    stage: Stage,
    result: Json,
    request: EdgeRequest,
    include_body: bool,
    headers_unchanged: bool = False,
) -> EdgeRequest:
    """The request a request stage returned (validated), applied to ``request``.

    Read-only fields (clientIp, method) are taken from ``request``; absent keys keep their
    value; ``origin`` only counts where the stage has one.
    """
    headers = (
        request.headers.copy()
        if headers_unchanged
        else merge_headers(request.headers, headers_from_map(result.get("headers") or {}))
    )
    body, stream = request.body, request.body_stream
    replaced = _replaced_request_body(result["body"]) if include_body and "body" in result else None
    if replaced is not None:  # the viewer's body (held or streamed) is not sent
        body, stream = replaced, None
        headers = _framed(headers, body)
    origin = request.origin
    if STAGE_RULES[stage].has_origin and "origin" in result:
        origin = _origin_from_result(result["origin"], request.origin)
    return replace(
        request,
        uri=result.get("uri", request.uri),
        querystring=result.get("querystring", request.querystring),
        headers=headers,
        body=body,
        body_stream=stream,
        origin=origin,
    )


def _status(result: Json) -> int:
    return int(result["status"])


def _reason(result: Json, status: int, previous: EdgeResponse | None) -> str:
    description = result.get("statusDescription")
    if isinstance(description, str):
        return description
    if previous is not None and previous.status == status:
        return previous.reason
    return status_description(status)


def generated_response(result: Json) -> EdgeResponse:
    """A response a request stage generated (validated): status, headers, body."""
    status = _status(result)
    body = result.get("body")
    return EdgeResponse(
        status=status,
        headers=headers_from_map(result.get("headers") or {}),
        body=b"" if body is None else decode_body(body, result.get("bodyEncoding", "text")),
        reason=_reason(result, status, None),
    )


def _response_body(stage: Stage, result: Json, original: bytes) -> bytes:
    if "body" not in result:
        return original
    if stage is not Stage.ORIGIN_RESPONSE:
        # Lambda@Edge documents no body replacement in viewer-response (reference 10 #9).
        log.warning("%s: the body a handler returned is ignored (not supported)", stage.value)
        return original
    body = result["body"]
    return b"" if body is None else decode_body(body, result.get("bodyEncoding", "text"))


def response_from_result(
    stage: Stage, result: Json, response: EdgeResponse, headers_unchanged: bool = False
) -> EdgeResponse:
    """The response a response stage returned (validated), applied to ``response``;
    ``headers_unchanged`` (validation found them as sent) skips comparing them again."""
    status = _status(result)
    headers = (
        response.headers.copy()
        if headers_unchanged
        else merge_headers(response.headers, headers_from_map(result.get("headers") or {}))
    )
    return EdgeResponse(
        status=status,
        headers=headers,
        body=_response_body(stage, result, response.body),
        reason=_reason(result, status, response),
    )


def request_stage_result(
    stage: Stage,
    result: Json,
    request: EdgeRequest,
    include_body: bool,
    headers_unchanged: bool = False,
) -> EdgeRequest | EdgeResponse:
    """A request stage's validated result: the request to go on with, or a generated response."""
    if is_response_result(result):
        return generated_response(result)
    return request_from_result(stage, result, request, include_body, headers_unchanged)
