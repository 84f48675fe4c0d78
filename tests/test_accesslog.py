"""The access line: CloudFront's standard log fields, in order, tab separated."""

from __future__ import annotations

from edgeproxy.access_log import FIELDS, access_line
from edgeproxy.exchange import Exchange
from edgeproxy.messages import EdgeRequest, EdgeResponse
from edgeproxy.stages import Source


def test_fields_in_cloudfront_order():
    request = EdgeRequest(
        "GET",
        "/a b.html",
        "x=1",
        [("Host", "example.com"), ("User-Agent", "curl/8.0 (x)"), ("Cookie", "s=1")],
        "203.0.113.9",
        client_port=51000,
        tls="TLSv1.3:TLS_AES_128_GCM_SHA256:fullHandshake",
        scheme="https",
    )
    response = EdgeResponse(200, [("Content-Type", "text/html")], b"hello")
    ex = Exchange("ID==", "GET", "/a b.html", 1_700_000_000.0, stages=["viewer-request"])
    ex.status, ex.x_cache, ex.source = 200, "Hit from cloudfront", Source.CACHE
    line = access_line(ex, request, response, "LHR50-C1", 1_700_000_000.25)
    values = line.split("\t")
    fields = dict(zip(FIELDS, values, strict=True))
    assert fields["date"] == "2023-11-14" and fields["time"] == "22:13:20"
    assert fields["x-edge-location"] == "LHR50-C1"
    assert fields["sc-bytes"] == "5"
    assert fields["cs-uri-stem"] == "/a%20b.html"
    assert fields["cs(User-Agent)"] == "curl/8.0%20(x)"
    assert fields["x-edge-result-type"] == "Hit"
    assert fields["ssl-protocol"] == "TLSv1.3"
    assert fields["time-taken"] == "0.250"
    assert fields["cs(Referer)"] == "-"
    assert fields["x-edgeproxy-stages"] == "viewer-request"
