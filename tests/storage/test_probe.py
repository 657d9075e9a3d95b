"""The video poster: the first frame itself, whatever the row stride FFmpeg pads each frame's lines to."""

from __future__ import annotations

import io

import av
import pytest
from PIL import Image, ImageChops, ImageDraw

from grokgate.storage.probe import probe


def _mp4(width: int, height: int) -> bytes:
    """One second of H.264 whose first frame has diagonal stripes: a frame read with the wrong stride is sheared."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=4)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(4):
            image = Image.new("RGB", (width, height), (20, 40, 60))
            draw = ImageDraw.Draw(image)
            for offset in range(-height, width, 24):
                draw.line((offset, 0, offset + height, height), fill=(250, 200, 10 * index), width=6)
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


@pytest.mark.parametrize("width", [480, 270])  # 270 x 3 bytes is not a multiple of FFmpeg's line alignment
def test_poster_is_the_first_frame(width: int) -> None:
    video = _mp4(width, 150)
    with av.open(io.BytesIO(video)) as container:
        first = next(container.decode(video=0)).to_image()
    found = probe(video, "video", poster=True)
    assert found.poster is not None
    poster = Image.open(io.BytesIO(found.poster))
    assert poster.format == "JPEG"
    assert (poster.width, poster.height) == (found.width, found.height) == first.size == (width, 150)
    # The same pixels as PyAV's own (row by row) conversion of the frame gives, through the same JPEG encoder.
    expected = io.BytesIO()
    first.save(expected, format="JPEG", quality=85)
    assert ImageChops.difference(poster.convert("RGB"), Image.open(expected).convert("RGB")).getbbox() is None
