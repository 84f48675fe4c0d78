"""Kept-alive origin connections through a real edge: a connection is reused only while the
origin sends exactly the answers asked for. Bytes after an answer (a second answer, a body
longer than its Content-Length, anything written to an idle connection) close it, so the
next request never reads them as its own answer (the origin sees a new connection).

The origin is a raw asyncio server (tests/fault_origin.py) that answers each request with
``answer for <path>`` and adds its surplus after the first answer.
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import StartEdge
from fault_origin import FaultOrigin, running
from test_origin_faults import fast

# Generous on a loaded machine: the edge runs in this loop and reads the surplus as soon as
# the loop turns, long before this.
SETTLE_S = 0.3


async def two_requests(faulty: FaultOrigin, start_edge: StartEdge) -> list[tuple[int, bytes]]:
    """/a, then (once the origin wrote its surplus and the edge could read it) /b."""
    viewer = await start_edge(fast(faulty.port))
    first = await viewer.get("/a")
    await asyncio.wait_for(faulty.surplus_sent.wait(), 10)
    await asyncio.sleep(SETTLE_S)
    second = await viewer.get("/b")
    return [(first.status_code, first.content), (second.status_code, second.content)]


SURPLUS = [
    pytest.param("stale_answer_later", id="whole-answer-on-idle-connection"),
    pytest.param("stale_partial_later", id="part-of-an-answer-on-idle-connection"),
    pytest.param("stale_bytes_later", id="body-bytes-past-content-length-on-idle-connection"),
    pytest.param("stale_answer_same_write", id="two-answers-to-one-request"),
    pytest.param("stale_partial_same_write", id="answer-then-part-of-another"),
]


@pytest.mark.parametrize("mode", SURPLUS)
async def test_surplus_after_an_answer_closes_the_connection(mode: str, start_edge: StartEdge):
    async with running(FaultOrigin(plan=[mode], mode="paths")) as faulty:
        answers = await two_requests(faulty, start_edge)
        assert answers == [(200, b"answer for /a"), (200, b"answer for /b")]
        assert faulty.connections == 2
        assert [head.split(b" ")[1] for head in faulty.heads] == [b"/a", b"/b"]


async def test_a_body_longer_than_its_content_length_is_refused_and_not_reused(
    start_edge: StartEdge,
):
    # The surplus arrives with the body: the framing cannot be trusted, so that answer is
    # CloudFront's 502 (never a body cut to size); the next request gets a new connection.
    async with running(FaultOrigin(plan=["stale_bytes_same_write"], mode="paths")) as faulty:
        answers = await two_requests(faulty, start_edge)
        assert answers[0][0] == 502
        assert b"STALE" not in answers[0][1]
        assert answers[1] == (200, b"answer for /b")
        assert faulty.connections == 2


@pytest.mark.parametrize("mode", ["paths", "informational_first"])
async def test_a_well_behaved_origin_keeps_one_connection(mode: str, start_edge: StartEdge):
    # A 1xx answer before the final one is not a surplus: the final answer is still expected.
    async with running(FaultOrigin(mode=mode)) as faulty:
        viewer = await start_edge(fast(faulty.port))
        for path in ("/a", "/b", "/c"):
            response = await viewer.get(path)
            assert (response.status_code, response.text) == (200, f"answer for {path}")
            await asyncio.sleep(0.1)  # the answer is over; the connection waits in the pool
        assert faulty.connections == 1
        assert len(faulty.heads) == 3


# -- a kept-alive connection the origin closed as the next request went out -------------------
# CloudFront keeps origin connections alive between requests (Developer Guide, "Request and
# response behavior for custom origins", Persistent connections:
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/RequestAndResponseBehaviorCustomOrigin.html#request-custom-persistent-connections);
# a client may send an idempotent request again when such a connection closes before the
# answer (RFC 9112 9.3.1), once and on a new connection, outside connection_attempts.


async def test_a_stale_pooled_connection_is_retried_on_a_new_one(start_edge: StartEdge):
    plan = ["answer_once_then_drop"]  # the second request on that connection goes unanswered
    async with running(FaultOrigin(plan=plan, mode="paths")) as faulty:
        viewer = await start_edge(fast(faulty.port, attempts=1))
        first = await viewer.get("/a")
        await asyncio.sleep(0.1)  # the answer is over; the connection waits in the pool
        second = await viewer.get("/b")
        assert (first.status_code, second.status_code) == (200, 200)
        assert second.text == "answer for /b"  # from the new connection
        assert faulty.connections == 2
        assert [head.split(b" ")[1] for head in faulty.heads] == [b"/a", b"/b", b"/b"]


async def test_a_stale_pooled_connection_is_not_retried_for_post(start_edge: StartEdge):
    plan = ["answer_once_then_drop"]
    async with running(FaultOrigin(plan=plan, mode="paths")) as faulty:
        viewer = await start_edge(fast(faulty.port, attempts=3))
        # Without a body: a streamed one that began to go out is never sent again anyway.
        first = await viewer.request("POST", "/a")
        await asyncio.sleep(0.1)
        second = await viewer.request("POST", "/b")
        assert (first.status_code, second.status_code) == (200, 502)
        assert second.headers["x-cache"] == "Error from cloudfront"
        assert faulty.connections == 1  # the origin may have acted on it: never sent again
