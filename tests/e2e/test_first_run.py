"""A new user's first run: the demo organisation, the server on its built-in sandbox, an image and a video by HTTP."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import httpx
import pytest
from PIL import Image

from tests.e2e.process import GatewayProcess, clean_env, run_cli
from tests.support import Tenant, wait_job

pytestmark = pytest.mark.e2e


async def test_demo_then_image_and_video_from_the_mounted_sandbox(tmp_path: Path) -> None:
    env = clean_env(
        GROKGATE_DATABASE_URL=f"sqlite:///{tmp_path / 'first.db'}",
        GROKGATE_POLL_INTERVAL="0.1",
        GROKGATE_SANDBOX_VIDEO_SECONDS="0.3",
    )
    demo = run_cli("demo", "--json", env=env, process=True)
    assert demo.returncode == 0, demo.stderr
    created = json.loads(demo.stdout)
    assert created["created"] is True
    assert created["creditsRemaining"] == 1000
    again = json.loads(run_cli("demo", "--json", env=env).stdout)
    assert again == {"created": False, "orgId": created["orgId"]}

    server = await GatewayProcess(env, tmp_path / "serve.log").start()
    try:
        tenant = Tenant(org_id=created["orgId"], key=created["key"], key_id="")
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
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
            assert job["status"] == "completed"
            mp4 = await client.get(job["output"]["videoUrl"])
            with av.open(io.BytesIO(mp4.content)) as container:
                assert container.streams.video[0].codec_context.name == "h264"
            docs = await client.get("/docs")
            assert docs.status_code == 200
            spec = (await client.get("/openapi.json")).json()
            assert "/api/v1/models/grok-imagine" in spec["paths"]
            assert "/api/v1/jobs/{jobId}" in spec["paths"]
    finally:
        server.stop()
    log = (tmp_path / "serve.log").read_text()
    assert "SANDBOX" in log
    balance = json.loads(run_cli("admin", "balance", "--org", created["orgId"], "--json", env=env).stdout)
    assert balance == {"creditsRemaining": 1000 - 8 - 150, "ledgerSum": 1000 - 8 - 150}
