from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeproxy.errors import HandlerValidationError
from edgeproxy.functions.events import (
    EventMeta,
    request_event,
    request_stage_result,
    response_event,
    response_from_result,
)
from edgeproxy.functions.validation import (
    RULES,
    Kind,
    Subject,
    find_violation,
    result_kind,
    validate_request_result,
    validate_response_result,
)
from edgeproxy.messages import EdgeRequest, EdgeResponse, OriginTarget
from edgeproxy.stages import Stage

META = EventMeta("d111111abcdef8.cloudfront.net", "EDFDVBD6EXAMPLE")
VR, OR, ORESP, VRESP = (
    Stage.VIEWER_REQUEST,
    Stage.ORIGIN_REQUEST,
    Stage.ORIGIN_RESPONSE,
    Stage.VIEWER_RESPONSE,
)
KB = 1024


def edge_request() -> EdgeRequest:
    return EdgeRequest(
        method="POST",
        uri="/path",
        querystring="a=1",
        headers=[
            ("Host", "d111111abcdef8.cloudfront.net"),
            ("Accept-Encoding", "gzip"),
            ("Content-Length", "5"),
            ("X-Amz-Cf-Id", "hidden"),
        ],
        client_ip="203.0.113.178",
        body=b"hello",
        origin=OriginTarget("example.org", 443, "https"),
    )


def edge_response() -> EdgeResponse:
    return EdgeResponse(200, [("Content-Type", "text/html"), ("Transfer-Encoding", "chunked")])


def sent(stage: Stage, include_body: bool = True) -> dict[str, Any]:
    """What the handler received: its request (request stages) or response."""
    if stage in (VR, OR):
        event = request_event(stage, edge_request(), META, "rid", include_body)
        return copy.deepcopy(event["Records"][0]["cf"]["request"])
    event = response_event(stage, edge_request(), edge_response(), META, "rid")
    return copy.deepcopy(event["Records"][0]["cf"]["response"])


def changed(stage: Stage, **changes: Any) -> dict[str, Any]:
    result = sent(stage)
    result.update(changes)
    return result


def with_header(stage: Stage, name: str, entries: Any) -> dict[str, Any]:
    result = sent(stage)
    result["headers"][name] = entries
    return result


def without_header(stage: Stage, name: str) -> dict[str, Any]:
    result = sent(stage)
    del result["headers"][name]
    return result


def custom_origin(**changes: Any) -> dict[str, Any]:
    result = sent(OR)
    result["origin"]["custom"].update(changes)
    return result


def s3_origin(**fields: Any) -> dict[str, Any]:
    spec = {"authMethod": "none", "domainName": "bucket.s3.amazonaws.com", "path": ""}
    spec.update(fields)
    return changed(OR, origin={"s3": spec})


def gen(**fields: Any) -> dict[str, Any]:
    return {"status": 200, **fields}


def violation(stage: Stage, result: Any, include_body: bool = True) -> tuple[str, str] | None:
    original = edge_request().headers if stage in (VR, OR) else edge_response().headers
    subject = Subject(
        stage,
        result_kind(stage, result),
        result,
        original,
        edge_request(),
        edge_response() if stage in (ORESP, VRESP) else None,
        include_body,
    )
    found = find_violation(subject)
    return None if found is None else (found.rule, found.detail)


def h(value: str, key: str | None = None) -> list[dict[str, str]]:
    return [{"value": value} if key is None else {"key": key, "value": value}]


