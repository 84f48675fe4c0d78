"""The demo's Lambda@Edge functions through the edge: the Python ones (config/handlers/*.py)
and their Node.js twins (config/handlers/node/*), which must behave alike."""

from __future__ import annotations

import pytest

from edgeproxy.testing import FakeOrigin, LocalEdge

# "" : the Python functions' behaviors; "/node": their Node.js twins'
TWINS = pytest.mark.parametrize("prefix", ["", "/node"], ids=["python", "node"])


@TWINS
def test_a_bare_domain_is_redirected_to_www_keeping_the_query(
    edge: LocalEdge, origin: FakeOrigin, prefix: str
) -> None:
    answer = edge.get(f"{prefix}/www/pricing?plan=pro", headers={"Host": "example.com"})

    assert answer.status == 301
    assert answer.headers["Location"] == f"https://www.example.com{prefix}/www/pricing?plan=pro"
    assert answer.stages == ["viewer-request"]
    assert not answer.origin_reached


@TWINS
def test_www_goes_on_to_the_origin(edge: LocalEdge, origin: FakeOrigin, prefix: str) -> None:
    answer = edge.get(f"{prefix}/www/pricing", headers={"Host": "www.example.com"})

    assert (answer.status, answer.text) == (200, "origin page")
    assert answer.origin_request is not None
    assert answer.origin_request.path == f"{prefix}/www/pricing"


@TWINS
def test_viewers_from_a_blocked_country_get_403_at_origin_request(
    edge: LocalEdge, prefix: str
) -> None:
    # 127.0.0.2 is in Berlin by the demo's edge.geo.ranges
    blocked = edge.get(f"{prefix}/members/area", client_ip="127.0.0.2")

    assert blocked.status == 403
    assert "not available in your country (DE)" in blocked.text
    assert blocked.stages == ["origin-request"]
    assert not blocked.origin_reached


@TWINS
def test_other_viewers_reach_the_origin_with_their_country(edge: LocalEdge, prefix: str) -> None:
    allowed = edge.get(f"{prefix}/members/area")

    assert allowed.status == 200
    assert allowed.origin_request is not None
    assert allowed.origin_request.headers["CloudFront-Viewer-Country"] == "US"


@TWINS
def test_the_block_is_cached_per_country(edge: LocalEdge, prefix: str) -> None:
    edge.get(f"{prefix}/members/page", client_ip="127.0.0.2")
    again = edge.get(f"{prefix}/members/page", client_ip="127.0.0.2")
    elsewhere = edge.get(f"{prefix}/members/page")

    # served from the cache: the function did not run again (a cached 4xx reads "Error")
    assert (again.status, again.x_cache, again.stages) == (403, "Error from cloudfront", [])
    assert (elsewhere.status, elsewhere.x_cache) == (200, "Miss from cloudfront")


@TWINS
def test_plain_http_is_redirected_to_https_and_https_is_served(
    edge: LocalEdge, prefix: str
) -> None:
    http = edge.get(f"{prefix}/secure/report?y=2024")
    https = edge.get(f"{prefix}/secure/report?y=2024", scheme="https")

    assert http.status == 301
    assert http.headers["Location"].startswith("https://")
    assert http.headers["Location"].endswith(f"{prefix}/secure/report")  # query not forwarded
    assert (https.status, https.text) == (200, "origin page")
    assert https.origin_request is not None
    assert https.origin_request.headers["CloudFront-Forwarded-Proto"] == "https"


@TWINS
def test_query_strings_are_normalised_into_one_cache_entry(
    edge: LocalEdge, origin: FakeOrigin, prefix: str
) -> None:
    first = edge.get(f"{prefix}/query/search?Q=Shoes&a=1")
    second = edge.get(f"{prefix}/query/search?a=1&q=shoes")

    assert first.x_cache == "Miss from cloudfront"
    assert first.origin_request is not None
    assert first.origin_request.query_string == "a=1&q=shoes"
    assert second.x_cache == "Hit from cloudfront"
    assert len(origin.requests_for(f"{prefix}/query/search")) == 1


@TWINS
def test_objects_are_marked_and_every_answer_gets_the_security_headers(
    edge: LocalEdge, prefix: str
) -> None:
    path = f"{prefix}/about.html" if prefix else "/about.html"
    miss = edge.get(path)
    hit = edge.get(path)

    assert miss.stages == ["origin-response", "viewer-response"]
    assert hit.stages == ["viewer-response"]  # origin-response's change was cached
    for answer in (miss, hit):
        assert answer.headers["X-Processed-By"] == "edgeproxy"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=63072000")
