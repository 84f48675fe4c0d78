"""Numbers in headers that are malformed or longer than any object, through a real edge
(reference 7.4, 7.8, 7.10; RFC 9110 14, RFC 9111 1.2.2): never a traceback, never the edge's
502 for the viewer's own header.

- Range (viewer): an invalid one is ignored (200, the whole object), one that starts past
  the end is 416, a last position or suffix past the end stops at the end (206); a number
  too long for Python's ``int()`` is just a big number; ``²`` is not a digit.
- Age (origin): an invalid one is ignored; a huge one counts as 2^31 (the object is stale).
- Cache-Control max-age (origin): a huge one is the longest lifetime (capped by Max TTL);
  an invalid one (``+60``, ``²``) counts as 0 (stored, stale at once).
- Content-Length (origin): one that is not 1*DIGIT, or past 2^64, is a bad answer: 502.
- If-Modified-Since (viewer): anything but an HTTP-date is ignored (200).

The origin is a raw one (tests/fault_origin.py, mode "reply") that can write any byte; the
viewer a raw socket that can too. Property tests at the end try any value on the rules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from conftest import StartEdge, Viewer
from fault_origin import FaultOrigin, running
from hypothesis import given, settings
from hypothesis import strategies as st
from test_origin_faults import fast
from viewer_wire import RawResponse, RawViewer

from edgeproxy.cache.conditional import answer_conditional
from edgeproxy.cache.httpdate import MAX_AGE_VALUE, age_value
from edgeproxy.cache.ranges import apply_range
from edgeproxy.cache.ttl import MAX_LIFETIME, TtlPolicy, ttl_for
from edgeproxy.messages import header_value

BODY = b"0123456789" * 10
LAST_MODIFIED = b"Mon, 01 Jan 2024 00:00:00 GMT"
HUGE = "9" * 5000  # past int()'s 4,300-digit limit, within CloudFront's 20,480-byte head


def answer(*headers: bytes, body: bytes = BODY) -> bytes:
    head = b"".join(h + b"\r\n" for h in headers)
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nLast-Modified: %b\r\n%b"
        b"Content-Length: %d\r\n\r\n%b" % (LAST_MODIFIED, head, len(body), body)
    )


@pytest.fixture
async def faulty() -> AsyncIterator[FaultOrigin]:
    async with running(FaultOrigin(mode="reply")) as origin:
        origin.reply = answer(b"Cache-Control: max-age=60")
        yield origin


async def raw_get(viewer: Viewer, path: str, *headers: str) -> RawResponse:
    raw = await RawViewer.connect(viewer.running.ports["http"])
    try:
        await raw.request("GET", path, *headers)
        return await raw.response()
    finally:
        await raw.close()


# -- Range ------------------------------------------------------------------------------------

WHOLE = (200, None)
RANGES = [
    pytest.param("bytes=0-99999999999999999999999999", (206, "bytes 0-99/100"), id="last-past-end"),
    pytest.param(f"bytes=0-{HUGE}", (206, "bytes 0-99/100"), id="last-5000-digits"),
    pytest.param(f"bytes=-{HUGE}", (206, "bytes 0-99/100"), id="suffix-5000-digits"),
    pytest.param("bytes=5-5", (206, "bytes 5-5/100"), id="one-byte"),
    pytest.param("bytes=200-", (416, "bytes */100"), id="first-past-end"),
    pytest.param(f"bytes={HUGE}-", (416, "bytes */100"), id="first-5000-digits"),
    pytest.param("bytes=-0", (416, "bytes */100"), id="empty-suffix"),
    pytest.param("bytes=-", WHOLE, id="no-numbers"),
    pytest.param("bytes=5-1", WHOLE, id="last-before-first"),
    pytest.param("bytes=+1-2", WHOLE, id="signed"),
    pytest.param("bytes=\xb2-", WHOLE, id="superscript-first"),
    pytest.param("bytes=0-\xb9", WHOLE, id="superscript-last"),
    pytest.param("bytes=-\xb3", WHOLE, id="superscript-suffix"),
    pytest.param("items=0-1", WHOLE, id="other-unit"),
    pytest.param("bytes=3-4,1-2", WHOLE, id="descending"),
    pytest.param("bytes=1-5,3-8", WHOLE, id="overlapping"),
    pytest.param("bytes=" + ",".join(f"{i}-{i}" for i in range(0, 102, 2)), WHOLE, id="51-ranges"),
    pytest.param("bytes=" + ",".join(["0-0"] * 4000), WHOLE, id="4000-ranges"),
]


@pytest.mark.parametrize(("value", "expected"), RANGES)
async def test_range_values(
    value: str, expected: tuple[int, str | None], faulty: FaultOrigin, start_edge: StartEdge
):
    viewer = await start_edge(fast(faulty.port))
    # This origin ignores ranges: on the miss the viewer gets the whole object, which is
    # cached ("CloudFront serves the current request by sending the entire object", DG "How
    # CloudFront processes partial requests for an object (range GETs)"); the hit is cut.
    for x_cache, wanted in (("Miss", WHOLE), ("Hit", expected)):
        response = await raw_get(viewer, "/object", f"Range: {value}")
        assert (response.status, response.header("content-range")) == wanted
        result = "Error" if response.status >= 400 else x_cache  # reference 6.5
        assert response.header("x-cache") == f"{result} from cloudfront"
        if response.status == 206:
            assert wanted[1] is not None
            first, last = (int(n) for n in wanted[1].split()[1].split("/")[0].split("-"))
            assert response.body == BODY[first : last + 1]
        elif response.status == 200:
            assert response.body == BODY
    assert len(faulty.heads) == 1


async def test_ascending_ranges_are_multipart(faulty: FaultOrigin, start_edge: StartEdge):
    viewer = await start_edge(fast(faulty.port))
    await raw_get(viewer, "/object")  # cached whole: the ranges are cut from it
    response = await raw_get(viewer, "/object", "Range: bytes=1-2,3-4")
    assert response.status == 206
    assert (response.header("content-type") or "").startswith("multipart/byteranges; boundary=")
    for part in (b"bytes 1-2/100\r\n\r\n12", b"bytes 3-4/100\r\n\r\n34"):
        assert b"Content-Range: " + part in response.body


# -- Age from the origin --------------------------------------------------------------------


@pytest.mark.parametrize("age", ["1e9", "-1", "\xb2", "", "ten"])
async def test_an_invalid_age_is_ignored(age: str, faulty: FaultOrigin, start_edge: StartEdge):
    faulty.reply = answer(b"Cache-Control: max-age=60", b"Age: " + age.encode("latin-1"))
    viewer = await start_edge(fast(faulty.port))
    miss = await raw_get(viewer, "/aged")
    hit = await raw_get(viewer, "/aged")
    assert (miss.status, miss.body) == (200, BODY)  # the origin's header passed on as sent
    assert (hit.status, hit.body, hit.header("x-cache")) == (200, BODY, "Hit from cloudfront")
    assert hit.header("age") == "0"  # the edge's own: the object arrived new


@pytest.mark.parametrize("age", ["99999999999999999999999", HUGE])
async def test_a_huge_age_counts_as_2_to_the_31(
    age: str, faulty: FaultOrigin, start_edge: StartEdge
):
    # Older than its max-age when it arrives: stored stale, so the next viewer waits for the
    # origin again (RFC 9111 1.2.2: 2^31 stands for any larger delta-seconds).
    faulty.reply = answer(b"Cache-Control: max-age=60", b"Age: " + age.encode())
    viewer = await start_edge(fast(faulty.port))
    for _ in range(2):
        response = await raw_get(viewer, "/aged")
        assert (response.status, response.body) == (200, BODY)
        assert response.header("x-cache") == "Miss from cloudfront"
    assert len(faulty.heads) == 2
    assert (await viewer.client.get(viewer.running.admin_url + "/cache")).json()[0][
        "age"
    ] == MAX_AGE_VALUE


# -- Cache-Control max-age from the origin ----------------------------------------------------


@pytest.mark.parametrize("max_age", ["99999999999999999999", HUGE])
async def test_a_huge_max_age_is_the_longest_lifetime(
    max_age: str, faulty: FaultOrigin, start_edge: StartEdge
):
    faulty.reply = answer(b"Cache-Control: max-age=" + max_age.encode())
    viewer = await start_edge(fast(faulty.port))
    await raw_get(viewer, "/long")
    hit = await raw_get(viewer, "/long")
    assert (hit.status, hit.body, hit.header("x-cache")) == (200, BODY, "Hit from cloudfront")
    assert len(faulty.heads) == 1


@pytest.mark.parametrize("max_age", ["+60", "\xb260", "6\xb9", "1_0", " 6 0"])
async def test_an_invalid_max_age_counts_as_zero(
    max_age: str, faulty: FaultOrigin, start_edge: StartEdge
):
    faulty.reply = answer(b"Cache-Control: max-age=" + max_age.encode("latin-1"))
    viewer = await start_edge(fast(faulty.port))
    for _ in range(2):
        response = await raw_get(viewer, "/invalid-lifetime")
        assert (response.status, response.body) == (200, BODY)
        assert response.header("x-cache") != "Hit from cloudfront"
    assert len(faulty.heads) == 2


# -- Content-Length from the origin -------------------------------------------------------------


@pytest.mark.parametrize(
    "length", [b"+5", b"-5", b"5e0", b"0x5", b"99999999999999999999", b"18446744073709551616"]
)
async def test_an_invalid_content_length_is_a_bad_answer(
    length: bytes, faulty: FaultOrigin, start_edge: StartEdge
):
    faulty.reply = b"HTTP/1.1 200 OK\r\nContent-Length: %b\r\n\r\nhello" % length
    viewer = await start_edge(fast(faulty.port))
    response = await raw_get(viewer, "/framing")
    assert response.status == 502
    assert response.header("x-cache") == "Error from cloudfront"
    assert b"hello" not in response.body


async def test_leading_zeros_in_content_length_are_digits(
    faulty: FaultOrigin, start_edge: StartEdge
):
    faulty.reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0005\r\n\r\nhello"
    viewer = await start_edge(fast(faulty.port))
    response = await raw_get(viewer, "/framing")
    assert (response.status, response.body, response.header("content-length")) == (
        200,
        b"hello",
        "5",
    )


# -- If-Modified-Since from the viewer ----------------------------------------------------------

IF_MODIFIED_SINCE = [
    pytest.param("Tue, 01 Jan 2030 00:00:00 GMT", 304, id="http-date-later"),
    pytest.param("Sun, 01 Jan 2023 00:00:00 GMT", 200, id="http-date-earlier"),
    pytest.param("garbage", 200, id="garbage"),
    pytest.param("\xb2", 200, id="superscript"),
    pytest.param(HUGE, 200, id="5000-digits"),
    pytest.param("Tue, 01 Jan 99999 00:00:00 GMT", 200, id="five-digit-year"),
    pytest.param("Tue, 01 Jan 2030 00:00:00 UTC", 200, id="not-gmt"),
    pytest.param("Tue, 1 Jan 2030 00:00:00 GMT", 200, id="one-digit-day"),
    pytest.param("01 Jan 2030 00:00 GMT", 200, id="no-weekday-no-seconds"),
]


@pytest.mark.parametrize(("since", "status"), IF_MODIFIED_SINCE)
async def test_if_modified_since_values(
    since: str, status: int, faulty: FaultOrigin, start_edge: StartEdge
):
    viewer = await start_edge(fast(faulty.port))
    await raw_get(viewer, "/dated")  # cached
    response = await raw_get(viewer, "/dated", f"If-Modified-Since: {since}")
    assert response.status == status
    assert response.body == (BODY if status == 200 else b"")
    assert response.header("x-cache") == "Hit from cloudfront"


# -- properties (hypothesis): any value, the rules above hold, nothing raises ----------------

# Characters Python reads as digits but HTTP does not (², ¹, Arabic-Indic, fullwidth), long
# runs of digits (int() refuses over 4,300), and the punctuation of ranges and dates.
numberish = st.text(
    st.sampled_from("0123456789") | st.sampled_from("-,=+ ²¹١٢０e_") | st.characters(),
    max_size=30,
) | st.integers(0, 6000).map(lambda n: "9" * n)
STORED = [("Content-Type", "text/plain"), ("Last-Modified", LAST_MODIFIED.decode())]


@settings(max_examples=400, deadline=None)
@given(first=numberish, rest=numberish)
def test_any_range_is_ignored_or_answered_consistently(first: str, rest: str):
    answer = apply_range(200, STORED, BODY, [("Range", f"bytes={first}-{rest}")])
    if answer is None:
        return
    assert answer.status in (206, 416)
    if answer.status == 416:
        assert header_value(answer.headers, "content-range") == "bytes */100"
        return
    if header_value(answer.headers, "content-range") is not None:  # one range
        span = (header_value(answer.headers, "content-range") or "").split()[1]
        a, b = (int(n) for n in span.removesuffix("/100").split("-"))
        assert 0 <= a <= b < 100 and answer.body == BODY[a : b + 1]


@settings(max_examples=300, deadline=None)
@given(value=numberish)
def test_any_age_is_ignored_or_a_bounded_number(value: str):
    age = age_value([("Age", value)])
    assert age is None or 0 <= age <= MAX_AGE_VALUE
    if value.isascii() and value.isdigit() and len(value) < 10:
        assert age == int(value)


@settings(max_examples=300, deadline=None)
@given(value=numberish)
def test_any_max_age_gives_a_ttl_within_the_policy(value: str):
    policy = TtlPolicy(max_ttl=MAX_LIFETIME)
    ttl = ttl_for(policy, 200, [("Cache-Control", f"max-age={value}")], 0.0)
    assert ttl is not None and 0.0 <= ttl <= MAX_LIFETIME
    if value.isascii() and value.isdigit():  # RFC 9111 1.2.2: a huge number is a long time
        digits = value.lstrip("0")
        longest = len(digits) > len(str(MAX_LIFETIME))
        assert ttl == (MAX_LIFETIME if longest else min(int(digits or "0"), MAX_LIFETIME))


@settings(max_examples=300, deadline=None)
@given(value=numberish | st.text(max_size=40))
def test_any_if_modified_since_is_ignored_or_a_304(value: str):
    answer = answer_conditional(200, STORED, "GET", [("If-Modified-Since", value)])
    assert answer is None or answer.status == 304
