"""Response headers policies applied toward the viewer (DG understanding-response-headers-
policies): CORS on CORS requests only, preflight-only headers, override flags, removal before
addition, Server-Timing, and the edge's own answer to a preflight."""

from __future__ import annotations

from typing import Any

import pytest

from edgeproxy.config.policies import MANAGED_RESPONSE_HEADERS_POLICIES, RESPONSE_HEADERS_POLICY_IDS
from edgeproxy.config.response_headers_policy import ResponseHeadersPolicyConfig
from edgeproxy.messages import EdgeRequest, Headers, header_value, header_values
from edgeproxy.viewer.response_headers import (
    ResponseHeaders,
    ServerTiming,
    apply_response_headers,
    preflight_response,
)


def managed(name: str) -> ResponseHeaders:
    return ResponseHeaders.from_policy(
        MANAGED_RESPONSE_HEADERS_POLICIES[RESPONSE_HEADERS_POLICY_IDS[name]]
    )


def inline(**fields: Any) -> ResponseHeaders:
    return ResponseHeaders.from_policy(ResponseHeadersPolicyConfig(name="p", **fields))


def req(method: str = "GET", headers: Headers | None = None) -> EdgeRequest:
    return EdgeRequest(method, "/a", "", headers or [], "192.0.2.1")


def cors(**change: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "access_control_allow_credentials": False,
        "access_control_allow_headers": {"items": ["X-Api-Key", "Content-Type"]},
        "access_control_allow_methods": {"items": ["GET", "POST"]},
        "access_control_allow_origins": {"items": ["https://app.example.com"]},
        "access_control_expose_headers": {"items": ["ETag"]},
        "access_control_max_age_sec": 600,
        "origin_override": False,
    }
    config.update(change)
    return {"cors_config": config}


ORIGIN = [("Origin", "https://app.example.com")]
PREFLIGHT = [*ORIGIN, ("Access-Control-Request-Method", "POST")]


# --- managed policies ------------------------------------------------------------------------


def test_security_headers_policy_adds_its_headers() -> None:
    out = apply_response_headers(managed("SecurityHeadersPolicy"), req(), [], 200)
    assert header_value(out, "Strict-Transport-Security") == "max-age=31536000"
    assert header_value(out, "X-Content-Type-Options") == "nosniff"
    assert header_value(out, "X-Frame-Options") == "SAMEORIGIN"
    assert header_value(out, "Referrer-Policy") == "strict-origin-when-cross-origin"
    assert header_value(out, "X-XSS-Protection") == "1; mode=block"


