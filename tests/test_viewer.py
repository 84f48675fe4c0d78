"""The CloudFront-* viewer headers: device classes from real User-Agent strings, value
formats, which stage sees them (absent at viewer-request, present at origin-request when a
cache key or origin request policy names them, absent when nothing does), where the
location comes from and in which order, and viewer-sent values: trusted or removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import RecordingOrigin, StartEdge, distribution

from edgeproxy.messages import EdgeRequest
from edgeproxy.viewer.cloudfront_headers import (
    _CANONICAL,
    VIEWER_HEADERS,
    ViewerFacts,
    device_of,
    https_redirect,
    sent_cf_headers,
    split_viewer_cf_headers,
    toward_origin,
    viewer_cf_headers,
)
from edgeproxy.viewer.geo import Location

# -- device classes --------------------------------------------------------------------------

# Real User-Agent strings → (mobile, tablet, smarttv, desktop, ios, android).
DEVICES: dict[str, tuple[str, tuple[bool, bool, bool, bool, bool, bool]]] = {
    "chrome on windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        (False, False, False, True, False, False),
    ),
    "safari on macos": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.4.1 Safari/605.1.15",
        (False, False, False, True, False, False),
    ),
    "firefox on linux": (
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        (False, False, False, True, False, False),
    ),
    "curl": ("curl/8.5.0", (False, False, False, True, False, False)),
    "no user-agent": ("", (False, False, False, True, False, False)),
    "iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        (True, False, False, False, True, False),
    ),
    "pixel phone": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36",
        (True, False, False, False, False, True),
    ),
    "galaxy phone, samsung internet": (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like "
        "Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        (True, False, False, False, False, True),
    ),
    "firefox on android": (
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        (True, False, False, False, False, True),
    ),
    # Tablets are mobile viewers too (CloudFront may set both, reference 6.1).
    "ipad": (
        "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        (True, True, False, False, True, False),
    ),
    "galaxy tab": (
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Safari/537.36",
        (True, True, False, False, False, True),
    ),
    "kindle fire": (
        "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Silk/124.2.1 like Chrome/124.0.6367.82 Safari/537.36",
        (True, True, False, False, False, True),
    ),
    "samsung tizen tv": (
        "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "76.0.3809.146/6.0 TV Safari/537.36",
        (False, False, True, False, False, False),
    ),
    "lg webos tv": (
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
        (False, False, True, False, False, False),
    ),
    "apple tv": ("AppleTV11,1/11.1", (False, False, True, False, False, False)),
    "roku": ("Roku4640X/DVP-7.70 (297.70E04154A)", (False, False, True, False, False, False)),
    "fire tv": (
        "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7633.3445N; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Safari/537.36",
        (False, False, True, False, False, True),
    ),
}


@pytest.mark.parametrize("name", DEVICES)
def test_device_classes_from_real_user_agents(name: str):
    user_agent, expected = DEVICES[name]
    device = device_of(user_agent)
    got = (device.mobile, device.tablet, device.smarttv, device.desktop, device.ios)
    assert (*got, device.android) == expected


DEVICE_HEADERS = [
    "CloudFront-Is-Mobile-Viewer",
    "CloudFront-Is-Tablet-Viewer",
    "CloudFront-Is-SmartTV-Viewer",
    "CloudFront-Is-Desktop-Viewer",
    "CloudFront-Is-IOS-Viewer",
    "CloudFront-Is-Android-Viewer",
]


async def test_device_headers_reach_the_origin_for_every_class(
    origin: RecordingOrigin, start_edge: StartEdge
):
    forwarded = {"query_string": False, "cookies": {"forward": "none"}, "headers": DEVICE_HEADERS}
    viewer = await start_edge(distribution(origin.port, forwarded_values=forwarded))
    for name in ("chrome on windows", "iphone", "galaxy tab", "samsung tizen tv", "pixel phone"):
        user_agent, expected = DEVICES[name]
        await viewer.get(f"/{name}", headers={"User-Agent": user_agent})
        seen = origin.requests_for(f"/{name}")[0].headers
        assert tuple(seen[h] for h in DEVICE_HEADERS) == tuple(
            "true" if flag else "false" for flag in expected
        ), name
        assert seen["User-Agent"] == "Amazon CloudFront"  # not forwarded: replaced


async def test_device_headers_are_in_the_cache_key(origin: RecordingOrigin, start_edge: StartEdge):
    forwarded = {"query_string": False, "cookies": {"forward": "none"}, "headers": DEVICE_HEADERS}
    viewer = await start_edge(distribution(origin.port, forwarded_values=forwarded))
    phone = {"User-Agent": DEVICES["iphone"][0]}
    assert (await viewer.get("/p", headers=phone)).headers["x-cache"] == "Miss from cloudfront"
    tablet = {"User-Agent": DEVICES["ipad"][0]}
    assert (await viewer.get("/p", headers=tablet)).headers["x-cache"] == "Miss from cloudfront"
    older_iphone = {"User-Agent": DEVICES["iphone"][0].replace("17_4_1", "16_6")}
    hit = await viewer.get("/p", headers=older_iphone)  # another User-Agent, the same flags
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert len(origin.requests_for("/p")) == 2


# -- value formats -------------------------------------------------------------------------


def facts(**request: Any) -> ViewerFacts:
    values: dict[str, Any] = {"client_ip": "127.0.0.1", "client_port": 50235}
    values.update(request)
    return ViewerFacts(EdgeRequest("GET", "/", "", [], **values), None)


def test_address_is_ip_colon_port_without_brackets_for_ipv6():
    names = ["cloudfront-viewer-address"]
    assert viewer_cf_headers(names, facts()) == [("CloudFront-Viewer-Address", "127.0.0.1:50235")]
    ipv6 = facts(client_ip="2600:1700:1:5eca::1")
    assert viewer_cf_headers(names, ipv6) == [
        ("CloudFront-Viewer-Address", "2600:1700:1:5eca::1:50235")
    ]


def test_tls_and_http_version_values():
    tls = "TLSv1.3:TLS_AES_128_GCM_SHA256:fullHandshake"
    names = ["cloudfront-viewer-tls", "cloudfront-viewer-http-version"]
    got = viewer_cf_headers(names, facts(scheme="https", tls=tls, http_version="1.1"))
    assert got == [("CloudFront-Viewer-TLS", tls), ("CloudFront-Viewer-Http-Version", "1.1")]
    assert viewer_cf_headers(names, facts()) == [("CloudFront-Viewer-Http-Version", "1.1")]


def test_header_names_are_written_as_cloudfront_writes_them():
    assert _CANONICAL["cloudfront-viewer-asn"] == "CloudFront-Viewer-ASN"
    assert _CANONICAL["cloudfront-is-smarttv-viewer"] == "CloudFront-Is-SmartTV-Viewer"
    assert _CANONICAL["cloudfront-is-ios-viewer"] == "CloudFront-Is-IOS-Viewer"
    assert _CANONICAL["cloudfront-viewer-country-region-name"] == (
        "CloudFront-Viewer-Country-Region-Name"
    )
    assert len(VIEWER_HEADERS) == 21


def test_unknown_geo_fields_are_not_added():
    located = ViewerFacts(facts().request, Location("US", "United States"))
    names = ["cloudfront-viewer-country", "cloudfront-viewer-city"]
    assert viewer_cf_headers(names, located) == [("CloudFront-Viewer-Country", "US")]


def test_a_trusted_country_moves_the_viewer_there():
    berlin = Location("DE", "Germany", city="Berlin")
    trusted = {"cloudfront-viewer-country": "FR"}
    moved = ViewerFacts(facts().request, berlin, trusted)
    names = [n.lower() for n in GEO]
    assert viewer_cf_headers(names, moved) == [
        ("CloudFront-Viewer-Country", "FR"),
        ("CloudFront-Viewer-Country-Name", "France"),
    ]
    same = ViewerFacts(facts().request, berlin, {"cloudfront-viewer-country": "DE"})
    assert ("CloudFront-Viewer-City", "Berlin") in viewer_cf_headers(names, same)


def test_viewer_sent_cloudfront_headers_are_split_off_when_trusted():
    headers = [("Host", "a"), ("cloudfront-viewer-country", "DE"), ("X-Other", "1")]
    kept, trusted = split_viewer_cf_headers(headers)
    assert kept == [("Host", "a"), ("X-Other", "1")]
    assert trusted == {"cloudfront-viewer-country": "DE"}


def test_viewer_sent_cloudfront_headers_give_way_toward_the_origin():
    headers = [
        ("Host", "a"),
        ("CloudFront-Viewer-Country", "DE"),
        ("cloudfront-is-ios-viewer", "x"),
    ]
    sent = sent_cf_headers(headers)
    assert sent == {"cloudfront-viewer-country", "cloudfront-is-ios-viewer"}
    assert toward_origin(headers, sent, ()) == [("Host", "a")]
    added_by_a_function = [("Host", "a"), ("CloudFront-Is-Mobile-Viewer", "true")]
    assert toward_origin(added_by_a_function, frozenset(), ()) == added_by_a_function
    assert toward_origin(added_by_a_function, frozenset(), ["cloudfront-is-mobile-viewer"]) == [
        ("Host", "a")
    ]


def test_redirect_location_keeps_the_host_and_names_the_https_port():
    request = EdgeRequest("GET", "/a", "b=1", [("Host", "[::1]:8080")], "::1")
    assert ("Location", "https://[::1]:8443/a?b=1") in https_redirect(request, 8443).headers
    assert ("Location", "https://[::1]/a?b=1") in https_redirect(request, 443).headers


# -- which stage sees them -----------------------------------------------------------------

# A handler file of the test's own: viewer-request notes the CloudFront-* headers it sees in
# a header of its own; origin-request answers with what both stages saw.
RECORDER = """
import json

