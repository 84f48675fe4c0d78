"""The disk tier through a real edge: objects too large for memory are cached on disk while
they stream, served from there by streaming, cut for ranges, evicted, invalidated, never kept
when partial, wiped at start. CloudFront caches GET responses up to 50 GB (Developer Guide,
"Quotas": maximum cacheable file size per HTTP GET response,
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cloudfront-limits.html),
and range requests are served from the cached object (Developer Guide, "How CloudFront
processes partial requests for an object (range GETs)")."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import StartEdge, Viewer, distribution
from range_origin import RangeOrigin, start_range_origin

MB = 1024 * 1024


@pytest.fixture
async def big() -> AsyncIterator[RangeOrigin]:
    async with start_range_origin(RangeOrigin(body=random.randbytes(6 * MB))) as origin:
        yield origin


def small_memory(port: int, **disk: Any) -> dict[str, Any]:
    """A distribution whose memory tier holds objects up to 1 MB: larger ones go to disk."""
    document = distribution(port)
    document["edge"]["cache"] = {"max_bytes": 4 * MB, "max_object_bytes": MB}
    if disk:
        document["edge"]["cache"]["disk"] = disk
    return document


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def streamed(viewer: Viewer, path: str, **kwargs: Any) -> tuple[httpx.Response, str, int]:
    """The response, the SHA-256 of its body and the highest RSS seen while reading it."""
    digest, peak = hashlib.sha256(), rss()
    async with viewer.client.stream("GET", viewer.running.url(path), **kwargs) as response:
        async for chunk in response.aiter_raw():
            digest.update(chunk)
            peak = max(peak, rss())
    return response, digest.hexdigest(), peak


def run_files(config_dir: Path) -> list[Path]:
    return [p for p in (config_dir / ".edgeproxy/cache").rglob("*") if p.is_file()]


async def test_large_object_is_a_disk_hit_served_in_bounded_memory(start_edge: StartEdge):
    body = random.randbytes(64 * MB)
    async with start_range_origin(RangeOrigin(body=body)) as origin:
        viewer = await start_edge(small_memory(origin.port))
        first, first_hash, _ = await streamed(viewer, "/big.bin")
        assert first.headers["x-cache"] == "Miss from cloudfront"
        assert first_hash == hashlib.sha256(body).hexdigest()
        before = rss()
        second, second_hash, peak = await streamed(viewer, "/big.bin")
        assert second.headers["x-cache"] == "Hit from cloudfront"
        assert second.headers["content-length"] == str(len(body))
        assert second_hash == first_hash
        assert len(origin.seen) == 1
        assert peak - before < 16 * MB  # far less than the 64 MB object
        assert (await viewer.stats())["cache"]["disk_entries"] == 1


async def test_range_of_a_large_object_is_cut_on_the_miss_and_from_disk(
    big: RangeOrigin, start_edge: StartEdge
):
    viewer = await start_edge(small_memory(big.port))
    first = await viewer.get("/big.bin", headers={"Range": "bytes=100-199"})
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 100-199/{len(big.body)}"
    assert first.content == big.body[100:200]
    tail = await viewer.get("/big.bin", headers={"Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, big.body[-10:])
    assert tail.headers["x-cache"] == "Hit from cloudfront"
    assert len(big.seen) == 1


async def test_origin_dying_mid_body_leaves_nothing_a_later_viewer_gets(
    big: RangeOrigin, start_edge: StartEdge, tmp_path: Path
):
    big.cut_after = 2 * MB
    viewer = await start_edge(small_memory(big.port))
    with pytest.raises(httpx.HTTPError):
        await streamed(viewer, "/big.bin")
    assert run_files(tmp_path) == [next(tmp_path.rglob(".lock"))]  # no object file left
    big.cut_after = None
    whole, digest, _ = await streamed(viewer, "/big.bin")
    assert whole.headers["x-cache"] == "Miss from cloudfront"
    assert digest == hashlib.sha256(big.body).hexdigest()
    assert len(big.seen) == 2


async def test_invalidation_removes_the_file(
    big: RangeOrigin, start_edge: StartEdge, tmp_path: Path
):
    viewer = await start_edge(small_memory(big.port))
    await streamed(viewer, "/big.bin")
    assert len(run_files(tmp_path)) == 2  # the object and the run's lock
    answer = await viewer.client.post(
        f"{viewer.running.admin_url}/invalidations", json={"paths": ["/big.bin"]}
    )
    assert answer.status_code < 300
    assert len(run_files(tmp_path)) == 1
    again, _, _ = await streamed(viewer, "/big.bin")
    assert again.headers["x-cache"] == "Miss from cloudfront"


async def test_least_recently_used_goes_first_within_the_disk_budget(
    big: RangeOrigin, start_edge: StartEdge
):
    viewer = await start_edge(small_memory(big.port, max_bytes=13 * MB))  # two 6 MB objects
    for path in ("/a", "/b", "/a", "/c"):  # /b is the least recently used when /c comes
        await streamed(viewer, path)
    hits = {p: (await streamed(viewer, p))[0].headers["x-cache"] for p in ("/a", "/c")}
    assert hits == {"/a": "Hit from cloudfront", "/c": "Hit from cloudfront"}
    evicted, _, _ = await streamed(viewer, "/b")
    assert evicted.headers["x-cache"] == "Miss from cloudfront"


async def test_expired_object_without_validators_is_removed(
    big: RangeOrigin, start_edge: StartEdge, tmp_path: Path, clock: Any
):
    big.headers = {"Cache-Control": "max-age=10"}
    viewer = await start_edge(small_memory(big.port))
    await streamed(viewer, "/big.bin")
    clock.advance(11)
    refetched, _, _ = await streamed(viewer, "/big.bin")
    assert refetched.headers["x-cache"] == "Miss from cloudfront"
    assert len(run_files(tmp_path)) == 2  # the new copy only, the old file gone


async def test_disk_tier_can_be_turned_off(big: RangeOrigin, start_edge: StartEdge):
    viewer = await start_edge(small_memory(big.port, enabled=False))
    await streamed(viewer, "/big.bin")
    again, _, _ = await streamed(viewer, "/big.bin")
    assert again.headers["x-cache"] == "Miss from cloudfront"
    assert len(big.seen) == 2


async def test_a_previous_runs_files_are_wiped_at_start(
    big: RangeOrigin, start_edge: StartEdge, tmp_path: Path
):
    old_run = tmp_path / ".edgeproxy/cache/run-1-dead"
    old_run.mkdir(parents=True)
    (old_run / "000000000001").write_bytes(b"a partial object of a run that died")
    await start_edge(small_memory(big.port))
    assert not old_run.exists()
