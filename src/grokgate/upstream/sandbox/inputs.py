"""What the sandbox can learn about an input image or video: its bytes, then its size and duration.

xAI fetches every input. The sandbox reads a `data:` URI or one of its own file links at once; an input video
at an http(s) URL is fetched too (bounded in time and bytes), because a video edit takes its duration and
resolution from the input. Input images at http(s) URLs are not fetched (the gateway's tests use unreachable
ones, and nothing in the answer depends on them but a single-image edit's aspect ratio). Whatever cannot be read
leaves the caller with its defaults, as the brief of a stand-in allows: no input ever makes the sandbox fail.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

import av
import httpx
from PIL import Image, UnidentifiedImageError

FETCH_TIMEOUT = 5.0
FETCH_BYTES = 64 * 1024 * 1024
PROBE_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, ValueError, TypeError, IndexError, OSError)


def data_uri_bytes(url: str) -> bytes | None:
    header, _, payload = url.partition(",")
    if not header.startswith("data:") or ";base64" not in header:
        return None
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return None


async def fetch(url: str) -> bytes | None:
    """An http(s) input, or None when it cannot be had quickly: unreachable, not 200, or too large."""
    try:
        async with (
            httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=True) as client,
            client.stream("GET", url) as answer,
        ):
            if answer.status_code != 200:
                return None
            chunks: list[bytes] = []
            size = 0
            async for chunk in answer.aiter_bytes():
                size += len(chunk)
                if size > FETCH_BYTES:
                    return None
                chunks.append(chunk)
            return b"".join(chunks)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError):  # InvalidURL: a URL httpx will not even send
        return None


def image_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            return width, height
    except (UnidentifiedImageError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class VideoFacts:
    seconds: float
    duration: int
    """Whole seconds, at least 1."""
    width: int
    height: int


def video_facts(data: bytes) -> VideoFacts | None:
    """Duration and frame size of an MP4, read with PyAV; None when it is no video."""
    try:
        container: Any = av.open(io.BytesIO(data))
        with container:
            stream = container.streams.video[0]
            seconds = (
                container.duration / 1_000_000 if container.duration else float(stream.duration * stream.time_base)
            )
            return VideoFacts(
                seconds=seconds, duration=max(1, round(seconds)), width=stream.width, height=stream.height
            )
    except PROBE_ERRORS:
        return None
