"""Taking turns by lane: the waiting room in front of the upstream keys' pace.

When every key is busy, requests wait here, each in its lane (its organisation). Slots are handed out one lane at a
time, round robin, oldest waiter first within a lane: a burst of a hundred requests from one organisation takes
every other turn, never every turn, so a second organisation's request waits behind at most one of them per slot.
The room is bounded; a waiter gives up (and is forgotten) when its own time runs out. Pure asyncio, no I/O.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class RoomFull(Exception):
    """More requests wait than the room holds."""


class FairQueue(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lanes: dict[str, deque[asyncio.Future[T]]] = {}
        self._turns: deque[str] = deque()
        self._count = 0
        self.arrived = asyncio.Event()
        """Set whenever somebody starts waiting: the dispatcher sleeps on it while the room is empty."""

    @property
    def waiting(self) -> int:
        return self._count

    async def wait(self, lane: str, seconds: float) -> T | None:
        """The slot handed to this waiter, or None when `seconds` run out first."""
        if self._count >= self.capacity:
            raise RoomFull(f"{self._count} requests are already waiting for an upstream key")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        lane_queue = self._lanes.get(lane)
        if lane_queue is None:
            lane_queue = self._lanes[lane] = deque()
            self._turns.append(lane)
        lane_queue.append(future)
        self._count += 1
        self.arrived.set()
        try:
            return await asyncio.wait_for(future, seconds)
        except TimeoutError:
            return None
        finally:
            self._forget(lane, future)

    def _forget(self, lane: str, future: asyncio.Future[T]) -> None:
        lane_queue = self._lanes.get(lane)
        if lane_queue is not None and future in lane_queue:
            lane_queue.remove(future)
            self._count -= 1
            if not lane_queue:
                del self._lanes[lane]
                self._turns.remove(lane)

    def hand(self, slot: T) -> bool:
        """Give `slot` to the oldest waiter of the lane whose turn it is; False if nobody waits any more."""
        while self._turns:
            lane = self._turns.popleft()
            lane_queue = self._lanes[lane]
            future = lane_queue.popleft()
            self._count -= 1
            if lane_queue:
                self._turns.append(lane)  # its next waiter goes to the back of the turns
            else:
                del self._lanes[lane]
            if not future.done():
                future.set_result(slot)
                return True
        return False

    def fail_all(self, error: BaseException) -> None:
        """Tell every waiter that no slot will come (no key is in rotation)."""
        for lane_queue in self._lanes.values():
            for future in lane_queue:
                if not future.done():
                    future.set_exception(error)
        self._lanes.clear()
        self._turns.clear()
        self._count = 0
