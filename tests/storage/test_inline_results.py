"""`GROKGATE_XAI_IMAGE_FORMAT=b64_json`: images are asked of xAI inline and stored from memory, with the same
answer, the same stored bytes and the same refusal of bytes that are no image as the `url` path."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from grokgate.storage.ingest import Ingestor, Limits, b64decode
from grokgate.storage.store import MediaStore, open_store
from grokgate.storage.stored import MediaRejected


async def test_inline_images_are_stored_and_served_like_downloaded_ones(
    gateway_factory: Callable[..., Any], sandbox: Any
) -> None:
    async with gateway_factory(xai_image_format="b64_json") as gateway:
        tenant = await gateway.tenant(credits=100)
        body = {"prompt": "An inline fox", "model": "text-to-image", "aspect_ratio": "16:9", "n": 2}
        response = await gateway.generate(tenant, body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert len(answer["resultUrls"]) == 2
        async with httpx.AsyncClient() as client:
            images = [(await client.get(url)) for url in answer["resultUrls"]]
        assert all(image.headers["content-type"] == "image/png" for image in images)
        assert all(Image.open(io.BytesIO(image.content)).size == (1024, 576) for image in images)
        assert images[0].content != images[1].content
        [call] = await sandbox.requests("/v1/images/generations")
        assert call["body"]["response_format"] == "b64_json"
        assert not await sandbox.requests("/files/")  # nothing was downloaded


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("data:image/png;base64," + base64.b64encode(b"<html>Access denied</html>").decode(), "expected image"),
        ("data:image/png;base64,%%%not-base64", "not valid base64"),
        ("data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 64).decode(), "decoded"),
    ],
)
async def test_inline_bytes_that_are_no_image_are_refused_and_nothing_is_stored(
    tmp_path: Path, url: str, says: str
) -> None:
    store = MediaStore(open_store(None, tmp_path))
    ingestor = Ingestor(store, Limits(image_bytes=10**6, video_bytes=10**6), tmp_path / "tmp")
    try:
        with pytest.raises(MediaRejected, match=says):
            await ingestor.ingest(url, "image")
        too_big = Ingestor(store, Limits(image_bytes=10, video_bytes=10), tmp_path / "tmp")
        with pytest.raises(MediaRejected, match="larger than 10 bytes"):
            await too_big.ingest("data:image/png;base64," + base64.b64encode(b"\x89PNG" * 10).decode(), "image")
        await too_big.aclose()
    finally:
        await ingestor.aclose()
    assert not any((tmp_path / "media").rglob("*.png"))


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(bytes(range(256)) * 40).decode(),  # clean, as xAI sends it: the fast decoder
        "\n".join(base64.b64encode(bytes(range(256))).decode()[i : i + 76] for i in range(0, 344, 76)),  # wrapped
        "aGVsbG8=",
        "aGVs bG8=",  # a character outside the alphabet, skipped as the standard library skips it
    ],
)
def test_inline_base64_reads_as_the_standard_library_reads_it(text: str) -> None:
    assert b64decode(text) == base64.b64decode(text)


@pytest.mark.parametrize("text", ["aGVsbG8", "a", "aGVsbG8=é"])
def test_inline_base64_the_standard_library_refuses_is_refused_alike(text: str) -> None:
    refusals = []
    for decode in (base64.b64decode, b64decode):
        try:
            decode(text)
        except ValueError as exc:  # binascii.Error is one
            refusals.append((type(exc), str(exc)))
    [standard, ours] = refusals
    assert ours == standard
