"""`Slots` (`db/slots.py`): never more holders than slots, a free slot taken at once even with a queue (no lock
convoy), a woken waiter that lost its slot waiting at the head, and cancellations that leak no slot."""

from __future__ import annotations

import asyncio

import pytest

from grokgate.db.slots import Slots


async def test_never_more_holders_than_slots() -> None:
    slots = Slots(3)
    holding = most = 0

    async def hold() -> None:
        nonlocal holding, most
        async with slots:
            holding += 1
            most = max(most, holding)
            await asyncio.sleep(0.001)
            holding -= 1

    await asyncio.gather(*(hold() for _ in range(50)))
    assert most == 3
    assert not slots.locked()


async def test_a_free_slot_is_taken_at_once_though_others_wait() -> None:
    """asyncio's Lock would queue the newcomer behind the woken waiter, and the slot would sit idle until the
    waiter's turn on the event loop came."""
    slots = Slots(1)
    await slots.acquire()
    waiter = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)  # it waits now
    slots.release()  # wakes the waiter, which has not run yet
    assert not slots.locked()
    await slots.acquire()  # taken in this very step, before the waiter has run
    assert not waiter.done()
    slots.release()
    await asyncio.wait_for(waiter, 1)  # and the waiter still gets its turn
    assert slots.locked()
    slots.release()


async def test_a_woken_waiter_that_lost_the_slot_waits_at_the_head() -> None:
    slots = Slots(1)
    await slots.acquire()
    order: list[str] = []

    async def take(name: str) -> None:
        await slots.acquire()
        order.append(name)
        await asyncio.sleep(0.001)
        slots.release()

    first = asyncio.create_task(take("first"))
    await asyncio.sleep(0)
    slots.release()  # wakes `first`
    await slots.acquire()  # a newcomer takes the slot before `first` runs
    second = asyncio.create_task(take("second"))  # queued behind `first`, which will queue again
    await asyncio.sleep(0.01)
    assert order == []
    slots.release()
    await asyncio.wait_for(asyncio.gather(first, second), 1)
    assert order == ["first", "second"]


@pytest.mark.parametrize("woken", [False, True])
async def test_a_cancelled_waiter_leaks_no_slot_and_loses_no_wake_up(woken: bool) -> None:
    slots = Slots(1)
    await slots.acquire()
    cancelled = asyncio.create_task(slots.acquire())
    behind = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    if woken:
        slots.release()  # wakes `cancelled`, which is cancelled before it runs: `behind` must be woken instead
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    if not woken:
        slots.release()
    await asyncio.wait_for(behind, 1)
    assert slots.locked()
    slots.release()
    assert not slots.locked()
