"""The sandbox's memory is bounded: a real `grokgate sandbox --inspect` process stays flat under a thousand refused
large requests, and its journal, videos and files keep only what their limits allow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from grokgate.upstream.sandbox.app import create_sandbox_app
from grokgate.upstream.sandbox.state import Limits, digest
from tests.e2e.process import GROKGATE, clean_env
from tests.support import LiveServer, free_port

KEY = "limits-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {"Content-Type": "application/json"}
LARGE = 300_000


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    log = (tmp_path / "sandbox.log").open("wb")
    args = [GROKGATE, "sandbox", "--port", str(port), "--api-key", KEY, "--inspect"]
    proc = subprocess.Popen(args, env=clean_env(), stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert proc.poll() is None, (tmp_path / "sandbox.log").read_text()
            try:
                if httpx.get(f"{url}/_sandbox/videos").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        yield url, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def refused_body(index: int) -> dict[str, object]:
    """About 300 kB that the sandbox refuses: half a bad input image, half a content-policy rejection, every
    prompt distinct (so a per-prompt counter would grow too)."""
    if index % 2:
        return {"prompt": f"{index}", "image": {"url": "data:image/png;base64," + "A" * LARGE}}
    return {"prompt": f"{index} [sandbox:reject] " + "x" * LARGE}


async def send_refused(url: str, start: int, count: int) -> None:
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits, timeout=30) as client:
        queue = iter(range(start, start + count))

        async def lane() -> None:
            for index in queue:
                body = json.dumps(refused_body(index)).encode()
                answer = await client.post("/v1/images/generations", content=body, headers=JSON)
                assert answer.status_code == 400, answer.text

        await asyncio.gather(*(lane() for _ in range(8)))


async def test_memory_stays_flat_under_refused_large_requests(sandbox_process: tuple[str, psutil.Process]) -> None:
    url, process = sandbox_process
    await send_refused(url, 0, 50)  # warm up the allocator and the connection pool
    before = process.memory_info().rss
    started = time.monotonic()
    await send_refused(url, 50, 1000)
    elapsed = time.monotonic() - started
    grown = process.memory_info().rss - before
    assert grown < 100 * 1024 * 1024, f"RSS grew by {grown / 2**20:.0f} MB over 1000 refused requests"
    journal = httpx.get(f"{url}/_sandbox/requests", timeout=30).json()["requests"]
    assert len(journal) == 1000  # the default bound: the 50 warm-up calls went first
    assert all(len(str(entry["body"])) < 1000 for entry in journal)
    bodies = [entry["body"] for entry in journal]
    assert {"prompt": digest(str(refused_body(1048)["prompt"]))} in bodies
    assert {"prompt": "1049", "image": {"url": digest("data:image/png;base64," + "A" * LARGE)}} in bodies
    assert elapsed < 60


async def call(client: httpx.AsyncClient, method: str, path: str, body: object = None) -> httpx.Response:
    return await client.request(method, path, json=body, headers=AUTH)


@contextlib.asynccontextmanager
async def bounded(limits: Limits) -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(api_key=KEY, video_seconds=0.0, inspect=True, limits=limits)
    async with LiveServer(app) as server, httpx.AsyncClient(base_url=server.url) as client:
        yield client


async def test_old_videos_are_forgotten_by_count_and_age() -> None:
    async with bounded(Limits(videos=3, video_ttl=0.5)) as client:
        ids = [
            (await call(client, "POST", "/v1/videos/generations", {"prompt": f"v{i}", "duration": 1})).json()[
                "request_id"
            ]
            for i in range(4)
        ]
        assert (await call(client, "GET", f"/v1/videos/{ids[0]}")).status_code == 404
        assert (await call(client, "GET", f"/v1/videos/{ids[3]}")).status_code == 200
        await asyncio.sleep(0.6)
        assert (await call(client, "GET", f"/v1/videos/{ids[3]}")).status_code == 404
        assert (await client.get("/_sandbox/videos")).json()["ready"].keys() <= set(ids[1:])


async def test_files_and_journal_are_capped() -> None:
    async with bounded(Limits(files=2, journal_entries=3, journal_field_bytes=10)) as client:
        made = (await call(client, "POST", "/v1/images/generations", {"prompt": "a long prompt", "n": 3})).json()
        urls = [item["url"] for item in made["data"]]
        assert len((await client.get("/_sandbox/media")).json()["media"]) == 2
        assert (await client.get(urls[0])).status_code == 404  # signed, but no longer kept
        assert (await client.get(urls[2])).status_code == 200
        for i in range(4):
            await call(client, "POST", "/v1/images/generations", {"prompt": f"[sandbox:reject] {i}"})
        journal = (await client.get("/_sandbox/requests")).json()["requests"]
        assert [entry["body"]["prompt"] for entry in journal] == [digest(f"[sandbox:reject] {i}") for i in range(1, 4)]