def test_security_headers_origin_wins_except_nosniff() -> None:
    origin_headers = [("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "other")]
    out = apply_response_headers(managed("SecurityHeadersPolicy"), req(), origin_headers, 200)
    assert header_values(out, "X-Frame-Options") == ["DENY"]  # override false: origin's kept
    assert header_values(out, "X-Content-Type-Options") == ["nosniff"]  # override true


def test_simple_cors_only_on_cors_requests() -> None:
    policy = managed("SimpleCORS")
    assert (
        header_value(apply_response_headers(policy, req(), [], 200), "Access-Control-Allow-Origin")
        is None
    )
    out = apply_response_headers(policy, req(headers=ORIGIN), [], 200)
    assert header_value(out, "Access-Control-Allow-Origin") == "*"
    assert header_value(out, "Vary") is None  # "*" does not vary by Origin


def test_cors_with_preflight_adds_methods_to_the_preflight_alone() -> None:
    policy = managed("CORS-With-Preflight")
    simple = apply_response_headers(policy, req(headers=ORIGIN), [], 200)
    assert header_value(simple, "Access-Control-Allow-Methods") is None
    assert header_value(simple, "Access-Control-Expose-Headers") == "*"
    pre = apply_response_headers(policy, req("OPTIONS", PREFLIGHT), [], 200)
    assert header_value(pre, "Access-Control-Allow-Methods") == (
        "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
    )
    assert header_value(pre, "Access-Control-Allow-Origin") == "*"


def test_origin_cors_header_wins_without_override() -> None:
    out = apply_response_headers(
        managed("SimpleCORS"),
        req(headers=ORIGIN),
        [("Access-Control-Allow-Origin", "https://app.example.com")],
        200,
    )
    assert header_values(out, "Access-Control-Allow-Origin") == ["https://app.example.com"]


# --- inline CORS -----------------------------------------------------------------------------


def test_listed_origin_is_echoed_with_vary() -> None:
    policy = inline(**cors())
    out = apply_response_headers(policy, req(headers=ORIGIN), [("Vary", "Accept-Encoding")], 200)
    assert header_value(out, "Access-Control-Allow-Origin") == "https://app.example.com"
    assert header_values(out, "Vary") == ["Accept-Encoding, Origin"]
    assert header_value(out, "Access-Control-Expose-Headers") == "ETag"


def test_unlisted_origin_gets_no_cors_headers() -> None:
    policy = inline(**cors())
    out = apply_response_headers(policy, req(headers=[("Origin", "https://evil.example")]), [], 200)
    assert not [k for k, _ in out if k.lower().startswith("access-control")]


@pytest.mark.parametrize(
    ("pattern", "origin", "allowed"),
    [
        ("https://*.example.org", "https://a.example.org", True),
        ("https://*.example.org", "https://a.b.example.org", True),
        ("https://*.example.org", "https://example.org", False),
        ("https://*.example.org", "http://a.example.org", False),
        ("*.example.org", "http://a.example.org", True),
        ("https://app.example.com", "HTTPS://APP.EXAMPLE.COM", True),
    ],
)
def test_origin_patterns(pattern: str, origin: str, allowed: bool) -> None:
    policy = inline(**cors(access_control_allow_origins={"items": [pattern]}))
    out = apply_response_headers(policy, req(headers=[("Origin", origin)]), [], 200)
    assert (header_value(out, "Access-Control-Allow-Origin") == origin) is allowed


def test_preflight_headers_and_credentials() -> None:
    policy = inline(**cors(access_control_allow_credentials=True))
    out = apply_response_headers(policy, req("OPTIONS", PREFLIGHT), [], 204)
    assert header_value(out, "Access-Control-Allow-Methods") == "GET, POST"
    assert header_value(out, "Access-Control-Allow-Headers") == "X-Api-Key, Content-Type"
    assert header_value(out, "Access-Control-Max-Age") == "600"
    assert header_value(out, "Access-Control-Allow-Credentials") == "true"
    failed = apply_response_headers(policy, req("OPTIONS", PREFLIGHT), [], 403)
    assert header_value(failed, "Access-Control-Allow-Methods") is None


def test_all_methods_and_credentials_with_any_origin_echo() -> None:
    policy = inline(
        **cors(
            access_control_allow_methods={"items": ["ALL"]},
            access_control_allow_origins={"items": ["*"]},
            access_control_allow_credentials=True,
        )
    )
    out = apply_response_headers(policy, req("OPTIONS", PREFLIGHT), [], 200)
    assert header_value(out, "Access-Control-Allow-Methods") == (
        "GET, DELETE, HEAD, OPTIONS, PATCH, POST, PUT"
    )
    assert header_value(out, "Access-Control-Allow-Origin") == "https://app.example.com"


def test_cors_override_replaces_the_origins_value() -> None:
    policy = inline(**cors(origin_override=True))
    origin_headers = [("access-control-allow-origin", "*")]
    out = apply_response_headers(policy, req(headers=ORIGIN), origin_headers, 200)
    assert header_values(out, "Access-Control-Allow-Origin") == ["https://app.example.com"]


# --- custom, remove, security values ---------------------------------------------------------


def test_remove_then_add_and_custom_override() -> None:
    policy = inline(
        remove_headers_config={"items": [{"header": "X-Powered-By"}, {"header": "X-Team"}]},
        custom_headers_config={
            "items": [
                {"header": "X-Team", "value": "edge", "override": False},
                {"header": "Cache-Control", "value": "no-store", "override": True},
                {"header": "X-Keep", "value": "policy", "override": False},
            ]
        },
    )
    origin_headers = [
        ("X-Powered-By", "PHP"),
        ("X-Team", "origin"),
        ("Cache-Control", "max-age=60"),
        ("X-Keep", "origin"),
    ]
    before = list(origin_headers)
    out = apply_response_headers(policy, req(), origin_headers, 200)
    assert origin_headers == before  # the input list is left alone
    assert header_value(out, "X-Powered-By") is None
    assert header_values(out, "X-Team") == ["edge"]  # removed first, then added
    assert header_values(out, "Cache-Control") == ["no-store"]
    assert header_values(out, "X-Keep") == ["origin"]


def test_security_header_values() -> None:
    policy = inline(
        security_headers_config={
            "strict_transport_security": {
                "access_control_max_age_sec": 63072000,
                "include_subdomains": True,
                "preload": True,
                "override": True,
            },
            "xss_protection": {
                "protection": True,
                "report_uri": "https://r.example/x",
                "override": True,
            },
            "content_security_policy": {
                "content_security_policy": "default-src 'self'",
                "override": True,
            },
            "frame_options": {"frame_option": "DENY", "override": True},
        }
    )
    out = apply_response_headers(policy, req(), [("X-Frame-Options", "SAMEORIGIN")], 200)
    assert header_value(out, "Strict-Transport-Security") == (
        "max-age=63072000; includeSubDomains; preload"
    )
    assert header_value(out, "X-XSS-Protection") == "1; report=https://r.example/x"
    assert header_value(out, "Content-Security-Policy") == "default-src 'self'"
    assert header_values(out, "X-Frame-Options") == ["DENY"]


def test_xss_protection_off() -> None:
    policy = inline(
        security_headers_config={"xss_protection": {"protection": False, "override": False}}
    )
    assert header_value(apply_response_headers(policy, req(), [], 200), "X-XSS-Protection") == "0"


# --- Server-Timing ---------------------------------------------------------------------------


def timing(result: str = "hit", request_id: str = "rid") -> ServerTiming:
    return ServerTiming(result, "LHR50-C1", request_id, upstream_fbl_ms=12)


def test_server_timing_on_a_hit_replaces_the_stored_value() -> None:
    policy = inline(server_timing_headers_config={"enabled": True, "sampling_rate": 100})
    out = apply_response_headers(
        policy, req(), [("Server-Timing", "db;dur=5")], 200, timing=timing()
    )
    value = header_value(out, "Server-Timing")
    assert (
        value
        == 'cdn-cache-hit,cdn-pop;desc="LHR50-C1",cdn-rid;desc="rid",cdn-hit-layer;desc="EDGE"'
    )


def test_server_timing_on_a_miss_keeps_the_origins_value() -> None:
    policy = inline(server_timing_headers_config={"enabled": True, "sampling_rate": 100})
    out = apply_response_headers(
        policy, req(), [("Server-Timing", "db;dur=5")], 200, timing=timing("miss")
    )
    assert header_values(out, "Server-Timing") == [
        'cdn-upstream-layer;desc="EDGE",cdn-cache-miss,cdn-pop;desc="LHR50-C1",'
        'cdn-rid;desc="rid",cdn-upstream-fbl;dur=12,db;dur=5'
    ]


def test_server_timing_sampling_and_pragma() -> None:
    policy = inline(server_timing_headers_config={"enabled": True, "sampling_rate": 0})
    assert (
        header_value(
            apply_response_headers(policy, req(), [], 200, timing=timing()), "Server-Timing"
        )
        is None
    )
    asked = req(headers=[("Pragma", "server-timing")])
    assert header_value(
        apply_response_headers(policy, asked, [], 200, timing=timing()), "Server-Timing"
    )
    half = inline(server_timing_headers_config={"enabled": True, "sampling_rate": 50})
    sampled = sum(
        header_value(
            apply_response_headers(half, req(), [], 200, timing=timing(request_id=str(i))),
            "Server-Timing",
        )
        is not None
        for i in range(1000)
    )
    assert 400 < sampled < 600


# --- the edge's own preflight answer ---------------------------------------------------------


def test_preflight_answered_at_the_edge_with_override() -> None:
    policy = inline(**cors(origin_override=True))
    answer = preflight_response(policy, req("OPTIONS", PREFLIGHT))
    assert answer is not None
    assert answer.status == 200 and answer.body == b""
    assert header_value(answer.headers, "Access-Control-Allow-Methods") == "GET, POST"
    assert header_value(answer.headers, "Access-Control-Allow-Origin") == "https://app.example.com"


@pytest.mark.parametrize(
    ("policy", "request_"),
    [
        (inline(**cors(origin_override=False)), req("OPTIONS", PREFLIGHT)),  # goes to origin
        (inline(**cors(origin_override=True)), req("OPTIONS", ORIGIN)),  # not a preflight
        (inline(**cors(origin_override=True)), req("GET", PREFLIGHT)),
        (
            inline(**cors(origin_override=True)),
            req("OPTIONS", [("Origin", "https://x"), PREFLIGHT[1]]),
        ),
        (inline(), req("OPTIONS", PREFLIGHT)),
    ],
)
def test_preflight_not_answered_at_the_edge(policy: ResponseHeaders, request_: EdgeRequest) -> None:
    assert preflight_response(policy, request_) is None
