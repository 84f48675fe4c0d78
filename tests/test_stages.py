"""The stage rules table and the source tables that decide viewer-response and X-Cache."""

from __future__ import annotations

import pytest

from edgeproxy.stages import STAGE_RULES, Source, Stage, viewer_response_runs, x_cache_for


def test_every_stage_has_a_rule_with_cloudfront_limits():
    assert set(STAGE_RULES) == set(Stage)
    assert STAGE_RULES[Stage.VIEWER_REQUEST].timeout_s == 5.0
    assert STAGE_RULES[Stage.ORIGIN_RESPONSE].timeout_s == 30.0
    assert STAGE_RULES[Stage.VIEWER_RESPONSE].generated_size_limit == 40 * 1024
    assert STAGE_RULES[Stage.ORIGIN_REQUEST].generated_size_limit == 1024 * 1024
    assert STAGE_RULES[Stage.ORIGIN_REQUEST].generated_is_cached
    assert not STAGE_RULES[Stage.VIEWER_REQUEST].generated_is_cached
    assert "host" in STAGE_RULES[Stage.VIEWER_REQUEST].read_only_headers
    assert "host" not in STAGE_RULES[Stage.ORIGIN_REQUEST].read_only_headers


@pytest.mark.parametrize(
    ("source", "status", "runs"),
    [
        (Source.ORIGIN, 200, True),
        (Source.CACHE, 304, True),
        (Source.ORIGIN, 404, False),
        (Source.CACHE, 500, False),
        (Source.VIEWER_REQUEST_GENERATED, 200, False),
        (Source.ORIGIN_REQUEST_GENERATED, 200, True),
        (Source.EDGE, 200, False),
        (Source.REDIRECT, 301, False),
        (Source.PREFLIGHT, 200, False),
    ],
)
def test_viewer_response_runs(source: Source, status: int, runs: bool):
    assert viewer_response_runs(source, status) is runs


@pytest.mark.parametrize(
    ("source", "status", "x_cache"),
    [
        (Source.ORIGIN, 200, "Miss from cloudfront"),
        (Source.CACHE, 200, "Hit from cloudfront"),
        (Source.REFRESHED, 200, "RefreshHit from cloudfront"),
        (Source.ORIGIN, 404, "Error from cloudfront"),
        (Source.CACHE, 503, "Error from cloudfront"),
        (Source.VIEWER_REQUEST_GENERATED, 403, "LambdaGeneratedResponse from cloudfront"),
        (Source.ORIGIN_REQUEST_GENERATED, 200, "LambdaGeneratedResponse from cloudfront"),
        (Source.REDIRECT, 301, "Redirect from cloudfront"),
    ],
)
def test_x_cache(source: Source, status: int, x_cache: str):
    assert x_cache_for(source, status) == x_cache


def test_every_source_is_in_both_tables():
    for source in Source:
        viewer_response_runs(source, 200)
        x_cache_for(source, 200)
