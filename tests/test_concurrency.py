"""A function's concurrency slots: calls past the slots wait for a live one, are throttled at
once when every slot is held by a stuck call, and never leak a slot."""

from __future__ import annotations

import asyncio

import pytest

from edgeproxy.functions.concurrency import Slots, Throttled


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


async def test_stuck_slots_throttle_at_once_and_free_when_their_call_returns() -> None:
    slots = Slots(2)
    a, b = await slots.acquire(), await slots.acquire()
    waiting = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    a.stuck()
    await asyncio.sleep(0)
    assert not waiting.done()  # b may still return in time
    b.stuck()
    with pytest.raises(Throttled, match="all 2 concurrent executions"):
        await asyncio.wait_for(waiting, 5)  # nobody left who could free a slot
    with pytest.raises(Throttled):
        await slots.acquire()  # refused at once, not queued
    a.release()  # the stuck call's handler returned at last
    c = await asyncio.wait_for(slots.acquire(), 5)
    assert (slots.live, slots.stuck) == (1, 1)
    c.release()
    b.release()
    assert (slots.live, slots.stuck) == (0, 0)


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
