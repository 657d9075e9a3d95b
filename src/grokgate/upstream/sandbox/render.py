"""Real media for the sandbox: a PNG of the asked aspect ratio and resolution (Pillow), an H.264 MP4 of the asked
duration, aspect ratio and resolution (PyAV)."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from fractions import Fraction

import av
from PIL import Image, ImageDraw

IMAGE_LONG_SIDES: dict[str, int] = {"1k": 1024, "1.5k": 1536, "2k": 2048}
"""Pixels on the long side of an image, by `resolution`."""
VIDEO_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "480p": {
        "16:9": (848, 480),
        "9:16": (480, 848),
        "4:3": (640, 480),
        "3:4": (480, 640),
        "1:1": (480, 480),
        "3:2": (720, 480),
        "2:3": (480, 720),
    },
    "720p": {
        "16:9": (1280, 720),
        "9:16": (720, 1280),
        "4:3": (960, 720),
        "3:4": (720, 960),
        "1:1": (720, 720),
        "3:2": (1080, 720),
        "2:3": (720, 1080),
    },
    "1080p": {
        "16:9": (1920, 1080),
        "9:16": (1080, 1920),
        "4:3": (1440, 1080),
        "3:4": (1080, 1440),
        "1:1": (1080, 1080),
        "3:2": (1620, 1080),
        "2:3": (1080, 1620),
    },
}
"""Frame sizes by `resolution` (the short side) and aspect ratio: even, as H.264's 4:2:0 needs."""
VIDEO_FPS = 8


def image_size(
    aspect_ratio: str | None, resolution: str | None = None, like: tuple[int, int] | None = None
) -> tuple[int, int]:
    """The long side from `resolution` (1k when unset); the shape from `like` (an input image's size, which a
    single-image edit keeps), else from `aspect_ratio` (square for `auto` or unset)."""
    long_side = IMAGE_LONG_SIDES[resolution or "1k"]
    if like is not None:
        width_part, height_part = float(like[0]), float(like[1])
    elif not aspect_ratio or aspect_ratio == "auto":
        return (long_side, long_side)
    else:
        width_part, height_part = (float(part) for part in aspect_ratio.split(":"))
    if width_part >= height_part:
        return (long_side, max(1, round(long_side * height_part / width_part)))
    return (max(1, round(long_side * width_part / height_part)), long_side)


def video_size(aspect_ratio: str | None, resolution: str | None) -> tuple[int, int]:
    sizes = VIDEO_SIZES[resolution or "480p"]
    return sizes.get(aspect_ratio or "16:9", sizes["16:9"])


def nearest_video_aspect(width: int, height: int) -> str:
    """The aspect ratio of ours closest to an input video's frame, which an edit or extension keeps."""
    ratio = width / height
    return min(VIDEO_SIZES["480p"], key=lambda name: abs(_ratio(name) - ratio))


def _ratio(aspect_ratio: str) -> float:
    width_part, height_part = (float(part) for part in aspect_ratio.split(":"))
    return width_part / height_part


def _palette(seed: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    digest = hashlib.sha256(seed.encode()).digest()
    return (digest[0], digest[1], digest[2]), (digest[3], digest[4], digest[5])


def _canvas(size: tuple[int, int], seed: str, caption: str) -> Image.Image:
    start, end = _palette(seed)
    gradient = Image.linear_gradient("L").resize(size)
    image = Image.composite(Image.new("RGB", size, end), Image.new("RGB", size, start), gradient)
    ImageDraw.Draw(image).text((16, 16), caption[:120], fill=(255, 255, 255))
    return image


def render_png(
    prompt: str,
    aspect_ratio: str | None,
    *,
    resolution: str | None = None,
    index: int = 0,
    like: tuple[int, int] | None = None,
) -> bytes:
    """One image of a request; `index` > 0 (the further images of `n`) changes colours and caption, so that the
    images of one answer are distinct files, as xAI's are. Fast PNG compression keeps a 2k image cheap."""
    seed = prompt if index == 0 else f"{prompt}#{index}"
    caption = f"grokgate sandbox: {prompt}" if index == 0 else f"grokgate sandbox #{index + 1}: {prompt}"
    image = _canvas(image_size(aspect_ratio, resolution, like), seed, caption)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def render_mp4(prompt: str, duration: int, aspect_ratio: str | None, resolution: str | None = None) -> bytes:
    """`duration` seconds of H.264 at a low frame rate: real, playable, and cheap to make (a 6 s 1080p video
    takes about half a second)."""
    width, height = video_size(aspect_ratio, resolution)
    base = _canvas((width, height), prompt, f"grokgate sandbox: {prompt}")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=VIDEO_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, VIDEO_FPS)
        stream.options = {"preset": "ultrafast", "tune": "stillimage"}
        frames = duration * VIDEO_FPS
        for index in range(frames):
            frame_image = base.copy()
            x = int((width - 40) * index / max(1, frames - 1))
            ImageDraw.Draw(frame_image).rectangle((x, height - 40, x + 40, height - 8), fill=(255, 255, 255))
            frame = av.VideoFrame.from_image(frame_image)  # type: ignore[no-untyped-call]
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def marked_png(png: bytes, mark: bytes) -> bytes:
    """The same picture with `mark` in a `tEXt` chunk before `IEND`: other bytes (so another stored object) at the
    cost of a copy, for the benchmark's distinct images. A valid PNG: the chunk carries its CRC."""
    body = b"tEXt" + b"bench\x00" + mark
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    end = png.rindex(b"IEND") - 4  # the IEND chunk starts with its 4-byte length
    return png[:end] + chunk + png[end:]


def marked_mp4(mp4: bytes, mark: bytes) -> bytes:
    """The same video with `mark` in a trailing top-level `free` box, which players and demuxers skip: other bytes
    (so another stored object), for the benchmark's distinct videos."""
    return mp4 + struct.pack(">I", 8 + len(mark)) + b"free" + mark
