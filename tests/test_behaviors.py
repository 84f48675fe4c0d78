"""Path patterns and behavior selection (reference 7.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgeproxy.behaviors import BehaviorSelector, compile_pattern, matches
from edgeproxy.config import CacheBehavior, Distribution, Origin, load_config

DEMO = Path(__file__).resolve().parent.parent / "config" / "distribution.yaml"


def make_behavior(path_pattern: str = "*", **extra: Any) -> CacheBehavior:
    return CacheBehavior(
        path_pattern=path_pattern,
        target_origin_id="web",
        viewer_protocol_policy="allow-all",
        allowed_methods=("GET", "HEAD"),
        cached_methods=("GET", "HEAD"),
        **extra,
    )


def distribution(*patterns: str) -> Distribution:
    return Distribution(
        origin=(Origin(origin_id="web", domain_name="web.example.com"),),
        default_cache_behavior=make_behavior(),
        ordered_cache_behavior=tuple(make_behavior(p) for p in patterns),
    )


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("images/*.jpg", "/images/a.jpg", True),
        ("images/*.jpg", "/images/2024/05/a.jpg", True),  # '*' crosses '/'
        ("images/*.jpg", "/images/a.png", False),
        ("images/*.jpg", "/images/a.jpg.gz", False),  # the whole path must match
        ("/images/*", "images/a", True),  # leading '/' optional on both sides
        ("images/*", "/images/", True),  # '*' matches nothing too
        ("images/*", "/images", False),
        ("/a?c", "/abc", True),  # '?' is exactly one character
        ("/a?c", "/ac", False),
        ("/a?c", "/abbc", False),
        ("/a?c", "/a/c", True),
        ("/Images/*", "/images/a", False),  # case-sensitive
        ("/a.b", "/axb", False),  # '.' is literal
        ("/a+b$", "/a+b$", True),  # regex characters are literal
        ("/a+b$", "/aab", False),
        ("*", "/", True),
        ("*", "/anything/at/all", True),
        ("/api/*/v?/*", "/api/users/v2/list", True),
        ("/api/*/v?/*", "/api/a/v10/b/v2/list", True),  # the first '*' reaches the 2nd /v
        ("/api/*/v?/*", "/api/users/v10/list", False),
        ("/api/*/v?/*", "/api/users/x2/list", False),
    ],
)
def test_path_patterns(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected
    assert (compile_pattern(pattern).fullmatch(path) is not None) is expected


def test_first_match_wins_even_if_a_later_pattern_is_more_specific() -> None:
    selector = BehaviorSelector(distribution("/images/*", "/images/*.jpg", "*.css"))
    index, chosen = selector.select("/images/a.jpg")
    assert index == 0 and chosen.path_pattern == "/images/*"
    assert selector.select("/style/site.css")[0] == 2


def test_default_behavior_is_last_with_index_n() -> None:
    dist = distribution("/a/*", "/b/*")
    index, chosen = BehaviorSelector(dist).select("/c/page")
    assert index == 2
    assert chosen is dist.default_cache_behavior


def test_no_ordered_behaviors() -> None:
    dist = distribution()
    assert BehaviorSelector(dist).select("/x") == (0, dist.default_cache_behavior)


def test_repeated_paths_are_remembered_within_the_bound() -> None:
    selector = BehaviorSelector(distribution("/a/*"), memo_size=2)
    paths = ["/a/1", "/b/2", "/a/3", "/b/4", "/a/1"]
    assert [selector.select(p)[0] for p in paths] == [0, 1, 0, 1, 0]
    assert len(selector._memo) == 2  # bounded: later paths are answered, not stored


def test_demo_config_behaviors() -> None:
    selector = BehaviorSelector(load_config(DEMO).config.distribution)
    assert selector.select("/www/index.html")[0] == 0
    assert selector.select("/members/area.html")[0] == 1
    assert selector.select("/secure/")[0] == 2
    assert selector.select("/account/")[0] == 3
    default = len(load_config(DEMO).config.distribution.ordered_cache_behavior)
    assert selector.select("/secure")[0] == default  # '/secure/*' needs the slash
    assert selector.select("/")[0] == default
    assert selector.select("/WWW/index.html")[0] == default
