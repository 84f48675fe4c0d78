"""Request ids, the edge's identity and the exchange record."""

from __future__ import annotations

import re

from edgeproxy.exchange import EdgeIdentity, Exchange, new_request_id
from edgeproxy.functions.events import EventMeta
from edgeproxy.stages import Source


def test_request_ids_look_like_cloudfronts():
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for rid in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{54}==", rid)


def test_identity_via_and_pop():
    identity = EdgeIdentity.create("FRA56-C1", EventMeta("d1.cloudfront.net", "E1"), 8443)
    assert re.fullmatch(r"1\.1 [0-9a-f]{32}\.cloudfront\.net \(CloudFront\)", identity.via)
    assert identity.pop == "FRA56-C1"
    assert identity.https_port == 8443


def test_record_is_plain_data():
    ex = Exchange("ID==", "GET", "/a", 0.0, stages=["viewer-request"], source=Source.CACHE)
    ex.status, ex.x_cache = 200, "Hit from cloudfront"
    assert ex.record() == {
        "request_id": "ID==",
        "method": "GET",
        "uri": "/a",
        "status": 200,
        "x_cache": "Hit from cloudfront",
        "source": "cache",
        "stages": ["viewer-request"],
        "behavior": -1,
        "origin_fetches": 0,
        "error": "",
        "id": "ID==",
        "started": 0.0,
        "query": "",
        "path_pattern": "",
        "duration_ms": 0.0,
    }