BIG = 40 * KB
# (rule, stage, result, words the detail must contain)
CASES: list[tuple[str, Stage, Any, str]] = [
    ("result-is-object", VR, None, "The JSON output must be an object type."),
    ("result-is-object", OR, [], "The JSON output must be an object type."),
    ("result-is-object", VRESP, "response", "The JSON output must be an object type."),
    ("headers-is-object", VR, changed(VR, headers=[]), "headers must be an object"),
    ("headers-is-object", VR, gen(headers="x"), "headers must be an object"),
    ("header-entry-is-array", VR, with_header(VR, "x-a", {"value": "1"}), "must be an array"),
    ("header-entry-is-array", ORESP, with_header(ORESP, "x-a", "1"), "header :x-a"),
    ("header-value-is-string", VR, with_header(VR, "x-a", ["1"]), "header :x-a"),
    ("header-value-is-string", VR, with_header(VR, "x-a", [{"key": "X-A"}]), "string"),
    ("header-value-is-string", OR, with_header(OR, "x-a", [{"value": 1}]), "header :x-a"),
    ("header-name-valid", VR, with_header(VR, "bad name", h("1")), "'bad name'"),
    ("header-name-valid", VR, with_header(VR, "x-a", h("1", "X A")), "'X A'"),
    ("header-name-valid", VR, with_header(VR, "x-a", h("1", 5)), "invalid header key"),  # type: ignore[arg-type]
    ("header-value-chars", VR, gen(headers={"location": h("/a\r\nb")}), "'%0D'"),
    ("header-value-chars", OR, with_header(OR, "x-a", h("a\nb", "X-A")), "'%0A'"),
    ("header-value-chars", VR, gen(headers={"x-a": h("\ud800")}), "'%D800'"),
    ("header-value-chars", VRESP, with_header(VRESP, "x-a", h("a\x00")), "headerName : X-A"),
    ("disallowed-header", VR, with_header(VR, "connection", h("close")), "headerName : connection"),
    ("disallowed-header", OR, with_header(OR, "X-Amz-Cf-Pop", h("x")), "blacklisted header"),
    ("disallowed-header", VRESP, with_header(VRESP, "x-edge-foo", h("x")), "x-edge-foo"),
    ("disallowed-header", VR, gen(headers={"x-cache": h("Hit")}), "x-cache"),
    (
        "disallowed-header",
        OR,
        custom_origin(customHeaders={"x-real-ip": h("1.2.3.4")}),
        "origin.custom.customHeaders",
    ),
    ("read-only-header", VR, with_header(VR, "host", h("other")), "change read-only header"),
    ("read-only-header", VR, without_header(VR, "host"), "delete read-only header"),
    ("read-only-header", VR, with_header(VR, "via", h("1.1 x")), "add read-only header"),
    ("read-only-header", OR, with_header(OR, "accept-encoding", h("br")), "Accept-Encoding"),
    ("read-only-header", ORESP, without_header(ORESP, "transfer-encoding"), "Transfer-Encoding"),
    ("read-only-header", VRESP, with_header(VRESP, "warning", h("199")), "add read-only header"),
    ("read-only-header", VR, gen(headers={"content-length": h("0")}), "Content-Length"),
    (
        "viewer-country-added",
        VR,
        with_header(VR, "cloudfront-viewer-country", h("US")),
        "CloudFront-Viewer-Country",
    ),
    ("status-valid", VR, gen(status=199), "199"),
    ("status-valid", OR, gen(status="600"), "'600'"),
    ("status-valid", VR, gen(status="abc"), "between 200 and 599"),
    ("status-valid", VR, gen(status=None), "None"),
    ("status-valid", VR, gen(status=True), "True"),
    ("status-valid", VR, gen(status=200.0), "200.0"),
    ("status-valid", ORESP, {"headers": sent(ORESP)["headers"]}, "no status"),
    ("status-unchanged", VRESP, changed(VRESP, status=404), "from 200 to 404"),
    ("status-description-string", ORESP, changed(ORESP, statusDescription=5), "statusDescription"),
    ("status-description-chars", VR, gen(statusDescription="OK\r\nX-A: 1"), "'%0D'"),
    ("status-description-chars", OR, gen(statusDescription="OK\nX-A: 1"), "'%0A'"),
    ("status-description-chars", ORESP, changed(ORESP, statusDescription="O\x00K"), "'%00'"),
    ("status-description-chars", VRESP, changed(VRESP, statusDescription="\x1b[1m"), "'%1B'"),
    ("status-description-chars", VRESP, changed(VRESP, statusDescription="\ud800"), "'%D800'"),
    ("body-is-string", VR, gen(body={"a": 1}), "The body is not a string"),
    ("body-is-string", ORESP, changed(ORESP, body=b"x"), "bytes"),
    ("body-is-string", VR, gen(body="\ud800"), "not valid UTF-8"),
    ("body-encoding", VR, gen(body="x", bodyEncoding="gzip"), "bodyEncoding"),
    ("body-encoding", OR, gen(body="not base64!", bodyEncoding="base64"), "not valid base64"),
    ("no-content-body", VR, gen(status=204, body="x"), "204"),
    ("generated-size", VR, gen(body="a" * (BIG + 1)), f"header was {BIG + 1} bytes"),
    ("generated-size", VR, gen(body="é" * (BIG // 2) + "a"), "exceeded the CloudFront limit"),
    ("generated-size", OR, gen(body="a" * (1024 * KB + 1)), "limit of 1048576 bytes"),
    (
        "generated-size",
        VR,
        gen(
            body=base64.b64encode(b"a" * BIG).decode(),
            bodyEncoding="base64",
            headers={"x-a": h("1")},
        ),
        f"was {BIG + 8} bytes",
    ),
    ("generated-size", ORESP, changed(ORESP, body="a" * 1024 * KB), "1048576"),
    ("uri-valid", VR, changed(VR, uri="path"), "start"),
    ("uri-valid", OR, changed(OR, uri=5), "5"),
    ("uri-valid", OR, changed(OR, uri="/\udc80"), "start"),
    ("uri-chars", VR, changed(VR, uri="/a b"), "'%20'"),
    ("uri-chars", VR, changed(VR, uri="/a\r\nX-A: 1"), "'%0D'"),
    ("uri-chars", OR, changed(OR, uri="/a\x00"), "'%00'"),
    ("uri-chars", OR, changed(OR, uri="/a#b"), "'%23'"),
    ("uri-chars", OR, changed(OR, uri="/a\x7f"), "'%7F'"),
    ("querystring-valid", VR, changed(VR, querystring="a b"), "' '"),
    ("querystring-valid", VR, changed(VR, querystring="a#b"), "'#'"),
    ("querystring-valid", OR, changed(OR, querystring="a\x01"), "'\\x01'"),
    ("querystring-valid", OR, changed(OR, querystring=["a"]), "must be a string"),
    ("url-length", VR, changed(VR, uri="/" + "a" * 8191, querystring=""), "8192"),
    ("url-length", OR, changed(OR, uri="/", querystring="a" * 8191), "fewer than 8192"),
    ("request-body", VR, changed(VR, body="raw"), "must be an object"),
    ("request-body", VR, changed(VR, body={"action": "delete"}), "body.action"),
    (
        "request-body",
        VR,
        changed(VR, body={"action": "replace", "encoding": "gzip", "data": ""}),
        "body.encoding",
    ),
    (
        "request-body",
        OR,
        changed(OR, body={"action": "replace", "encoding": "base64", "data": "@@"}),
        "not valid base64",
    ),
    ("request-body", VR, changed(VR, body={"action": "replace", "data": 5}), "body.data is int"),
    (
        "request-body",
        VR,
        changed(VR, body={"action": "replace", "encoding": "text", "data": "\udfff"}),
        "not valid UTF-8",
    ),
    (
        "request-body",
        VR,
        changed(VR, body={"action": "replace", "encoding": "text", "data": "a" * (BIG + 1)}),
        "over the limit of 40960 bytes",
    ),
    (
        "request-body",
        VR,
        changed(VR, body={"action": "replace", "data": "QUFB" * (BIG // 3 + 2)}),
        "over the limit of 54616 bytes",
    ),
    ("origin-valid", OR, changed(OR, origin="example.org"), "exactly one of custom or s3"),
    ("origin-valid", OR, changed(OR, origin={"custom": {}, "s3": {}}), "exactly one"),
    ("origin-valid", OR, changed(OR, origin={"custom": "x"}), "exactly one"),
    ("origin-valid", OR, changed(OR, origin={"custom": {"port": 80}}), "domainName is required"),
    ("origin-valid", OR, custom_origin(domainName=""), "origin.custom.domainName"),
    ("origin-valid", OR, custom_origin(domainName="a" * 254), "origin.custom.domainName"),
    ("origin-valid", OR, custom_origin(domainName="example.org:8080"), "not an IP"),
    ("origin-valid", OR, custom_origin(domainName="192.0.2.1"), "not an IP address"),
    ("origin-valid", OR, custom_origin(domainName="::1"), "domainName"),
    ("origin-valid", OR, custom_origin(port=81), "origin.custom.port"),
    ("origin-valid", OR, custom_origin(port="443"), "origin.custom.port"),
    ("origin-valid", OR, custom_origin(protocol="ftp"), "http or https"),
    ("origin-valid", OR, custom_origin(path="/v1/"), "no trailing"),
    ("origin-valid", OR, custom_origin(path="v1"), "origin.custom.path"),
    ("origin-valid", OR, custom_origin(path="/a b"), "URL-encoded"),
    ("origin-valid", OR, custom_origin(path="/" + "a" * 255), "origin.custom.path"),
    ("origin-valid", OR, custom_origin(keepaliveTimeout=61), "1-60"),
    ("origin-valid", OR, custom_origin(keepaliveTimeout=0), "1-60"),
    ("origin-valid", OR, custom_origin(readTimeout=3), "4-60"),
    ("origin-valid", OR, custom_origin(readTimeout=5.5), "4-60"),
    ("origin-valid", OR, custom_origin(sslProtocols=["TLSv1.3"]), "sslProtocols"),
    ("origin-valid", OR, custom_origin(sslProtocols="TLSv1.2"), "sslProtocols"),
    (
        "origin-valid",
        OR,
        custom_origin(customHeaders={"host": h("example.org")}),
        "also in the request headers",
    ),
    ("origin-valid", OR, s3_origin(domainName="Bucket.s3.amazonaws.com"), "lower-case"),
    ("origin-valid", OR, s3_origin(domainName="a" * 129), "origin.s3.domainName"),
    ("origin-valid", OR, s3_origin(authMethod="oac"), "authMethod"),
    ("origin-valid", OR, s3_origin(authMethod="origin-access-identity"), "region is required"),
    ("origin-valid", OR, s3_origin(path="/p/"), "origin.s3.path"),
]


@pytest.mark.parametrize(("rule", "stage", "result", "words"), CASES)
def test_rule(rule: str, stage: Stage, result: Any, words: str) -> None:
    found = violation(stage, result)
    assert found is not None, "no violation found"
    assert found[0] == rule
    assert words in found[1]


def test_every_rule_has_a_case() -> None:
    assert {rule.name for rule in RULES} == {case[0] for case in CASES}


def test_origin_rules_only_judge_what_the_handler_wrote() -> None:
    request = edge_request()
    request.origin = OriginTarget("127.0.0.1", 81, "http", path="/v1/")  # a local demo origin
    event = request_event(OR, request, META, "rid", False)
    result = copy.deepcopy(event["Records"][0]["cf"]["request"])
    validate_request_result(OR, result, request, False)  # returned as sent: fine
    result["origin"]["custom"]["readTimeout"] = 10
    validate_request_result(OR, result, request, False)  # unchanged odd fields still fine
    result["origin"]["custom"]["domainName"] = "192.0.2.1"
    with pytest.raises(HandlerValidationError, match="not an IP address"):
        validate_request_result(OR, result, request, False)


@pytest.mark.parametrize(
    ("stage", "result"),
    [
        (VR, sent(VR)),
        (OR, sent(OR)),
        (ORESP, sent(ORESP)),
        (VRESP, sent(VRESP)),
        (VR, gen()),  # only status is required
        (VR, gen(status="302", headers={"location": h("https://x.example/")})),
        (VR, gen(status=204)),
        (OR, gen(status=204, body="x")),  # only viewer-request forbids it
        (VR, gen(body="a" * (BIG - 3 - 10 - 4), headers={"x-a": h("1234567890")})),  # at the limit
        (VR, gen(body="", bodyEncoding="base64")),
        (VR, gen(body="AAEC\nAAEC", bodyEncoding="base64")),  # line breaks are fine
        (VR, gen(body=None, statusDescription=None, bodyEncoding=None, headers=None)),
        (VR, changed(VR, uri="/a" * 10, querystring="x=a%20b")),
        (VR, changed(VR, querystring="a=1")),  # unchanged
        (VR, changed(VR, uri="/caf\u00e9/a%20b%0D%0A")),  # UTF-8 and percent-encoding
        (VR, gen(statusDescription="Tr\u00e8s\tbien")),  # HTAB and obs-text: RFC 9110
        (OR, with_header(OR, "cloudfront-viewer-country", h("US"))),
        (OR, with_header(OR, "host", h("other.example"))),  # Host is writable in origin-request
        (ORESP, with_header(ORESP, "x-amzn-trace-id", h("1"))),  # not on the list
        (ORESP, changed(ORESP, status=404, statusDescription="Not Found", body="gone")),
        (VRESP, changed(VRESP, status="200")),  # same status as a string
        (VRESP, with_header(VRESP, "content-length", h("99"))),  # not read-only since 2023
        (OR, custom_origin(domainName="other.example", port=8080, protocol="http", path="/v1")),
        (OR, s3_origin(authMethod="origin-access-identity", region="eu-west-1")),
        (OR, changed(OR, body={"action": "replace", "encoding": "text", "data": "x"})),
        (OR, changed(OR, body={"inputTruncated": False, "action": "read-only"})),
    ],
)
def test_valid_results_pass(stage: Stage, result: Any) -> None:
    assert violation(stage, result) is None


def test_character_rules_judge_only_what_the_handler_wrote() -> None:
    """An origin's odd reason phrase or a viewer's odd uri, returned unchanged, is not the
    handler's breach (the writer and the viewer parser judge those)."""
    response = EdgeResponse(200, [("Content-Type", "text/html")], reason="O\x1bK")
    event = response_event(ORESP, edge_request(), response, META, "rid")
    result = copy.deepcopy(event["Records"][0]["cf"]["response"])
    validate_response_result(ORESP, result, response)
    request = edge_request()
    request.uri = "/a\x0cb"
    event = request_event(VR, request, META, "rid", False)
    validate_request_result(VR, copy.deepcopy(event["Records"][0]["cf"]["request"]), request, False)


def test_headers_none_in_viewer_request_deletes_host() -> None:
    assert violation(VR, changed(VR, headers=None)) == (
        "read-only-header",
        "Lambda function result failed validation, the function tried to delete read-only "
        "header, headerName : Content-Length",
    )


def test_request_body_rules_need_include_body() -> None:
    assert violation(VR, changed(VR, body="raw"), include_body=False) is None


def test_viewer_sent_country_may_be_changed() -> None:
    request = edge_request()
    request.headers.append(("CloudFront-Viewer-Country", "DE"))
    result = copy.deepcopy(request_event(VR, request, META, "r", False))["Records"][0]["cf"][
        "request"
    ]
    result["headers"]["cloudfront-viewer-country"] = h("US")
    validate_request_result(VR, result, request, False)


def test_validate_raises_handler_validation_error() -> None:
    with pytest.raises(HandlerValidationError) as info:
        validate_request_result(VR, None, edge_request(), False, handler="h.py:handler")
    assert info.value.status == 502
    assert (info.value.stage, info.value.handler) == ("viewer-request", "h.py:handler")
    assert info.value.detail == (
        "The Lambda function returned invalid JSON: The JSON output must be an object type."
    )
    with pytest.raises(HandlerValidationError, match="from 200 to 500"):
        validate_response_result(VRESP, {"status": 500}, edge_response())


def test_kinds() -> None:
    assert result_kind(VR, {"status": 200}) is Kind.GENERATED
    assert result_kind(OR, {"uri": "/"}) is Kind.REQUEST
    assert result_kind(ORESP, {"status": 200}) is Kind.RESPONSE
    assert result_kind(VR, None) is Kind.REQUEST


# --- property: nothing but HandlerValidationError, and what passes converts -------------------

# Text as JSON can carry it: lone surrogates included (a "\\ud800" escape).
any_text = st.text(max_size=8) | st.text(
    st.characters(categories=["Cs", "Ll", "Cc", "Zs", "Po"]), max_size=8
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
names = st.sampled_from(
    ["host", "via", "x-a", "Content-Length", "connection", "bad name", "cloudfront-viewer-country"]
)
entries = st.lists(
    st.fixed_dictionaries(
        {},
        optional={"key": st.one_of(names, json_values), "value": st.one_of(st.text(), json_values)},
    )
    | json_values,
    max_size=3,
)
header_maps = st.dictionaries(names, entries | json_values, max_size=4) | json_values
origin_specs = st.fixed_dictionaries(
    {},
    optional={
        "domainName": st.sampled_from(["example.org", "1.2.3.4", "Bucket", ""]) | json_values,
        "port": st.sampled_from([80, 443, 81, 8080, "443"]) | json_values,
        "protocol": st.sampled_from(["http", "https", "ftp"]),
        "path": st.sampled_from(["", "/a", "/a/", "a"]) | json_values,
        "readTimeout": st.integers(0, 70) | json_values,
        "keepaliveTimeout": st.integers(0, 70),
        "sslProtocols": st.lists(st.sampled_from(["TLSv1.2", "TLSv1.3"])) | json_values,
        "customHeaders": header_maps,
        "authMethod": st.sampled_from(["none", "origin-access-identity", "x"]),
        "region": st.sampled_from(["", "eu-west-1"]) | json_values,
    },
)
results = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from([200, "204", 302, 199, "600", "x", True]) | json_values,
        "statusDescription": st.text(max_size=5) | json_values,
        "headers": header_maps,
        "body": st.text(max_size=10)
        | st.fixed_dictionaries(
            {},
            optional={
                "action": st.sampled_from(["replace", "read-only", "x"]),
                "encoding": st.sampled_from(["text", "base64", "x"]),
                "data": st.sampled_from(["", "AAEC", "@@", "héllo"]) | json_values,
            },
        )
        | json_values,
        "bodyEncoding": st.sampled_from(["text", "base64", "x"]) | json_values,
        "uri": st.sampled_from(["/", "/a", "a", ""]) | json_values,
        "querystring": st.sampled_from(["", "a=1", "a b", "#"]) | json_values,
        "origin": st.fixed_dictionaries(
            {}, optional={"custom": origin_specs | json_values, "s3": origin_specs}
        )
        | json_values,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stage=st.sampled_from(list(Stage)),
    result=results | json_values,
    include_body=st.booleans(),
)
def test_validation_raises_only_its_own_error(
    stage: Stage, result: Any, include_body: bool
) -> None:
    request, response = edge_request(), edge_response()
    try:
        if stage in (VR, OR):
            validate_request_result(stage, result, request, include_body)
            request_stage_result(stage, result, request, include_body)
        else:
            validate_response_result(stage, result, response)
            response_from_result(stage, result, response)
    except HandlerValidationError:
        pass
