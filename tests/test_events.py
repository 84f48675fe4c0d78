from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from edgeproxy.functions.events import (
    EventMeta,
    generated_response,
    is_response_result,
    request_event,
    request_from_result,
    request_stage_result,
    response_event,
    response_from_result,
)
from edgeproxy.functions.header_map import headers_from_map, headers_map
from edgeproxy.messages import EdgeRequest, EdgeResponse, OriginTarget, title_case
from edgeproxy.stages import Stage

META = EventMeta("d111111abcdef8.cloudfront.net", "EDFDVBD6EXAMPLE")
RID = "ErBax5417C_eI5vdOk6h384wAGWb4VPsg1r-9O_qe2EoeGER8BwR-g=="


def viewer_request(**changes: Any) -> EdgeRequest:
    request = EdgeRequest(
        method="GET",
        uri="/",
        querystring="",
        headers=[
            ("Host", "d111111abcdef8.cloudfront.net"),
            ("User-Agent", "curl/7.66.0"),
            ("accept", "*/*"),
        ],
        client_ip="203.0.113.178",
    )
    for key, value in changes.items():
        setattr(request, key, value)
    return request


def origin() -> OriginTarget:
    return OriginTarget(domain_name="example.org", port=443, protocol="https")


def cf(event: dict[str, Any]) -> dict[str, Any]:
    assert list(event) == ["Records"] and len(event["Records"]) == 1
    result: dict[str, Any] = event["Records"][0]["cf"]
    return result


# --- event shape (reference 2.7) ----------------------------------------------------------------


def test_viewer_request_event_matches_reference() -> None:
    event = request_event(Stage.VIEWER_REQUEST, viewer_request(), META, RID, False)
    assert json.loads(json.dumps(event)) == {
        "Records": [
            {
                "cf": {
                    "config": {
                        "distributionDomainName": "d111111abcdef8.cloudfront.net",
                        "distributionId": "EDFDVBD6EXAMPLE",
                        "eventType": "viewer-request",
                        "requestId": RID,
                    },
                    "request": {
                        "clientIp": "203.0.113.178",
                        "headers": {
                            "host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}],
                            "user-agent": [{"key": "User-Agent", "value": "curl/7.66.0"}],
                            "accept": [{"key": "accept", "value": "*/*"}],
                        },
                        "method": "GET",
                        "querystring": "",
                        "uri": "/",
                    },
                }
            }
        ]
    }


def test_origin_request_event_has_custom_origin() -> None:
    request = viewer_request(origin=origin())
    req = cf(request_event(Stage.ORIGIN_REQUEST, request, META, RID, False))["request"]
    assert list(req) == ["clientIp", "headers", "method", "origin", "querystring", "uri"]
    assert req["origin"] == {
        "custom": {
            "customHeaders": {},
            "domainName": "example.org",
            "keepaliveTimeout": 5,
            "path": "",
            "port": 443,
            "protocol": "https",
            "readTimeout": 30,
            "sslProtocols": ["TLSv1.2"],
        }
    }
    assert isinstance(req["origin"]["custom"]["readTimeout"], int)


def test_viewer_request_never_has_origin() -> None:
    request = viewer_request(origin=origin())
    event = request_event(Stage.VIEWER_REQUEST, request, META, RID, False)
    assert "origin" not in cf(event)["request"]


def test_response_events() -> None:
    request = viewer_request(origin=origin(), body=b"x")
    response = EdgeResponse(200, [("Content-Type", "text/plain"), ("Age", "2402")])
    event = cf(response_event(Stage.VIEWER_RESPONSE, request, response, META, RID))
    assert event["config"]["eventType"] == "viewer-response"
    assert list(event["request"]) == ["clientIp", "headers", "method", "querystring", "uri"]
    assert event["response"] == {
        "headers": {
            "content-type": [{"key": "Content-Type", "value": "text/plain"}],
            "age": [{"key": "Age", "value": "2402"}],
        },
        "status": "200",
        "statusDescription": "OK",
    }
    origin_event = cf(response_event(Stage.ORIGIN_RESPONSE, request, response, META, RID))
    assert "origin" in origin_event["request"] and "body" not in origin_event["request"]


def test_response_event_keeps_reason_from_origin() -> None:
    response = EdgeResponse(404, [], reason="Nope")
    event = cf(response_event(Stage.ORIGIN_RESPONSE, viewer_request(), response, META, RID))
    assert event["response"]["status"] == "404"
    assert event["response"]["statusDescription"] == "Nope"


