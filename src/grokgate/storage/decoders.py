"""Decoding downloaded results in a separate process, so that FFmpeg's and Pillow's work neither holds the event
loop's GIL nor can take the gateway down with it.

Measuring a video and making its poster frame (`storage.probe`) is about 2 ms of CPU per video, most of it with the
GIL held (PyAV's decode, Pillow's JPEG encoder): with thousands of videos finishing at once, that work queued
behind the event loop and set the notification lag. In a worker process it runs on another core. The process is
also a wall around code that parses bytes from the Internet: a file that crashes FFmpeg, exhausts memory or never
finishes decoding fails that one job (refunded as `MediaRejected`); the worker is restarted for the next one.
Images fetched by URL are checked there too; an image xAI sends inline is small and checked in a thread.

Workers are forked from a `forkserver` that preloads the decoding modules (never forked from the serving process
itself, whose threads and event loop a fork would copy half-way), so a restart costs milliseconds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import pebble

from grokgate.storage import probe
from grokgate.storage.probe import NotMedia, Probe

P = ParamSpec("P")
T = TypeVar("T")

DECODE_TIMEOUT = 60.0
"""Seconds one probe may take in a worker before the worker is killed (a first frame takes milliseconds)."""
MEMORY_LIMIT = 4 * 1024**3
"""Address space a worker may use: a file that makes the decoder allocate past it kills that worker, not the box."""


def _limit_memory(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class MediaDecoders:
    """Where `probe` runs: `processes` worker processes (started at the first download), or, with 0, a thread of this
    process (for a deployment that cannot start processes; it keeps neither the wall nor the other core)."""

    def __init__(
        self, processes: int = 1, *, timeout: float = DECODE_TIMEOUT, memory_limit: int = MEMORY_LIMIT
    ) -> None:
        self.processes = processes
        self.timeout = timeout
        self.memory_limit = memory_limit
        self._pool: pebble.ProcessPool | None = None

    def _workers(self) -> pebble.ProcessPool:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([probe.__name__])
            self._pool = pebble.ProcessPool(
                max_workers=self.processes,
                initializer=_limit_memory,
                initargs=(self.memory_limit,),
                context=context,
            )
        return self._pool

    async def probe(self, path: Path, kind: str, *, poster: bool = False) -> Probe:
        """`probe.probe` of the file at `path`; raises NotMedia for a file that is not the media, and for one
        whose decoding killed its worker or outlasted the timeout."""
        if not self.processes:
            return await asyncio.to_thread(probe.probe, path, kind, poster=poster)
        return await self.call(probe.probe, path, kind, poster=poster)

    async def call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)` in a worker (module-level, its arguments and result picklable)."""
        future = self._workers().schedule(function, args, kwargs, timeout=self.timeout)
        try:
            return await asyncio.wrap_future(future)
        except pebble.ProcessExpired as exc:
            raise NotMedia(f"decoding stopped its worker process (exit code {exc.exitcode})") from exc
        except TimeoutError as exc:
            raise NotMedia(f"decoding took longer than {self.timeout:g} s") from exc

    async def aclose(self) -> None:
        """Stop the workers; a decode still running is abandoned (its job is retried by whoever takes it next)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.stop()  # type: ignore[no-untyped-call]
            await asyncio.to_thread(pool.join, 5.0)
