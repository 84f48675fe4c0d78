"""The CloudFront Functions event, and what a function's result becomes (DG
functions-event-structure: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/functions-event-structure.html).

Headers, query string and cookies are objects of ``{value}`` keyed by lower-case name, a
repeated name with ``multiValue`` (its first entry repeating ``value``). ``Cookie`` and
``Set-Cookie`` are moved out of the headers into ``cookies``. A result is checked once here
(``FunctionResultError`` for what CloudFront would refuse: the viewer gets 503
FunctionExecutionError); a part the function left as it was keeps its original bytes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from edgeproxy.functions.events import EventMeta, status_description
from edgeproxy.messages import (
    BAD_VALUE_CHAR,
    HEADER_NAME,
    EdgeRequest,
    EdgeResponse,
    Headers,
    title_case,
)
from edgeproxy.stages import Stage

Json = dict[str, Any]

# Headers a function does not see and cannot set: they frame the message or belong to the
# edge (DG edge-function-restrictions-all, "Restricted headers"; CloudFront Functions
# cannot see the request body, so neither its framing).
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "upgrade"})
_COOKIE_HEADERS = frozenset({"cookie", "set-cookie"})
MAX_GENERATED_BODY = 40 * 1024  # DG cloudfront-limits: a generated response's body, 40 KB


class FunctionResultError(ValueError):
    """A result CloudFront would refuse."""


# --- the event -------------------------------------------------------------------------------


def _values(pairs: list[tuple[str, str]]) -> Json:
    """``[(name, value)]`` → ``{name: {value[, multiValue]}}``, names as given."""
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return {name: _entry(values) for name, values in grouped.items()}


def _entry(values: list[str]) -> Json:
    if len(values) == 1:
        return {"value": values[0]}
    return {"value": values[0], "multiValue": [{"value": v} for v in values]}


def headers_object(headers: Headers) -> Json:
    return _values([(k.lower(), v) for k, v in headers if k.lower() not in _HIDDEN])


_HIDDEN = _FRAMING | _COOKIE_HEADERS


def querystring_object(raw: str) -> Json:
    """The query string's parameters as received (names and values not decoded)."""
    pairs = []
    for part in raw.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return _values(pairs)


def request_cookies(headers: Headers) -> Json:
    pairs = []
    for name, value in headers:
        if name.lower() == "cookie":
            for item in value.split(";"):
                key, eq, val = item.strip().partition("=")
                if key and eq:
                    pairs.append((key, val))
    return _values(pairs)


def response_cookies(headers: Headers) -> Json:
    """Set-Cookie headers → ``{name: {value, attributes}}`` (multiValue for a name set twice)."""
    grouped: dict[str, list[Json]] = {}
    for name, value in headers:
        if name.lower() != "set-cookie":
            continue
        pair, _, attributes = value.partition(";")
        key, _, val = pair.strip().partition("=")
        entry: Json = {"value": val}
        if attributes.strip():
            entry["attributes"] = attributes.strip()
        grouped.setdefault(key, []).append(entry)
    cookies: Json = {}
    for key, entries in grouped.items():
        cookies[key] = dict(entries[0])
        if len(entries) > 1:
            cookies[key]["multiValue"] = entries
    return cookies


def request_object(request: EdgeRequest) -> Json:
    return {
        "method": request.method,
        "uri": request.uri,
        "querystring": querystring_object(request.querystring),
        "headers": headers_object(request.headers),
        "cookies": request_cookies(request.headers),
    }


def response_object(response: EdgeResponse) -> Json:
    return {
        "statusCode": response.status,
        "statusDescription": response.reason or status_description(response.status),
        "headers": headers_object(response.headers),
        "cookies": response_cookies(response.headers),
    }


def function_event(
    stage: Stage,
    meta: EventMeta,
    request_id: str,
    request: EdgeRequest,
    response: EdgeResponse | None = None,
    shown: Headers | None = None,
) -> Json:
    request_json = request_object(request)
    if shown:
        request_json["headers"] = headers_object([*request.headers, *shown])
    event: Json = {
        "version": "1.0",
        "context": {
            "distributionDomainName": meta.distribution_domain_name,
            "distributionId": meta.distribution_id,
            "eventType": stage.value,
            "requestId": request_id,
        },
        "viewer": {"ip": request.client_ip},
        "request": request_json,
    }
    if response is not None:
        event["response"] = response_object(response)
    return event


# --- the result ------------------------------------------------------------------------------


def _object(value: Any, what: str) -> Json:
    if not isinstance(value, dict):
        raise FunctionResultError(f"{what} must be an object")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or BAD_VALUE_CHAR.search(value):
        raise FunctionResultError(f"{what} must be a string without control characters")
    return value


def _entry_values(entry: Any, what: str) -> list[str]:
    """An entry's values: ``multiValue`` wins when present, else ``value``."""
    entry = _object(entry, what)
    multi = entry.get("multiValue")
    if multi is not None:
        if not isinstance(multi, list):
            raise FunctionResultError(f"{what}.multiValue must be an array")
        return [_text(_object(m, what).get("value"), f"{what}.multiValue[].value") for m in multi]
    return [_text(entry.get("value"), f"{what}.value")]


def result_headers(value: Any) -> Headers:
    """A result's ``headers`` object → header pairs. Names must be lower-case (DG: CloudFront
    capitalises each word of a name it sends)."""
    headers: Headers = []
    for name, entry in _object(value, "headers").items():
        if not HEADER_NAME.fullmatch(name) or name != name.lower():
            raise FunctionResultError(f"header name {name!r} must be a lower-case token")
        if name in _HIDDEN:
            raise FunctionResultError(f"header {name} may not be set by a function")
        headers.extend((title_case(name), v) for v in _entry_values(entry, f"headers.{name}"))
    return headers