def test_disallowed_headers_are_never_shown() -> None:
    request = viewer_request(
        headers=[
            ("Host", "h"),
            ("Connection", "keep-alive"),
            ("X-Amz-Cf-Id", "abc"),
            ("X-Edge-Location", "x"),
            ("X-Forwarded-Proto", "https"),
            ("X-Amzn-Trace-Id", "kept: not on the list"),
        ]
    )
    event = request_event(Stage.VIEWER_REQUEST, request, META, RID, False)
    headers = cf(event)["request"]["headers"]
    assert list(headers) == ["host", "x-amzn-trace-id"]


def test_repeated_headers_keep_order_and_case() -> None:
    assert headers_map([("Cookie", "a=1"), ("X-A", "1"), ("cookie", "b=2")]) == {
        "cookie": [{"key": "Cookie", "value": "a=1"}, {"key": "cookie", "value": "b=2"}],
        "x-a": [{"key": "X-A", "value": "1"}],
    }


@pytest.mark.parametrize(
    ("body", "truncated", "data"),
    [
        (b"", False, b""),
        (b'{"user":1}', False, b'{"user":1}'),
        (b"a" * 40 * 1024, False, b"a" * 40 * 1024),
        (b"a" * (40 * 1024 + 1), True, b"a" * 40 * 1024),
    ],
)
def test_include_body(body: bytes, truncated: bool, data: bytes) -> None:
    request = viewer_request(method="POST", body=body)
    req = cf(request_event(Stage.VIEWER_REQUEST, request, META, RID, True))["request"]
    assert list(req)[0] == "body"
    assert req["body"] == {
        "inputTruncated": truncated,
        "action": "read-only",
        "encoding": "base64",
        "data": base64.b64encode(data).decode(),
    }


def test_origin_request_truncates_at_one_megabyte() -> None:
    request = viewer_request(method="POST", body=b"a" * (1024 * 1024 + 5), origin=origin())
    body = cf(request_event(Stage.ORIGIN_REQUEST, request, META, RID, True))["request"]["body"]
    assert body["inputTruncated"] is True
    assert len(base64.b64decode(body["data"])) == 1024 * 1024


# --- round trips -------------------------------------------------------------------------------


def round_trip(stage: Stage, request: EdgeRequest, include_body: bool = True) -> EdgeRequest:
    event = json.loads(json.dumps(request_event(stage, request, META, RID, include_body)))
    result = request_stage_result(stage, cf(event)["request"], request, include_body)
    assert isinstance(result, EdgeRequest)
    return result


def test_round_trip_is_lossless() -> None:
    request = viewer_request(
        method="POST",
        uri="/a%20b/c",
        querystring="x=1&y=%20&x=2",
        headers=[
            ("Host", "h"),
            ("cookie", "a=1"),
            ("X-Custom", "1"),
            ("Cookie", "b=2"),  # interleaved repeat
            ("X-Amz-Cf-Id", "hidden"),  # never shown, kept in place
            ("x-lower", "v"),
        ],
        body=b"\x00\x01binary\xff",
        origin=origin(),
    )
    for stage in (Stage.VIEWER_REQUEST, Stage.ORIGIN_REQUEST):
        again = round_trip(stage, request)
        assert again == request
        assert again.headers == request.headers and again.headers is not request.headers


def test_round_trip_of_a_truncated_body_keeps_the_full_body() -> None:
    request = viewer_request(method="POST", body=b"z" * (41 * 1024))
    assert round_trip(Stage.VIEWER_REQUEST, request).body == request.body


def test_changed_headers_keep_hidden_ones() -> None:
    request = viewer_request(headers=[("Host", "h"), ("X-Amz-Cf-Id", "id"), ("A", "1")])
    result = {"headers": {"host": [{"key": "Host", "value": "h"}], "b": [{"value": "2"}]}}
    again = request_from_result(Stage.ORIGIN_REQUEST, result, request, False)
    assert again.headers == [("Host", "h"), ("B", "2"), ("X-Amz-Cf-Id", "id")]


@pytest.mark.parametrize(
    ("name", "entry", "sent_as"),
    [
        ("user-agent", {"value": "v"}, "User-Agent"),  # missing key: title-cased
        ("x-api-key", {"key": "X-API-KEY", "value": "v"}, "X-API-KEY"),  # case only: kept
        ("last-modified", {"key": "X-Amz-Meta-Last-Modified", "value": "v"}, "Last-Modified"),
    ],
)
def test_header_keys(name: str, entry: dict[str, str], sent_as: str) -> None:
    assert headers_from_map({name: [entry]}) == [(sent_as, "v")]


def test_title_case() -> None:
    assert title_case("x-forwarded-for") == "X-Forwarded-For"
    assert title_case("etag") == "Etag"


