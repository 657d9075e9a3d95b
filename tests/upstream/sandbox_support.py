"""Helpers for the sandbox catalogue tests: a sandbox on loopback with chosen keys and rates, and readers for the
media it renders (Pillow for PNGs, PyAV for MP4s)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import av
import httpx
from PIL import Image

from grokgate.upstream.sandbox.app import create_sandbox_app
from tests.support import LiveServer

KEYS = ("xai-team-a", "xai-team-b")


def auth(key: str = KEYS[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def sandbox_client(**options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A sandbox taking `KEYS` (unless told otherwise), videos ready at once, journal on; a client for it."""
    values: dict[str, Any] = {"api_keys": list(KEYS), "video_seconds": 0.0, "inspect": True, **options}
    server = LiveServer(create_sandbox_app(**values))
    async with server, httpx.AsyncClient(base_url=server.url, headers=auth(), timeout=30) as client:
        yield client


def png_data_uri(size: tuple[int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def image_sizes(client: httpx.AsyncClient, answer: httpx.Response) -> list[tuple[int, int]]:
    """The pixel size of every image of an image answer, whether it came as `url` or as `b64_json`."""
    sizes = []
    for item in answer.json()["data"]:
        data = base64.b64decode(item["b64_json"]) if "b64_json" in item else (await client.get(item["url"])).content
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            sizes.append(image.size)
    return sizes


@dataclass(frozen=True)
class Mp4:
    width: int
    height: int
    seconds: float
    codec: str


def mp4_facts(data: bytes) -> Mp4:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert container.duration is not None
        return Mp4(stream.width, stream.height, container.duration / 1_000_000, stream.codec_context.name)


async def wait_video(client: httpx.AsyncClient, request_id: str, key: str = KEYS[0]) -> dict[str, Any]:
    """Poll like the gateway does until the video is no longer pending; its final body."""
    for _ in range(200):
        answer = await client.get(f"/v1/videos/{request_id}", headers=auth(key))
        if answer.status_code != 202:
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"video {request_id} never finished")


async def make_video(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Submit at `path`, poll to the end; the final body, with the rendered MP4's facts under `mp4`."""
    started = await client.post(path, json=body)
    assert started.status_code == 200, started.text
    done = await wait_video(client, started.json()["request_id"])
    assert done["status"] == "done", done
    done["mp4"] = mp4_facts((await client.get(done["video"]["url"])).content)
    return done