def _pairs(value: Any, what: str, join: Callable[[str, str], str]) -> list[str]:
    items: list[str] = []
    for name, entry in _object(value, what).items():
        if not name or BAD_VALUE_CHAR.search(name):
            raise FunctionResultError(f"{what} name {name!r} is not valid")
        items.extend(join(name, v) for v in _entry_values(entry, f"{what}.{name}"))
    return items


def result_querystring(value: Any) -> str:
    return "&".join(_pairs(value, "querystring", lambda n, v: f"{n}={v}" if v else n))


def result_request(
    result: Json, request: EdgeRequest, event_request: Json, shown: Headers | None = None
) -> EdgeRequest:
    """A returned request applied to the viewer's; parts left unchanged keep their bytes.
    The ``shown`` headers are the edge's to add: not taken from the result."""
    uri = _text(result.get("uri"), "request.uri")
    if not uri.startswith("/") or " " in uri:
        raise FunctionResultError("request.uri must start with / and hold no spaces")
    if result.get("method", request.method) != request.method:
        raise FunctionResultError("request.method is read-only")
    request.uri = uri
    if result.get("querystring", {}) != event_request["querystring"]:
        request.querystring = result_querystring(result.get("querystring", {}))
    headers_same = result.get("headers", {}) == event_request["headers"]
    cookies_same = result.get("cookies", {}) == event_request["cookies"]
    if headers_same and cookies_same:
        return request
    kept = [(k, v) for k, v in request.headers if k.lower() in _FRAMING]
    added = {name.lower() for name, _ in shown or []}
    returned = [] if headers_same else result_headers(result["headers"])
    returned = [(k, v) for k, v in returned if k.lower() not in added]
    headers = request.headers if headers_same else [*kept, *returned]
    cookie_lines = [h for h in request.headers if h[0].lower() == "cookie"]
    if not cookies_same:
        joined = "; ".join(_pairs(result.get("cookies", {}), "cookies", lambda n, v: f"{n}={v}"))
        cookie_lines = [("Cookie", joined)] if joined else []
    request.headers = [(k, v) for k, v in headers if k.lower() != "cookie"] + cookie_lines
    return request


def _set_cookies(value: Any) -> Headers:
    lines: Headers = []
    for name, entry in _object(value, "cookies").items():
        entries = _object(entry, f"cookies.{name}").get("multiValue") or [entry]
        if not isinstance(entries, list):
            raise FunctionResultError(f"cookies.{name}.multiValue must be an array")
        for item in entries:
            item = _object(item, f"cookies.{name}")
            text = f"{name}={_text(item.get('value'), f'cookies.{name}.value')}"
            attributes = item.get("attributes")
            if attributes:
                text += f"; {_text(attributes, f'cookies.{name}.attributes')}"
            lines.append(("Set-Cookie", text))
    return lines


def _status(result: Json) -> int:
    status = result.get("statusCode")
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise FunctionResultError("statusCode must be a number from 200 to 599")
    return status


def _body(value: Any) -> bytes:
    """``body``: a string (text), or ``{encoding: text|base64, data}``."""
    if isinstance(value, str):
        data = value.encode("utf-8")
    else:
        body = _object(value, "body")
        encoding, text = body.get("encoding", "text"), body.get("data", "")
        if not isinstance(text, str) or encoding not in ("text", "base64"):
            raise FunctionResultError("body must be {encoding: text|base64, data: string}")
        try:
            data = base64.b64decode(text, validate=True) if encoding == "base64" else text.encode()
        except binascii.Error:
            raise FunctionResultError("body.data is not valid base64") from None
    if len(data) > MAX_GENERATED_BODY:
        raise FunctionResultError("body is over 40 KB")
    return data


def generated_response(result: Json) -> EdgeResponse:
    """A response a viewer-request function returned instead of the request."""
    status = _status(result)
    reason = result.get("statusDescription")
    headers = result_headers(result.get("headers", {})) + _set_cookies(result.get("cookies", {}))
    return EdgeResponse(
        status=status,
        headers=headers,
        body=_body(result["body"]) if result.get("body") is not None else b"",
        reason=_text(reason, "statusDescription") if reason is not None else "",
    )


def result_response(result: Json, response: EdgeResponse, event_response: Json) -> EdgeResponse:
    """A viewer-response function's response applied to the one it was given: it may change
    the status, headers and cookies, and replace the body (DG functions-event-structure)."""
    status = _status(result)
    if status != response.status:
        response.status, response.reason = status, ""
    description = result.get("statusDescription")
    if description is not None and description != event_response["statusDescription"]:
        response.reason = _text(description, "statusDescription")
    headers_same = result.get("headers", {}) == event_response["headers"]
    cookies_same = result.get("cookies", {}) == event_response["cookies"]
    if not (headers_same and cookies_same):
        kept = [h for h in response.headers if h[0].lower() in _FRAMING]
        headers = (
            [h for h in response.headers if h[0].lower() != "set-cookie"]
            if headers_same
            else [*kept, *result_headers(result.get("headers", {}))]
        )
        cookies = (
            [h for h in response.headers if h[0].lower() == "set-cookie"]
            if cookies_same
            else _set_cookies(result.get("cookies", {}))
        )
        response.headers = headers + cookies
    if result.get("body") is not None:
        body = _body(result["body"])
        response.body, response.stream = body, None
        response.headers = [h for h in response.headers if h[0].lower() not in _FRAMING]
    return response


def is_generated(result: Json) -> bool:
    """A viewer-request result is a generated response when it carries ``statusCode``."""
    return "statusCode" in result