def test_request_changes_apply() -> None:
    request = viewer_request(method="POST", body=b"old")
    result = {
        "uri": "/new",
        "querystring": "a=b",
        "method": "DELETE",  # read-only: ignored
        "clientIp": "1.2.3.4",  # read-only: ignored
        "headers": {"host": [{"key": "Host", "value": "x"}]},
        "body": {"action": "replace", "encoding": "text", "data": "héllo"},
    }
    again = request_from_result(Stage.VIEWER_REQUEST, result, request, True)
    assert (again.uri, again.querystring, again.method, again.client_ip) == (
        "/new",
        "a=b",
        "POST",
        "203.0.113.178",
    )
    assert again.body == "héllo".encode()
    assert request.uri == "/"  # the input is not changed


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"action": "replace", "encoding": "base64", "data": "AAEC"}, b"\x00\x01\x02"),
        ({"action": "replace", "data": "AAEC"}, b"\x00\x01\x02"),  # base64 is the default
        ({"action": "read-only", "encoding": "text", "data": "ignored"}, b"original"),
        ({"inputTruncated": False, "data": "ignored"}, b"original"),
    ],
)
def test_request_body_actions(body: dict[str, Any], expected: bytes) -> None:
    request = viewer_request(method="PUT", body=b"original")
    result = {"headers": {}, "body": body}
    assert request_from_result(Stage.ORIGIN_REQUEST, result, request, True).body == expected


def test_body_ignored_without_include_body() -> None:
    request = viewer_request(method="PUT", body=b"original")
    result = {"body": {"action": "replace", "encoding": "text", "data": "new"}}
    assert request_from_result(Stage.VIEWER_REQUEST, result, request, False).body == b"original"


def test_origin_changes_map_back() -> None:
    before = OriginTarget("example.org", 443, "https", connection_attempts=2)
    request = viewer_request(origin=before)
    event = cf(request_event(Stage.ORIGIN_REQUEST, request, META, RID, False))
    custom = event["request"]["origin"]["custom"]
    custom.update(
        domainName="other.example", port=8080, protocol="http", path="/v2", readTimeout=10
    )
    custom["customHeaders"] = {"x-origin-key": [{"key": "X-Origin-Key", "value": "s"}]}
    after = request_from_result(Stage.ORIGIN_REQUEST, event["request"], request, False).origin
    assert after == OriginTarget(
        "other.example",
        8080,
        "http",
        path="/v2",
        custom_headers=[("X-Origin-Key", "s")],
        read_timeout=10.0,
        connection_attempts=2,  # not in the event: kept
    )


def test_s3_origin_becomes_https_443() -> None:
    request = viewer_request(origin=origin())
    result = {
        "origin": {
            "s3": {
                "authMethod": "none",
                "customHeaders": {},
                "domainName": "bucket.s3.eu-west-1.amazonaws.com",
                "path": "/p",
                "region": "eu-west-1",
            }
        }
    }
    after = request_from_result(Stage.ORIGIN_REQUEST, result, request, False).origin
    assert after is not None
    assert (after.domain_name, after.port, after.protocol, after.path) == (
        "bucket.s3.eu-west-1.amazonaws.com",
        443,
        "https",
        "/p",
    )
    # It is an S3 origin from now on: origin-response sees the s3 object it wrote.
    assert (after.kind, after.s3_auth_method, after.s3_region) == ("s3", "none", "eu-west-1")
    request.origin = after
    event = cf(response_event(Stage.ORIGIN_RESPONSE, request, EdgeResponse(200, []), META, RID))
    assert event["request"]["origin"] == result["origin"]


def test_s3_origin_event_shape() -> None:
    target = OriginTarget(
        "bucket.s3.amazonaws.com",
        443,
        "https",
        custom_headers=[("X-Secret", "s")],
        kind="s3",
        s3_auth_method="origin-access-identity",
        s3_region="us-east-1",
    )
    event = cf(request_event(Stage.ORIGIN_REQUEST, viewer_request(origin=target), META, RID, False))
    assert event["request"]["origin"] == {
        "s3": {
            "authMethod": "origin-access-identity",
            "customHeaders": {"x-secret": [{"key": "X-Secret", "value": "s"}]},
            "domainName": "bucket.s3.amazonaws.com",
            "path": "",
            "region": "us-east-1",
        }
    }
    # Switching back to a custom origin drops the s3 fields.
    result = {"origin": {"custom": {"domainName": "x.example", "port": 80, "protocol": "http"}}}
    back = request_from_result(Stage.ORIGIN_REQUEST, result, viewer_request(origin=target), False)
    assert back.origin is not None and (back.origin.kind, back.origin.s3_region) == ("custom", "")


