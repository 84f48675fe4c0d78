"""A misbehaving handler on one path never costs the viewers of another path their answers:
200 requests on a healthy path run while handlers on other paths raise and overrun a short
timeout, and every one of the 200 gets its normal answer."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from conftest import RecordingOrigin, StartEdge, distribution, handler

HEALTHY = 200
RAISING = 40
SLEEPING = 10


def with_bad_paths(origin: RecordingOrigin) -> dict[str, Any]:
    document = distribution(origin.port)
    base = dict(document["distribution"]["default_cache_behavior"])

    def behavior(pattern: str, association: dict[str, Any]) -> dict[str, Any]:
        return {**base, "path_pattern": pattern, "lambda_function_association": [association]}

    document["distribution"]["ordered_cache_behavior"] = [
        behavior("/raise/*", {"event_type": "viewer-request", "handler": handler("raises.py")}),
        behavior(
            "/sleep/*",
            {"event_type": "viewer-request", "handler": handler("sleeps.py"), "timeout": 1},
        ),
    ]
    # thread isolation: sleeping calls held in the edge's threads are what this test stresses
    document["edge"]["handlers"] = {"isolation": "thread"}
    return document


async def test_other_paths_keep_their_answers_while_handlers_misbehave(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(with_bad_paths(origin))
    limits = httpx.Limits(max_connections=HEALTHY + RAISING + SLEEPING)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def get(path: str, **headers: str) -> httpx.Response:
            return await client.get(viewer.running.url(path), headers=headers)

        sleeping = [get(f"/sleep/{i}", **{"X-Sleep": "2"}) for i in range(SLEEPING)]
        raising = [get(f"/raise/{i}") for i in range(RAISING)]
        healthy = [get(f"/ok/{i % 50}?n={i}") for i in range(HEALTHY)]
        answers = await asyncio.gather(*sleeping, *raising, *healthy)

    slept = answers[:SLEEPING]
    raised = answers[SLEEPING : SLEEPING + RAISING]
    served = answers[SLEEPING + RAISING :]
    assert len(served) == HEALTHY
    for i, answer in enumerate(served):
        assert answer.status_code == 200, (i, answer.text[:200])
        assert answer.text == f"origin body for /ok/{i % 50}"
        assert answer.headers["x-cache"] in ("Miss from cloudfront", "Hit from cloudfront")
    assert {(a.status_code, a.headers["x-cache"]) for a in raised} == {
        (503, "LambdaExecutionError from cloudfront")
    }
    # timed out: an execution error, as CloudFront answers it (serverless-next.js#2014)
    assert {(a.status_code, a.headers["x-cache"]) for a in slept} == {
        (503, "LambdaExecutionError from cloudfront")
    }
    assert origin.requests_for("/raise/0") == [] and origin.requests_for("/sleep/0") == []
    assert len({r.path for r in origin.seen}) == 50  # one fetch per object (collapsed or cached)
