"""Viewer conditional requests answered from a cached object, and the edge's revalidation
helpers (RFC 9110 13 and 15.4.5, RFC 9111 4.3)."""

from __future__ import annotations

import pytest

from edgeproxy.cache.conditional import (
    answer_conditional,
    merge_304_headers,
    none_match,
    refresh,
    revalidation_headers,
)
from edgeproxy.cache.store import CachedObject
from edgeproxy.messages import EdgeResponse, Headers, header_value, header_values

LM = "Wed, 21 Oct 2015 07:28:00 GMT"
STORED: Headers = [
    ("Content-Type", "text/html"),
    ("Content-Length", "5"),
    ("ETag", '"v1"'),
    ("Last-Modified", LM),
    ("Date", "Thu, 22 Oct 2015 07:28:00 GMT"),
    ("Cache-Control", "max-age=60"),
    ("Expires", "Thu, 22 Oct 2015 07:29:00 GMT"),
    ("Vary", "Accept-Encoding"),
    ("Content-Location", "/a.html"),
    ("Set-Cookie", "a=1"),
    ("X-Custom", "x"),
]


def ask(
    *headers: tuple[str, str], method: str = "GET", status: int = 200, stored: Headers = STORED
):
    return answer_conditional(status, stored, method, list(headers))


@pytest.mark.parametrize(
    "inm",
    ['"v1"', 'W/"v1"', '"v0", "v1"', '"v0",W/"v1"', "*", ' "v1" '],
)
def test_if_none_match_matching_is_304(inm: str) -> None:
    answer = ask(("If-None-Match", inm))
    assert answer is not None and answer.status == 304 and answer.body == b""


def test_304_carries_the_fields_rfc_9110_lists() -> None:
    answer = ask(("If-None-Match", '"v1"'))
    assert answer is not None
    names = {k.lower() for k, _ in answer.headers}
    assert names == {
        "etag",
        "last-modified",
        "date",
        "cache-control",
        "expires",
        "vary",
        "content-location",
    }
    assert header_value(answer.headers, "ETag") == '"v1"'


@pytest.mark.parametrize("inm", ['"v2"', 'W/"v2"', '"v1,x"', '""'])
def test_if_none_match_not_matching_serves_the_object(inm: str) -> None:
    assert ask(("If-None-Match", inm)) is None


def test_etag_with_a_comma_is_one_tag() -> None:
    stored = [*STORED[:2], ("ETag", '"a,b"')]
    assert ask(("If-None-Match", '"x", "a,b"'), stored=stored) is not None
    assert ask(("If-None-Match", '"a"'), stored=stored) is None


def test_repeated_if_none_match_headers_are_one_list() -> None:
    assert ask(("If-None-Match", '"v0"'), ("If-None-Match", '"v1"')) is not None


@pytest.mark.parametrize(
    ("ims", "current"),
    [
        (LM, True),
        ("Thu, 22 Oct 2015 07:28:00 GMT", True),
        ("Tue, 20 Oct 2015 07:28:00 GMT", False),
        ("not a date", False),
    ],
)
def test_if_modified_since(ims: str, current: bool) -> None:
    answer = ask(("If-Modified-Since", ims))
    assert (answer is not None and answer.status == 304) is current


def test_if_modified_since_uses_date_without_last_modified() -> None:
    stored = [h for h in STORED if h[0] != "Last-Modified"]
    assert ask(("If-Modified-Since", "Thu, 22 Oct 2015 07:28:00 GMT"), stored=stored) is not None
    assert ask(("If-Modified-Since", LM), stored=stored) is None


def test_if_none_match_wins_over_if_modified_since() -> None:
    assert ask(("If-None-Match", '"v2"'), ("If-Modified-Since", LM)) is None
    assert ask(("If-None-Match", '"v1"'), ("If-Modified-Since", "not a date")) is not None


def test_only_get_and_head_of_a_200() -> None:
    assert ask(("If-None-Match", "*"), method="HEAD") is not None
    assert ask(("If-None-Match", "*"), method="POST") is None
    assert ask(("If-None-Match", "*"), status=404) is None
    assert ask() is None


def test_without_an_etag_only_star_matches() -> None:
    stored = [h for h in STORED if h[0] != "ETag"]
    assert ask(("If-None-Match", '"v1"'), stored=stored) is None
    assert ask(("If-None-Match", "*"), stored=stored) is not None
    assert not none_match('"v1"', None)


# --- revalidation --------------------------------------------------------------------------


def stored_object(headers: Headers = STORED) -> CachedObject:
    response = EdgeResponse(200, list(headers), b"hello")
    return CachedObject.from_response(response, 1000.0, 60.0)


def test_revalidation_headers_from_validators() -> None:
    assert revalidation_headers(stored_object()) == [
        ("If-None-Match", '"v1"'),
        ("If-Modified-Since", LM),
    ]
    weak = stored_object([("ETag", 'W/"w"')])
    assert revalidation_headers(weak) == [("If-None-Match", 'W/"w"')]
    assert revalidation_headers(stored_object([("Content-Type", "text/plain")])) == []


def test_304_updates_stored_headers() -> None:
    update = [
        ("Cache-Control", "max-age=120"),
        ("Date", "Fri, 23 Oct 2015 07:28:00 GMT"),
        ("Content-Length", "0"),
        ("X-New", "n"),
        ("Connection", "keep-alive"),
    ]
    merged = refresh(stored_object(), EdgeResponse(304, update, b""))
    assert header_values(merged, "Cache-Control") == ["max-age=120"]
    assert header_values(merged, "Date") == ["Fri, 23 Oct 2015 07:28:00 GMT"]
    assert header_values(merged, "Content-Length") == ["5"]  # describes the stored body
    assert header_value(merged, "X-New") == "n"
    assert header_value(merged, "Connection") is None
    assert header_value(merged, "X-Custom") == "x"  # untouched fields stay


def test_304_keeps_the_weak_etag_the_edge_wrote_when_compressing() -> None:
    stored = [("ETag", 'W/"v1"'), ("Content-Encoding", "br")]
    assert header_values(merge_304_headers(stored, [("ETag", '"v1"')]), "ETag") == ['W/"v1"']
    assert header_values(merge_304_headers(stored, [("ETag", '"v2"')]), "ETag") == ['"v2"']
    assert header_values(
        merge_304_headers(stored, [("Content-Encoding", "gzip")]), "Content-Encoding"
    ) == ["br"]
