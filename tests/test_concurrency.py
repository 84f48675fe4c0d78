"""A function's concurrency slots: calls past the slots wait for one within their timeout
(whether held by live or stuck calls) and never leak a slot; the edge's count of running
executions refuses calls past its limit."""

from __future__ import annotations

import asyncio

import pytest

from edgeproxy.functions.concurrency import Executions, Slots, Throttled


async def test_a_call_past_the_slots_waits_for_a_live_one() -> None:
    slots = Slots(1)
    first = await slots.acquire()
    waiting = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    assert not waiting.done()
    first.release()
    second = await asyncio.wait_for(waiting, 5)
    assert (slots.live, slots.stuck) == (1, 0)
    second.release()
    second.release()  # once only
    assert (slots.live, slots.stuck) == (0, 0)


async def test_stuck_slots_make_calls_wait_until_their_call_returns() -> None:
    """Stuck calls hold their slots: a later call waits (its timeout bounds the wait, and
    it is answered as a timeout), and gets a slot once a stuck handler returns at last."""
    slots = Slots(2)
    a, b = await slots.acquire(), await slots.acquire()
    a.stuck()
    b.stuck()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await slots.acquire()  # nobody frees one in time
    assert (slots.live, slots.stuck) == (0, 2)
    waiting = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    assert not waiting.done()
    a.release()  # the stuck call's handler returned at last
    c = await asyncio.wait_for(waiting, 5)
    assert (slots.live, slots.stuck) == (1, 1)
    c.release()
    b.release()
    assert (slots.live, slots.stuck) == (0, 0)


def test_executions_past_the_limit_are_throttled() -> None:
    executions = Executions(2)
    executions.start()
    executions.start()
    with pytest.raises(Throttled, match="2 concurrent executions"):
        executions.start()
    assert executions.running == 2
    executions.end()
    executions.start()
    assert executions.running == 2


async def test_a_waiter_cancelled_as_it_is_handed_a_slot_gives_it_back() -> None:
    slots = Slots(1)
    first = await slots.acquire()
    waiting = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    first.release()  # handed to the waiter...
    waiting.cancel()  # ...whose timeout fires before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (slots.live, slots.stuck) == (0, 0)
    (await asyncio.wait_for(slots.acquire(), 5)).release()
