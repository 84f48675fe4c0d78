"""Range requests that miss, through a real edge and an origin that honours, ignores or
half-honours ranges (CloudFront Developer Guide, "How CloudFront processes partial requests
for an object (range GETs)",
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/RangeGETs.html): the
request is forwarded, CloudFront "may request a larger range"; an origin that supports ranges
returns the range, served and cached; one that does not returns the whole object, which is
served whole to that viewer and cached, later ranges being cut from it; an origin answer sent
with Transfer-Encoding: chunked gets the viewer the whole object instead of the range."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from conftest import StartEdge, distribution
from range_origin import CHUNKED, IGNORES, PART, RangeOrigin, start_range_origin


@pytest.fixture
async def ranges() -> AsyncIterator[RangeOrigin]:
    async with start_range_origin(RangeOrigin()) as origin:
        yield origin


async def test_origin_is_asked_for_a_wider_range_and_the_object_cached_whole(
    ranges: RangeOrigin, start_edge: StartEdge
):
    viewer = await start_edge(distribution(ranges.port))
    first = await viewer.get("/data.bin", headers={"Range": "bytes=2-5"})
    assert ranges.seen[0].get("Range") == "bytes=0-"  # widened: the whole object
    assert first.status_code == 206
    assert first.content == b"2345"
    assert first.headers["content-range"] == "bytes 2-5/16"
    assert first.headers["x-cache"] == "Miss from cloudfront"

    second = await viewer.get("/data.bin", headers={"Range": "bytes=-3"})
    assert (second.status_code, second.content) == (206, b"def")
    assert second.headers["x-cache"] == "Hit from cloudfront"
    whole = await viewer.get("/data.bin")
    assert (whole.status_code, whole.content) == (200, ranges.body)
    assert whole.headers["x-cache"] == "Hit from cloudfront"
    assert "content-range" not in whole.headers
    assert len(ranges.seen) == 1


async def test_origin_ignoring_the_range_gets_the_viewer_the_whole_object_then_cut(
    ranges: RangeOrigin, start_edge: StartEdge
):
    ranges.mode = IGNORES
    viewer = await start_edge(distribution(ranges.port))
    first = await viewer.get("/data.bin", headers={"Range": "bytes=2-5"})
    assert (first.status_code, first.content) == (200, ranges.body)  # DG: the entire object
    assert "content-range" not in first.headers
    second = await viewer.get("/data.bin", headers={"Range": "bytes=2-5"})
    assert (second.status_code, second.content) == (206, b"2345")  # cut from the cached one
    assert second.headers["x-cache"] == "Hit from cloudfront"
    assert len(ranges.seen) == 1


async def test_chunked_origin_answer_gets_the_viewer_the_whole_object(
    ranges: RangeOrigin, start_edge: StartEdge
):
    ranges.mode = CHUNKED
    viewer = await start_edge(distribution(ranges.port))
    first = await viewer.get("/data.bin", headers={"Range": "bytes=2-5"})
    assert (first.status_code, first.content) == (200, ranges.body)
    assert "content-range" not in first.headers


async def test_a_part_from_the_origin_is_passed_on_and_never_stored_as_the_object(
    ranges: RangeOrigin, start_edge: StartEdge
):
    ranges.mode = PART  # answers at most 8 bytes of whatever is asked
    viewer = await start_edge(distribution(ranges.port))
    part = await viewer.get("/data.bin", headers={"Range": "bytes=0-3"})
    assert part.status_code == 206
    assert part.headers["content-range"] == "bytes 0-7/16"
    assert part.content == b"01234567"
    whole = await viewer.get("/data.bin")  # the part is not the object: a miss
    assert whole.headers["x-cache"] == "Miss from cloudfront"
    assert ranges.seen[-1].get("Range") is None
    assert (whole.status_code, whole.content) == (200, ranges.body)


async def test_invalid_viewer_range_is_not_forwarded(ranges: RangeOrigin, start_edge: StartEdge):
    viewer = await start_edge(distribution(ranges.port))
    answer = await viewer.get("/data.bin", headers={"Range": "bytes=5-2"})
    assert ranges.seen[0].get("Range") is None
    assert (answer.status_code, answer.content) == (200, ranges.body)
