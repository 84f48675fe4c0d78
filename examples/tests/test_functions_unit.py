"""Unit tests of single functions with invoke(): no edge, no origin; the event built as the
edge would build it for the demo's behaviors (config/distribution.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeproxy.testing import OriginAnswer, Request, invoke

ROOT = Path(__file__).parent.parent.parent
CONFIG = ROOT / "config" / "distribution.yaml"
HANDLERS = ROOT / "config" / "handlers"


@pytest.mark.parametrize(
    ("query", "normalised"),
    [("B=2&a=1", "a=1&b=2"), ("q=Red%20Shoes", "q=red%20shoes"), ("x=1&x=2", "x=1&x=2")],
)
def test_normalize_query(query: str, normalised: str) -> None:
    called = invoke(
        f"{HANDLERS}/normalize_query.py:handler",
        "viewer-request",
        Request("/query/search", querystring=query),
    ).raise_for_error()

    assert called.querystring == normalised


def test_country_block_sees_the_country_the_behavior_forwards() -> None:
    # trust_viewer_headers is on in the demo: a viewer-sent country counts as the edge's
    blocked = invoke(
        None,
        "origin-request",
        Request("/members/x", headers={"CloudFront-Viewer-Country": "DE"}),
        CONFIG,
    )
    allowed = invoke(None, "origin-request", Request("/members/x"), CONFIG)

    assert blocked.generated and blocked.status == 403
    assert allowed.event_header("CloudFront-Viewer-Country") == "US"  # edge.geo.default
    assert allowed.ok and not allowed.generated


def test_https_redirect_leaves_https_viewers_alone() -> None:
    http = invoke(None, "origin-request", Request("/secure/a", scheme="http"), CONFIG)
    https = invoke(None, "origin-request", Request("/secure/a", scheme="https"), CONFIG)

    assert http.status == 301 and http.header("location") == "https://localhost/secure/a"
    assert https.ok and not https.generated


def test_the_node_twin_adds_the_same_security_headers() -> None:
    python = invoke(f"{HANDLERS}/security_headers.py:handler", "viewer-response")
    node = invoke(
        f"{HANDLERS}/node/security_headers/index.handler",
        "viewer-response",
        response=OriginAnswer(404),
    )

    for name in ("Strict-Transport-Security", "X-Frame-Options", "Referrer-Policy"):
        assert python.header(name) == node.header(name) is not None