NOTE = "x-viewer-request-saw"


def viewer_request(event, context):
    request = event["Records"][0]["cf"]["request"]
    seen = sorted(k for k in request["headers"] if k.startswith("cloudfront-"))
    request["headers"][NOTE] = [{"key": "X-Viewer-Request-Saw", "value": json.dumps(seen)}]
    return request


def origin_request(event, context):
    headers = event["Records"][0]["cf"]["request"]["headers"]
    body = {
        "viewer_request": json.loads(headers[NOTE][0]["value"]) if NOTE in headers else None,
        "origin_request": {
            k: v[0]["value"] for k, v in headers.items() if k.startswith("cloudfront-")
        },
    }
    content_type = [{"key": "Content-Type", "value": "application/json"}]
    return {"status": "200", "headers": {"content-type": content_type}, "body": json.dumps(body)}
"""
NOTE = "X-Viewer-Request-Saw"
GEO = ["CloudFront-Viewer-Country", "CloudFront-Viewer-Country-Name", "CloudFront-Viewer-City"]


def recording(tmp_path: Path, origin: RecordingOrigin, **behavior: Any) -> dict[str, Any]:
    path = tmp_path / "recorder.py"
    path.write_text(RECORDER)
    hooks = [
        {"event_type": "viewer-request", "handler": f"{path}:viewer_request"},
        {"event_type": "origin-request", "handler": f"{path}:origin_request"},
    ]
    document = distribution(origin.port, lambda_function_association=hooks, **behavior)
    document["edge"]["geo"] = {
        "default": {"country": "US", "city": "Cleveland"},
        "ranges": [{"cidr": "127.0.0.2/32", "country": "FR", "city": "Paris"}],
    }
    return document


def legacy(*headers: str) -> dict[str, Any]:
    return {
        "forwarded_values": {
            "query_string": False,
            "cookies": {"forward": "none"},
            "headers": [NOTE, *headers],
        }
    }


def cache_policy(*headers: str) -> dict[str, Any]:
    items = {"header_behavior": "whitelist", "headers": {"items": [NOTE, *headers]}}
    return {
        "forwarded_values": None,
        "cache_policy": {
            "name": "by-headers",
            "min_ttl": 0,
            "default_ttl": 60,
            "max_ttl": 600,
            "parameters_in_cache_key_and_forwarded_to_origin": {
                "headers_config": items,
                "cookies_config": {"cookie_behavior": "none"},
                "query_strings_config": {"query_string_behavior": "none"},
            },
        },
    }


def origin_request_policy(*headers: str) -> dict[str, Any]:
    return {
        "forwarded_values": None,
        "cache_policy_id": "CachingDisabled",
        "origin_request_policy": {
            "name": "forward-headers",
            "headers_config": {
                "header_behavior": "whitelist",
                "headers": {"items": [NOTE, *headers]},
            },
            "cookies_config": {"cookie_behavior": "none"},
            "query_strings_config": {"query_string_behavior": "none"},
        },
    }


async def saw(start_edge: StartEdge, document: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    behavior = document["distribution"]["default_cache_behavior"]
    if behavior.get("forwarded_values", "") is None:
        behavior.pop("forwarded_values")
    viewer = await start_edge(document)
    response = await viewer.get("/seen", **kwargs)
    assert response.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    found: dict[str, Any] = response.json()
    return found


@pytest.mark.parametrize("named_by", [legacy, cache_policy, origin_request_policy])
async def test_absent_at_viewer_request_present_at_origin_request(
    tmp_path: Path, origin: RecordingOrigin, start_edge: StartEdge, named_by: Any
):
    document = recording(tmp_path, origin, **named_by(*GEO, "CloudFront-Forwarded-Proto"))
    seen = await saw(start_edge, document)
    assert seen["viewer_request"] == []
    assert seen["origin_request"] == {
        "cloudfront-viewer-country": "US",
        "cloudfront-viewer-country-name": "United States",
        "cloudfront-viewer-city": "Cleveland",
        "cloudfront-forwarded-proto": "http",
    }


async def test_absent_everywhere_when_nothing_names_them(
    tmp_path: Path, origin: RecordingOrigin, start_edge: StartEdge
):
    seen = await saw(start_edge, recording(tmp_path, origin, **legacy()))
    assert seen == {"viewer_request": [], "origin_request": {}}


async def test_headers_only_an_origin_request_policy_may_name(
    tmp_path: Path, origin: RecordingOrigin, start_edge: StartEdge
):
    orp_only = ("CloudFront-Viewer-Address", "CloudFront-Viewer-ASN")
    in_key = await saw(start_edge, recording(tmp_path, origin, **legacy(*orp_only)))
    assert in_key["origin_request"] == {}  # a cache key cannot hold them
    document = recording(tmp_path, origin, **origin_request_policy(*orp_only))
    document["edge"]["geo"]["default"]["asn"] = 7018
    forwarded = await saw(start_edge, document)
    assert forwarded["origin_request"]["cloudfront-viewer-asn"] == "7018"
    assert forwarded["origin_request"]["cloudfront-viewer-address"].startswith("127.0.0.1:")


# -- viewer-sent values: trusted or removed ---------------------------------------------------

SPOOFED = {"CloudFront-Viewer-Country": "DE", "CloudFront-Is-Mobile-Viewer": "true"}


async def test_spoofed_headers_give_way_to_cloudfronts_when_trust_is_off(
    tmp_path: Path, origin: RecordingOrigin, start_edge: StartEdge
):
    """viewer-request sees what the viewer sent; origin-request CloudFront's own values
    (Developer Guide "Restrictions on Lambda@Edge", CloudFront headers; reference 4.3)."""
    document = recording(tmp_path, origin, **legacy(*GEO, "CloudFront-Is-Mobile-Viewer"))
    seen = await saw(start_edge, document, headers=SPOOFED)
    assert seen["viewer_request"] == ["cloudfront-is-mobile-viewer", "cloudfront-viewer-country"]
    assert seen["origin_request"]["cloudfront-viewer-country"] == "US"  # the located value
    assert seen["origin_request"]["cloudfront-is-mobile-viewer"] == "false"


async def test_spoofed_headers_do_not_reach_the_origin_when_trust_is_off(
    origin: RecordingOrigin, start_edge: StartEdge
):
    forwarded = {"query_string": False, "cookies": {"forward": "none"}, "headers": ["*"]}
    viewer = await start_edge(distribution(origin.port, forwarded_values=forwarded))
    await viewer.get("/all", headers={**SPOOFED, "X-Own": "kept"})
    seen = origin.requests_for("/all")[0].headers
    assert seen["X-Own"] == "kept"  # every viewer header is forwarded...
    assert not [name for name in seen if name.lower().startswith("cloudfront-")]  # ...but these


async def test_trusted_headers_count_as_cloudfronts_own(
    tmp_path: Path, origin: RecordingOrigin, start_edge: StartEdge
):
    document = recording(tmp_path, origin, **legacy(*GEO, "CloudFront-Is-Mobile-Viewer"))
    document["edge"]["geo"]["trust_viewer_headers"] = True
    seen = await saw(start_edge, document, headers=SPOOFED)
    assert seen["viewer_request"] == []  # hidden from viewer-request like detected ones
    assert seen["origin_request"] == {
        "cloudfront-viewer-country": "DE",
        "cloudfront-viewer-country-name": "Germany",  # follows the trusted country
        "cloudfront-is-mobile-viewer": "true",  # no city: Cleveland is not in Germany
    }


# -- where the location comes from, in order -------------------------------------------------


async def test_location_sources_in_order(
    tmp_path: Path, origin: RecordingOrigin, start_edge: StartEdge
):
    document = recording(tmp_path, origin, **legacy(*GEO))
    document["edge"]["geo"]["trust_viewer_headers"] = True
    viewer = await start_edge(document)
    from_alias = httpx.AsyncHTTPTransport(local_address="127.0.0.2")  # curl --interface

    async def seen_with(path: str, **headers: str) -> dict[str, str]:
        async with httpx.AsyncClient(transport=from_alias) as client:
            response = await client.get(viewer.running.url(path), headers=headers)
        found: dict[str, str] = response.json()["origin_request"]
        return found

    from_range = await seen_with("/range")
    assert (from_range["cloudfront-viewer-country"], from_range["cloudfront-viewer-city"]) == (
        "FR",
        "Paris",
    )
    from_header = await seen_with("/header", **{"CloudFront-Viewer-Country": "JP"})
    assert from_header["cloudfront-viewer-country"] == "JP"
    assert "cloudfront-viewer-city" not in from_header
    document = recording(tmp_path, origin, **legacy(*GEO))
    default = (await (await start_edge(document)).get("/default")).json()["origin_request"]
    assert default["cloudfront-viewer-city"] == "Cleveland"
