"""CloudFront event JSON ⇄ the edge's requests and responses (reference section 2).

Building: ``request_event`` and ``response_event`` make the ``{"Records": [{"cf": …}]}`` dict a
handler receives (headers as ``header_map`` writes them, the origin as ``origin_object``).

Converting back (after ``validation`` accepted the result): ``request_from_result``,
``response_from_result`` and ``generated_response``. A result with a ``status`` key from a
request stage is a generated response (CloudFront does not document how it tells; the
serverless-offline-edge-lambda simulator uses the same test).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from edgeproxy.functions.header_map import headers_from_map, headers_map, merge_headers
from edgeproxy.functions.origin_object import origin_from_result, origin_object
from edgeproxy.messages import EdgeRequest, EdgeResponse, Headers, without_headers
from edgeproxy.stages import Stage, body_shown_up_to, may_include_body, sees_origin

log = logging.getLogger("edgeproxy.handler")

Json = dict[str, Any]

# How a generated or replaced body is written (reference 3.2, 3.4).
BODY_ENCODINGS = ("text", "base64")


@dataclass(frozen=True, slots=True)
class EventMeta:
    """The distribution fields of every event's ``config``."""

    distribution_domain_name: str
    distribution_id: str


def status_description(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# --- building events -------------------------------------------------------------------------


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
    obj: Json = {}
    if include_body and may_include_body(stage):
        obj["body"] = body_object(request.body, body_shown_up_to(stage))
    obj["clientIp"] = request.client_ip
    obj["headers"] = headers_map(request.headers)
    obj["method"] = request.method
    if sees_origin(stage) and request.origin is not None:
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
    if sees_origin(stage) and "origin" in result:
        origin = origin_from_result(result["origin"], request.origin)
    passed = request.copy()
    passed.uri = result.get("uri", request.uri)
    passed.querystring = result.get("querystring", request.querystring)
    passed.headers, passed.body, passed.body_stream, passed.origin = headers, body, stream, origin
    return passed


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
