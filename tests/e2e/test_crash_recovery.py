"""SIGKILL the gateway mid-video and mid-request, restart it, and check that every job ends and money is exact."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from grokgate.db.engine import Database
from grokgate.jobs.models import Job
from tests.conftest import Sandbox
from tests.e2e.process import GatewayProcess, gateway_env
from tests.support import make_tenant, wait_for, wait_job

pytestmark = pytest.mark.e2e


@pytest.fixture
def spawn(db_url: str, sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[GatewayProcess] = []

    async def start(**settings: Any) -> GatewayProcess:
        env = gateway_env(
            db_url,
            sandbox.url,
            **{
                "GROKGATE_POLL_INTERVAL": "0.1",
                "GROKGATE_JOB_LEASE": "1",
                "GROKGATE_UPSTREAM_BACKOFF": "0.01",
                **{f"GROKGATE_{key.upper()}": value for key, value in settings.items()},
            },
        )
        process = await GatewayProcess(env, tmp_path / "gateway.log").start()
        started.append(process)
        return process

    yield start  # type: ignore[misc]
    for process in started:
        process.stop()


async def job_status(db_url: str, job_id: str) -> Job | None:
    db = Database(db_url)
    try:
        async with db.reader() as session:
            return await session.get(Job, job_id)
    finally:
        await db.dispose()


async def test_videos_survive_a_sigkill_and_complete_charged_once(
    db_url: str, sandbox: Sandbox, spawn: Callable[..., Any]
) -> None:
    tenant = await make_tenant(db_url, credits=150 * 6)
    first = await spawn()
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
        ids = []
        for i in range(6):
            response = await client.post(
                "/api/v1/models/grok-imagine",
                json={"prompt": f"survivor {i} [sandbox:delay=1.5]", "duration": 1},
                headers=tenant.headers,
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["jobId"])

        # Let the poller get going (and hold some leases) before the crash.
        async def some_polled() -> bool:
            return len(await sandbox.requests("/v1/videos/")) > len(ids) + 3

        await wait_for(some_polled, what="first polls")
    first.kill()
    for job_id in ids:
        row = await job_status(db_url, job_id)
        assert row is not None
        assert row.status in ("pending", "processing")

    second = await spawn()
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as client:
        for job_id in ids:
            job = await wait_job(client, tenant, job_id)
            assert job["status"] == "completed", job
            assert job["creditsCharged"] == 150
    # Submits were never repeated: one xAI request per job.
    assert len(await sandbox.requests("/v1/videos/generations")) == 6


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"prompt": "stuck [sandbox:hang=4]", "duration": 1}, "SUBMIT_INTERRUPTED"),
        ({"prompt": "stuck [sandbox:hang=4]", "model": "text-to-image"}, "REQUEST_INTERRUPTED"),
    ],
)
async def test_a_request_killed_before_xai_answered_is_refunded(
    db_url: str, spawn: Callable[..., Any], body: dict[str, Any], code: str
) -> None:
    tenant = await make_tenant(db_url, credits=150)
    first = await spawn(job_lease="2", upstream_timeout="1.5")
    client = httpx.AsyncClient(base_url=first.url, timeout=30)
    pending = asyncio.create_task(client.post("/api/v1/models/grok-imagine", json=body, headers=tenant.headers))

    async def job_recorded() -> str | None:
        db = Database(db_url)
        try:
            from sqlalchemy import select

            async with db.reader() as session:
                return (await session.scalars(select(Job.id))).first()
        finally:
            await db.dispose()

    job_id = await wait_for(job_recorded, what="the job row")
    first.kill()
    with pytest.raises(httpx.TransportError):
        await pending
    await client.aclose()

    second = await spawn(job_lease="2", upstream_timeout="1.5")
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as client2:
        job = await wait_job(client2, tenant, job_id)
    assert job["status"] == "failed"
    assert job["error"]["code"] == code
    assert job["creditsRefunded"] == job["creditsCharged"]


async def test_a_crash_while_the_result_downloads_is_recovered(
    db_url: str, sandbox: Sandbox, spawn: Callable[..., Any]
) -> None:
    tenant = await make_tenant(db_url, credits=150)
    first = await spawn()
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
        response = await client.post(
            "/api/v1/models/grok-imagine",
            json={"prompt": "heavy [sandbox:delay=0.2] [sandbox:slowmedia=2]", "duration": 1},
            headers=tenant.headers,
        )
        job_id = response.json()["jobId"]

        async def downloading() -> bool:
            return bool(await sandbox.requests("/files/"))

        await wait_for(downloading, what="the result download to start")
    first.kill()
    row = await job_status(db_url, job_id)
    assert row is not None
    assert row.status in ("pending", "processing")

    second = await spawn()
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as client:
        job = await wait_job(client, tenant, job_id)
        assert job["status"] == "completed"
        video = await client.get(job["output"]["videoUrl"])
    assert hashlib.sha256(video.content).hexdigest() in (await sandbox.media_hashes()).values()
    assert len(await sandbox.requests("/v1/videos/generations")) == 1
