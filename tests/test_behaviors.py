"""Path patterns, path normalisation and behavior selection (reference 7.1): the table of
what matches, the normalised path a behavior is chosen on, and a bound on the time an
8 KB path takes to decide (linear matching, no backtracking)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeproxy.behaviors import BehaviorSelector, matches
from edgeproxy.config.behaviors import CacheBehavior
from edgeproxy.config.distribution import Distribution, Origin
from edgeproxy.config.loading import load_config
from edgeproxy.paths import normalise_path

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
        ("images/*.jpg", "/images/.jpg", True),  # '*' matches nothing before a suffix
        ("*.jpg", "/a.jpg", True),  # no leading '/' in the pattern: still rooted
        ("*.jpg", "/a/b/c.jpg", True),
        ("*.jpg", "/a.JPG", False),
        ("/*", "/", True),
        ("/a", "/a", True),  # no wildcard: the whole path, exactly
        ("/a", "/ab", False),
        ("/a", "/a/", False),
        ("/a*", "/a", True),
        ("/a**b", "/ab", True),  # '**' is '*'
        ("/a**b", "/axxb", True),
        ("/???", "/abc", True),  # all '?': exactly that many characters
        ("/???", "/ab", False),
        ("/???", "/abcd", False),
        ("/a/*?", "/a/", False),  # '*?' is one character or more
        ("/a/*?", "/a/x", True),
        ("/*a?b*", "/xxa-bxx", True),  # '?' inside a piece between two '*'s
        ("/*a?b*", "/xxab", False),
        ("/*a?b*", "/ab_ba", False),  # nowhere an 'a', one character, then a 'b'
        ("/*a?b*", "/aab", True),
        ("/*a?b*", "/aaab", True),
        ("/*a??c*d", "/xxaaac-a12c-d", True),
        ("/*ab*ab", "/abab", True),  # pieces may not overlap: 'ab' then 'ab'
        ("/*ab*ab", "/aba", False),
        ("/*aba*", "/ababa", True),
        ("/x*y*z", "/xzyz", True),
        ("/x*y*z", "/xzy", False),
        ("*a*a*a*a*b", "/" + "a" * 40, False),
        ("*a*a*a*a*b", "/" + "a" * 40 + "b", True),
        ("*a*a*a*a*b", "/aaab", False),  # four 'a's are needed
        ("/a*", "/a%2Fb", True),  # escapes are plain characters to a pattern
        ("/~user/*", "/~user/x", True),
        ("/a$b'c\"d@e:f+g&h/*", "/a$b'c\"d@e:f+g&h/x", True),  # every allowed character
    ],
)
def test_path_patterns(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected
    assert reference_match(pattern, path) is expected  # the table agrees with the oracle


def reference_match(pattern: str, path: str) -> bool:
    """The textbook dynamic program over (pattern, path) prefixes: slow, obviously right."""
    pattern, path = (s if s.startswith("/") else "/" + s for s in (pattern, path))
    row = [True] + [False] * len(path)  # pattern prefix of length 0 matches only ""
    for char in pattern:
        if char == "*":
            row = [any(row[: i + 1]) for i in range(len(path) + 1)]
        else:
            row = [False] + [row[i] and (char == "?" or char == path[i]) for i in range(len(path))]
    return row[-1]


@settings(max_examples=400, deadline=None)
@given(
    pattern=st.text(alphabet="ab/*?", max_size=10),
    path=st.text(alphabet="ab/", max_size=14),
)
def test_matching_agrees_with_the_reference(pattern: str, path: str) -> None:
    assert matches(pattern, path) is reference_match(pattern, path)


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


# -- the normalised path (reference 7.1, RFC 3986 section 6.2.2) -----------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("/", "/"),
        ("/account/", "/account/"),  # nothing to do
        ("/./account/", "/account/"),
        ("/x/../account/", "/account/"),
        ("/%61ccount/", "/account/"),  # unreserved escapes are decoded
        ("/account/./x", "/account/x"),
        ("/%2e/account/", "/account/"),  # decoded first, then a dot segment
        ("/%2E/account/", "/account/"),  # hex digits in either case
        ("/%2e%2E/account/", "/account/"),
        ("/.%2e/account/", "/account/"),
        ("/a/b/..", "/a/"),  # CloudFront's example: /a/b/.. matches /a*, not /a/b*
        ("/a/b/.", "/a/b/"),
        ("/..", "/"),  # nothing above the root
        ("/../../a", "/a"),
        ("//account//x", "/account/x"),  # repeated slashes are removed
        ("/a//../b", "/b"),
        ("/account//", "/account/"),
        ("/a/.../b", "/a/.../b"),  # only '.' and '..' are dot segments
        ("/.a/..b/c.", "/.a/..b/c."),
        ("/account%2Fx", "/account%2Fx"),  # %2F is reserved: stays an escape
        ("/a%2F..%2Fb", "/a%2F..%2Fb"),  # so no segment here is '..'
        ("/%41%5a%30%2D%5f%7E%7e", "/AZ0-_~~"),
        ("/%41ccount/", "/Account/"),  # decoded, but case still counts when matching
        ("/%2561", "/%2561"),  # one pass: %25 ('%') is not decoded, nothing is twice
        ("/%%341", "/%41"),
        ("/%", "/%"),  # a stray or short '%' is left alone
        ("/a%6", "/a%6"),
        ("/%zz", "/%zz"),
        ("/%C3%A9", "/%C3%A9"),  # not ASCII: not unreserved
    ],
)
def test_normalised_paths(raw: str, normalised: str) -> None:
    assert normalise_path(raw) == normalised


def test_behaviors_are_chosen_on_the_normalised_path() -> None:
    selector = BehaviorSelector(distribution("/account/*", "/a/b*", "/a*"))
    assert selector.select("/x/../account/")[0] == 0
    assert selector.select("/%61ccount/")[0] == 0
    assert selector.select("/%2e/account/")[0] == 0
    assert selector.select("/a/b")[0] == 1
    assert selector.select("/a/b/..")[0] == 2  # CloudFront's example: /a/ is not /a/b*
    assert selector.select("/account/../x")[0] == 3  # /x: the default behavior


def test_the_memo_remembers_raw_paths_and_stays_right() -> None:
    selector = BehaviorSelector(distribution("/account/*"))
    for _ in range(2):  # the second answers come from the memo
        assert selector.select("/./account/")[0] == 0
        assert selector.select("/account/../x")[0] == 1
    assert set(selector._memo) == {"/./account/", "/account/../x"}


# -- time: linear, never backtracking ---------------------------------------------------------

EIGHT_KB = 8192
CALLS = 100
CHILD_TIMEOUT_S = 60.0

FAST_MS = 1.0  # what an 8 KB path may take to decide, on average: generous, most take µs
LINEAR_MS = 50.0  # where a short Python step per character is the work (see below)

# (pattern, 8 KB path, whether it matches, bound in ms on the average decision). Each of the
# FAST_MS cases is one a backtracking regex takes minutes or longer on, since each '*' may end
# at any of thousands of places; matched a piece at a time they take microseconds.
#
# The LINEAR_MS cases cost a short Python step (well under 1 µs) per position: a '?' between
# two '*'s on a path built so that each candidate place fails, and normalising thousands of
# escapes or '..' segments. They take a few milliseconds at most; the bound only says linear,
# as anything quadratic in 8 KB would take seconds.
TIMED = [
    ("/img/*/*/*.jpg", "/img/" + "/" * (EIGHT_KB - 5), False, FAST_MS),
    ("/img/*/*/*.jpg", "/img/" + "a/" * 4091 + "xx.png", False, FAST_MS),
    ("/img/*/*/*.jpg", "/img/" + "a/" * 4091 + "xx.jpg", True, FAST_MS),
    ("*a*a*a*a*b", "/" + "a" * (EIGHT_KB - 1), False, FAST_MS),
    ("*a*a*a*a*b", "/" + "a" * (EIGHT_KB - 2) + "b", True, FAST_MS),
    ("/*/*/*/*/*/*/*/x", "/" + "/" * (EIGHT_KB - 1), False, FAST_MS),
    ("/*/*/*/*/*/*/*/x", "/a" * (EIGHT_KB // 2 - 1) + "/y", False, FAST_MS),
    ("/*a?*?b*/", "/" + "a" * (EIGHT_KB - 2) + "/", False, FAST_MS),
    ("/v?/*.??g", "/v2/" + "a" * (EIGHT_KB - 9) + ".gif", False, FAST_MS),
    ("/*a?b*", "/" + "ab" * (EIGHT_KB // 2 - 1) + "a", False, LINEAR_MS),
    ("/account/*", "/x/.." * 1638 + "/b", False, LINEAR_MS),  # 1,638 '..' segments
    ("/account/*", "/%61" * 2730 + "/", False, LINEAR_MS),  # 2,730 escapes to decode
    ("/account/*", "/%2e" * 2730 + "/", False, LINEAR_MS),  # as many '.' segments
]


def time_decisions() -> None:
    """In a child process: the average milliseconds per decision for each case, and the
    behavior chosen, as JSON on stdout."""
    results = []
    for pattern, path, _, _ in TIMED:
        selector = BehaviorSelector(distribution(pattern), memo_size=0)  # every call decides
        index = selector.select(path)[0]
        start = time.perf_counter()
        for _ in range(CALLS):
            selector.select(path)
        elapsed_ms = (time.perf_counter() - start) * 1000
        results.append({"index": index, "ms": elapsed_ms / CALLS})
    print(json.dumps(results))


def test_an_8kb_path_is_decided_in_under_a_millisecond() -> None:
    """Timed in a child process that can be killed: a backtracking match cannot be
    interrupted from inside, and would hang the suite instead of failing it."""
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])}
    command = [sys.executable, "-c", "import test_behaviors; test_behaviors.time_decisions()"]
    try:
        child = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"deciding {len(TIMED)} paths {CALLS} times took over {CHILD_TIMEOUT_S} s")
    assert child.returncode == 0, child.stderr
    results = json.loads(child.stdout)
    for (pattern, path, expected, bound_ms), found in zip(TIMED, results, strict=True):
        assert found["index"] == (0 if expected else 1), pattern
        assert found["ms"] < bound_ms, f"{pattern} on {path[:12]}…: {found['ms']:.3f} ms"
