"""`Slots`: at most N holders at once, where a free slot is taken at once, queue or not.

asyncio's `Lock` and `Semaphore` are fair: once anyone waits, a newcomer queues behind them even when a slot is free,
and a release reserves its slot for the first waiter until that task runs. Under load that run comes only after
every other ready task of the event loop has had its turn (hundreds, with a thousand requests in flight), so the
slot sits idle for a whole pass of the loop at each hand-over, and a queue that formed once never drains: a lock
convoy. SQLite's writer lock, held for the few microseconds a direct transaction takes without yielding, was waited
on by 2.5 of an image's 3 transactions, about a second an image in all, with 1,000 clients on a 2 s upstream.

Here a release only frees the slot and wakes the first waiter; whoever runs first takes it. A holder that does not
yield (a direct SQLite transaction) is done before a woken waiter runs, so nobody waits on work that is not
happening. A woken waiter that finds the slots taken again waits at the head of the queue, not the tail, so it
cannot be passed over for ever: only by holders that took a slot while it was free.

It suits holders that do not yield. Where they hold across round trips (PostgreSQL's kept connections) the
newcomers' barging kept woken waiters from their turn: the 10,000-video burst's lag doubled, so those stay on
asyncio's `Semaphore`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType


class Slots:
    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        """No slot is free now."""
        return self._free == 0

    async def acquire(self) -> None:
        woken = False
        while self._free == 0:
            waiter = asyncio.get_running_loop().create_future()
            if woken:
                self._waiters.appendleft(waiter)
            else:
                self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():  # woken, then cancelled: the wake-up goes on
                    self._wake()
                elif waiter in self._waiters:  # a release may have dropped it already
                    self._waiters.remove(waiter)
                raise
            woken = True
        self._free -= 1

    def release(self) -> None:
        self._free += 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()
