"""The sandbox mounted on the customer port (first-run defaults: no XAI_API_KEY) is no side door: a customer can read
no one's requests, fetch no file without a signed link, and get no free image with a made-up key, while the gateway
itself still generates through it. Against a real `grokgate serve` process, over real HTTP."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from grokgate.db.engine import Database
from grokgate.storage.models import ServerSecret
from grokgate.upstream.sandbox.app import create_sandbox_app
from grokgate.upstream.sandbox.secret import ROW_NAME
from grokgate.upstream.sandbox.state import Limits
from tests.e2e.process import GatewayProcess, clean_env
from tests.support import LiveServer, make_tenant, wait_job

pytestmark = pytest.mark.e2e


@pytest.fixture
async def served(db_url: str, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    env = clean_env(
        GROKGATE_DATABASE_URL=db_url,
        GROKGATE_DATA_DIR=str(tmp_path / "data"),
        GROKGATE_POLL_INTERVAL="0.1",
        GROKGATE_SANDBOX_VIDEO_SECONDS="0.3",
        GROKGATE_LOG_LEVEL="warning",
    )
    server = await GatewayProcess(env, tmp_path / "serve.log").start()
    try:
        yield server
    finally:
        server.stop()


async def install_key(db_url: str) -> str:
    """What only the operator can read: the key this install made for its sandbox."""
    db = Database(db_url)
    try:
        async with db.reader() as session:
            row = await session.get(ServerSecret, ROW_NAME)
    finally:
        await db.dispose()
    assert row is not None, "the gateway made no sandbox key"
    return row.value


async def test_inspection_routes_are_not_served(served: GatewayProcess, db_url: str) -> None:
    tenant = await make_tenant(db_url)
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        made = await client.post(
            "/api/v1/models/grok-imagine",
            json={"prompt": "a private prompt", "model": "text-to-image"},
            headers=tenant.headers,
        )
        assert made.status_code == 200, made.text
        for method, path in [
            ("GET", "/sandbox/_sandbox/requests"),
            ("DELETE", "/sandbox/_sandbox/requests"),
            ("GET", "/sandbox/_sandbox/media"),
            ("GET", "/sandbox/_sandbox/videos"),
        ]:
            answer = await client.request(method, path)
            assert answer.status_code == 404, (method, path, answer.text)
            assert b"a private prompt" not in answer.content


async def test_only_the_install_key_generates_and_the_gateway_still_does(served: GatewayProcess, db_url: str) -> None:
    tenant = await make_tenant(db_url)
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        for headers in [
            {},
            {"Authorization": "Bearer anything"},
            {"Authorization": "Bearer sandbox-key"},
            tenant.headers,
        ]:
            for method, path, body in [
                ("POST", "/sandbox/v1/images/generations", {"prompt": "free image"}),
                ("POST", "/sandbox/v1/videos/generations", {"prompt": "free video", "duration": 1}),
                ("GET", "/sandbox/v1/videos/00000000-0000-0000-0000-000000000000", None),
            ]:
                answer = await client.request(method, path, json=body, headers=headers)
                assert answer.status_code == 401, (headers, path, answer.text)
                assert answer.json()["code"] == "unauthenticated"
                assert answer.json()["error"]

        image = await client.post(
            "/api/v1/models/grok-imagine",
            json={"prompt": "A lighthouse", "model": "text-to-image"},
            headers=tenant.headers,
        )
        assert image.status_code == 200, image.text
        png = await client.get(image.json()["imageUrl"])
        assert Image.open(io.BytesIO(png.content)).format == "PNG"
        video = await client.post(
            "/api/v1/models/grok-imagine", json={"prompt": "Waves", "duration": 1}, headers=tenant.headers
        )
        assert video.status_code == 202, video.text
        job = await wait_job(client, tenant, video.json()["jobId"])
        assert job["status"] == "completed", job
        assert (await client.get(job["output"]["videoUrl"])).content[4:8] == b"ftyp"


async def test_files_are_served_only_through_signed_links(served: GatewayProcess, db_url: str) -> None:
    auth = {"Authorization": f"Bearer {await install_key(db_url)}"}
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        made = await client.post("/sandbox/v1/images/generations", json={"prompt": "signed", "n": 2}, headers=auth)
        assert made.status_code == 200, made.text
        first, second = (httpx.URL(item["url"]) for item in made.json()["data"])
        assert first.params["sig"]
        assert first.params["exp"]
        assert (await client.get(str(first))).status_code == 200
        refused = [
            first.copy_with(query=None),
            first.copy_merge_params({"sig": "0" * 40}),
            first.copy_merge_params({"exp": str(int(first.params["exp"]) + 3600)}),
            second.copy_with(query=first.query),  # one file's signature does not open another
        ]
        for url in refused:
            answer = await client.get(str(url))
            assert answer.status_code == 403, (url, answer.text)
            assert answer.json()["code"] == "permission_denied"
            assert not answer.content.startswith(b"\x89PNG")


async def test_file_links_expire() -> None:
    app = create_sandbox_app(api_key="k", inspect=True, limits=Limits(file_ttl=1))
    async with LiveServer(app) as server, httpx.AsyncClient(base_url=server.url) as client:
        made = await client.post(
            "/v1/images/generations", json={"prompt": "soon gone"}, headers={"Authorization": "Bearer k"}
        )
        url = made.json()["data"][0]["url"]
        assert (await client.get(url)).status_code == 200
        await asyncio.sleep(2.1)
        assert (await client.get(url)).status_code == 403
        assert (await client.get("/_sandbox/media")).json()["media"] == {}
