"""Real media for the sandbox: a PNG of the asked aspect ratio (Pillow), an H.264 MP4 of the asked duration (PyAV)."""

from __future__ import annotations

import hashlib
import io
from fractions import Fraction

import av
from PIL import Image, ImageDraw

IMAGE_LONG_SIDE = 1024
VIDEO_SIZES: dict[str, tuple[int, int]] = {
    "16:9": (848, 480),
    "9:16": (480, 848),
    "4:3": (640, 480),
    "3:4": (480, 640),
    "1:1": (480, 480),
    "3:2": (720, 480),
    "2:3": (480, 720),
}
VIDEO_FPS = 8


def image_size(aspect_ratio: str | None) -> tuple[int, int]:
    if not aspect_ratio or aspect_ratio == "auto":
        return (IMAGE_LONG_SIDE, IMAGE_LONG_SIDE)
    width_part, height_part = (float(part) for part in aspect_ratio.split(":"))
    if width_part >= height_part:
        return (IMAGE_LONG_SIDE, round(IMAGE_LONG_SIDE * height_part / width_part))
    return (round(IMAGE_LONG_SIDE * width_part / height_part), IMAGE_LONG_SIDE)


def _palette(seed: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    digest = hashlib.sha256(seed.encode()).digest()
    return (digest[0], digest[1], digest[2]), (digest[3], digest[4], digest[5])


def _canvas(size: tuple[int, int], seed: str, caption: str) -> Image.Image:
    start, end = _palette(seed)
    gradient = Image.linear_gradient("L").resize(size)
    image = Image.composite(Image.new("RGB", size, end), Image.new("RGB", size, start), gradient)
    ImageDraw.Draw(image).text((16, 16), caption[:120], fill=(255, 255, 255))
    return image


def render_png(prompt: str, aspect_ratio: str | None) -> bytes:
    image = _canvas(image_size(aspect_ratio), prompt, f"grokgate sandbox: {prompt}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def render_mp4(prompt: str, duration: int, aspect_ratio: str | None) -> bytes:
    """`duration` seconds of H.264 at a low frame rate: real, playable, and cheap to make."""
    width, height = VIDEO_SIZES.get(aspect_ratio or "16:9", VIDEO_SIZES["16:9"])
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
