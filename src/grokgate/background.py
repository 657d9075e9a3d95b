"""The loop shared by the background workers (video poller, webhook sender): rounds until told to stop.

A round leases a batch of due rows and works on them. When it came back full there is more to do at once;
otherwise the loop sleeps one tick, or less if stopped meanwhile. A round that raises is logged and the loop goes
on: the leases it took run out and a later round retries the work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


async def run_rounds(
    name: str, work: Callable[[], Awaitable[int]], *, stop: asyncio.Event, batch: int, tick: float
) -> None:
    log.info(f"{name}.started")
    while not stop.is_set():
        try:
            handled = await work()
        except Exception:
            log.exception(f"{name}.round_failed")
            handled = 0
        if handled < batch:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)
    log.info(f"{name}.stopped")