def test_replaced_body_is_framed_by_length() -> None:
    request = viewer_request(method="POST", body=b"a=1")
    request.headers += [("Content-Length", "3"), ("Transfer-Encoding", "chunked")]
    result = cf(request_event(Stage.VIEWER_REQUEST, request, META, RID, True))["request"]
    result["body"] = {"action": "replace", "encoding": "text", "data": "a=12345"}
    after = request_from_result(Stage.VIEWER_REQUEST, result, request, True)
    assert after.body == b"a=12345"
    assert [
        (k, v) for k, v in after.headers if k.lower() in ("content-length", "transfer-encoding")
    ] == [("Content-Length", "7")]
    # read-only leaves body and framing as the viewer sent them
    result["body"]["action"] = "read-only"
    kept = request_from_result(Stage.VIEWER_REQUEST, result, request, True)
    assert kept.body == b"a=1" and kept.headers == request.headers


def test_origin_in_viewer_request_is_ignored() -> None:
    request = viewer_request()
    result = {"origin": {"custom": {"domainName": "x.example", "port": 80, "protocol": "http"}}}
    assert request_from_result(Stage.VIEWER_REQUEST, result, request, False).origin is None


# --- responses ---------------------------------------------------------------------------------


def test_generated_response_is_told_apart_by_status() -> None:
    assert is_response_result({"status": "200"})
    assert not is_response_result({"uri": "/"})
    result = request_stage_result(Stage.VIEWER_REQUEST, {"status": 302}, viewer_request(), False)
    assert isinstance(result, EdgeResponse) and result.status == 302 and result.reason == "Found"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            {"status": 302, "headers": {"location": [{"value": "https://e.example/"}]}},
            EdgeResponse(302, [("Location", "https://e.example/")], b"", "Found"),
        ),
        (
            {"status": "200", "statusDescription": "Fine", "body": "héllo"},
            EdgeResponse(200, [], "héllo".encode(), "Fine"),
        ),
        (
            {"status": "200", "body": "AAE=", "bodyEncoding": "base64"},
            EdgeResponse(200, [], b"\x00\x01", "OK"),
        ),
        ({"status": 299, "body": "x", "bodyEncoding": "text"}, EdgeResponse(299, [], b"x", "")),
    ],
)
def test_generated_responses(result: dict[str, Any], expected: EdgeResponse) -> None:
    assert generated_response(result) == expected


def response_round_trip(stage: Stage, response: EdgeResponse) -> dict[str, Any]:
    event = response_event(stage, viewer_request(), response, META, RID)
    return copy.deepcopy(cf(event)["response"])


def test_response_round_trip_is_lossless() -> None:
    response = EdgeResponse(
        200,
        [
            ("Set-Cookie", "a=1"),
            ("X-Cache", "Hit"),
            ("content-type", "text/html"),
            ("set-cookie", "b"),
        ],
        b"origin body",
        "OK",
    )
    for stage in (Stage.ORIGIN_RESPONSE, Stage.VIEWER_RESPONSE):
        result = response_round_trip(stage, response)
        again = response_from_result(stage, result, response)
        assert again == response
        assert again.headers == response.headers and again.headers is not response.headers


def test_origin_response_body_replaces_absent_keeps() -> None:
    response = EdgeResponse(200, [("Content-Type", "text/plain")], b"origin", "OK")
    result = response_round_trip(Stage.ORIGIN_RESPONSE, response)
    assert response_from_result(Stage.ORIGIN_RESPONSE, result, response).body == b"origin"
    result["body"] = ""
    assert response_from_result(Stage.ORIGIN_RESPONSE, result, response).body == b""
    result.update(body="bmV3", bodyEncoding="base64")
    assert response_from_result(Stage.ORIGIN_RESPONSE, result, response).body == b"new"


def test_viewer_response_body_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    response = EdgeResponse(200, [], b"origin", "OK")
    result = response_round_trip(Stage.VIEWER_RESPONSE, response)
    result["body"] = "replaced"
    assert response_from_result(Stage.VIEWER_RESPONSE, result, response).body == b"origin"
    assert "ignored" in caplog.text


def test_status_change_updates_reason() -> None:
    response = EdgeResponse(200, [], b"", "Fine")
    result = response_round_trip(Stage.ORIGIN_RESPONSE, response)
    del result["statusDescription"]
    assert response_from_result(Stage.ORIGIN_RESPONSE, result, response).reason == "Fine"
    result["status"] = 404
    again = response_from_result(Stage.ORIGIN_RESPONSE, result, response)
    assert (again.status, again.reason) == (404, "Not Found")
