"""Videos decoded in a worker process: the same measurements and poster as in this process, and a decoder that
crashes, hangs or runs out of memory fails only its own video (as not media, so the job is refunded), while the
next video is decoded by a fresh worker."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from grokgate.storage.decoders import MediaDecoders
from grokgate.storage.probe import NotMedia
from grokgate.upstream.sandbox.render import render_mp4


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "video.mp4"
    path.write_bytes(render_mp4("a decoded fox", 1, "16:9"))
    return path


@pytest.fixture
async def decoders() -> AsyncIterator[MediaDecoders]:
    decoders = MediaDecoders(1, timeout=5.0, memory_limit=2 * 1024**3)
    yield decoders
    await decoders.aclose()


def _workers() -> list[psutil.Process]:
    """This process's decoder workers (forked by the forkserver, so its grandchildren)."""
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE and child.ppid() != os.getpid()
    ]


async def test_a_worker_measures_and_posters_as_this_process_does(decoders: MediaDecoders, video: Path) -> None:
    here = await MediaDecoders(0).probe(video, "video", poster=True)
    there = await decoders.probe(video, "video", poster=True)
    assert there == here
    assert (there.width, there.height, there.content_type) == (848, 480, "video/mp4")
    assert there.poster is not None
    assert there.poster.startswith(b"\xff\xd8\xff")
    assert _workers(), "the decoding ran in another process"


async def test_bytes_that_are_no_video_are_refused_and_the_worker_stays(
    decoders: MediaDecoders, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    with pytest.raises(NotMedia, match="could not be decoded"):
        await decoders.probe(junk, "video", poster=True)
    [worker] = _workers()
    with pytest.raises(NotMedia, match="expected image bytes"):
        await decoders.probe(tmp_path / "junk.mp4", "image")
    assert _workers() == [worker]


async def test_a_crashing_decoder_fails_its_video_only(decoders: MediaDecoders, video: Path) -> None:
    await decoders.probe(video, "video")
    [first] = _workers()
    with pytest.raises(NotMedia, match="stopped its worker process"):
        await decoders.call(os.abort)
    assert not first.is_running() or first.status() == psutil.STATUS_ZOMBIE
    assert (await decoders.probe(video, "video", poster=True)).poster
    assert [worker.pid for worker in _workers()] != [first.pid]


async def test_a_decoder_that_never_finishes_is_killed_at_the_timeout(video: Path) -> None:
    decoders = MediaDecoders(1, timeout=0.5)
    try:
        await decoders.probe(video, "video")
        started = time.monotonic()
        with pytest.raises(NotMedia, match=r"longer than 0\.5 s"):
            await decoders.call(time.sleep, 30)
        assert time.monotonic() - started < 5
        assert (await decoders.probe(video, "video", poster=True)).poster
    finally:
        await decoders.aclose()


async def test_a_worker_cannot_take_more_memory_than_its_limit(decoders: MediaDecoders, video: Path) -> None:
    with pytest.raises(MemoryError):
        await decoders.call(bytearray, 3 * 1024**3)
    assert (await decoders.probe(video, "video")).width == 848


async def test_closing_stops_the_workers(video: Path) -> None:
    decoders = MediaDecoders(1)
    await decoders.probe(video, "video")
    [worker] = _workers()
    await decoders.aclose()
    worker.wait(timeout=5)
    assert not worker.is_running()
