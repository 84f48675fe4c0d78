"""Breaks the rule of CloudFront's validation table named by the last segment of the uri
(``/break/read-only-header``), in whichever stage it is wired to."""

VIEWER_LIMIT = 40 * 1024  # generated response size, viewer stages
ORIGIN_LIMIT = 1024 * 1024  # origin stages


def handler(event, context):
    cf = event["Records"][0]["cf"]
    stage = cf["config"]["eventType"]
    request_stage = stage in ("viewer-request", "origin-request")
    message = cf["request"] if request_stage else cf["response"]
    rule = cf["request"]["uri"].rsplit("/", 1)[-1]
    return BREAKS[rule](message, stage, request_stage)


def _header(message, name, entries):
    message["headers"][name] = entries
    return message


def _response(message, request_stage, **fields):
    """A generated response from a request stage, the changed response otherwise."""
    if request_stage:
        return {"status": fields.pop("status", "200"), **fields}
    message.update(fields)
    return message


def _too_big(message, stage, request_stage):
    limit = VIEWER_LIMIT if stage.startswith("viewer") else ORIGIN_LIMIT
    return _response(message, request_stage, body="a" * (limit + 1))


def _bad_origin(message, stage, request_stage):
    message["origin"]["custom"]["port"] = 81  # 80, 443 or 1024-65535 only
    return message


BREAKS = {
    "result-is-object": lambda m, s, r: None,
    "headers-is-object": lambda m, s, r: {**m, "headers": ["not", "a", "map"]},
    "header-entry-is-array": lambda m, s, r: _header(m, "x-a", {"key": "X-A", "value": "1"}),
    "header-value-is-string": lambda m, s, r: _header(m, "x-a", [{"key": "X-A", "value": 1}]),
    "header-name-valid": lambda m, s, r: _header(m, "bad name", [{"value": "1"}]),
    "header-value-chars": lambda m, s, r: _header(
        m, "location", [{"key": "Location", "value": "/a\r\nSet-Cookie: x=1"}]
    ),
    "disallowed-header": lambda m, s, r: _header(
        m, "connection", [{"key": "Connection", "value": "close"}]
    ),
    "read-only-header": lambda m, s, r: _header(m, "via", [{"key": "Via", "value": "1.1 me"}]),
    "viewer-country-added": lambda m, s, r: _header(
        m, "cloudfront-viewer-country", [{"key": "CloudFront-Viewer-Country", "value": "US"}]
    ),
    "status-valid": lambda m, s, r: _response(m, r, status="600"),
    "status-unchanged": lambda m, s, r: _response(m, r, status="404"),
    "status-description-string": lambda m, s, r: _response(m, r, statusDescription=5),
    "status-description-chars": lambda m, s, r: _response(
        m, r, statusDescription="OK\r\nSet-Cookie: x=1"
    ),
    "body-is-string": lambda m, s, r: _response(m, r, body={"not": "a string"}),
    "body-encoding": lambda m, s, r: _response(m, r, body="x", bodyEncoding="gzip"),
    "no-content-body": lambda m, s, r: _response(m, r, status="204", body="not empty"),
    "generated-size": _too_big,
    "uri-valid": lambda m, s, r: {**m, "uri": "no-leading-slash"},
    "uri-chars": lambda m, s, r: {**m, "uri": "/a b"},
    "querystring-valid": lambda m, s, r: {**m, "querystring": "a b"},
    "url-length": lambda m, s, r: {**m, "uri": "/" + "a" * 8200},
    "request-body": lambda m, s, r: {**m, "body": "a string, not the body object"},
    "origin-valid": _bad_origin,
}
