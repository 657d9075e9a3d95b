"""The happy paths and every way a job can end without a result, through the real server and the sandbox."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from grokgate.db.engine import Database
from grokgate.jobs.models import Job
from tests.conftest import Gateway, Sandbox
from tests.support import wait_job


def png_data_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def job_row(db_url: str, job_id: str) -> Job:
    db = Database(db_url)
    try:
        async with db.reader() as session:
            job = await session.get(Job, job_id)
            assert job is not None
            return job
    finally:
        await db.dispose()


async def test_text_to_image_answers_at_once_with_a_real_png(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    response = await gateway.generate(tenant, {"prompt": "A dragon", "model": "text-to-image", "aspect_ratio": "16:9"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"jobId", "status", "message", "creditsCharged", "imageUrl", "resultUrls"}
    assert body["status"] == "completed"
    assert body["message"] == "Image generated successfully."
    assert body["creditsCharged"] == 8
    assert body["resultUrls"] == [body["imageUrl"]]
    image = await fetch(body["imageUrl"])
    assert image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (1024, 576)

    [call] = await sandbox.requests("/v1/images/generations")
    assert call["body"] == {
        "model": "grok-imagine-image",
        "prompt": "A dragon",
        "response_format": "url",
        "n": 1,
        "aspect_ratio": "16:9",
    }
    job = (await gateway.client.get(f"/api/v1/jobs/{body['jobId']}", headers=tenant.headers)).json()
    assert job["status"] == "completed"
    assert job["output"] == {"imageUrl": body["imageUrl"], "resultUrls": body["resultUrls"]}
    assert job["workflowSlug"] == "grok-imagine-generate"
    assert "error" not in job
    assert (await job_row(gateway.db_url, body["jobId"])).cost_in_usd_ticks == 200_000_000


async def test_image_with_image_url_is_an_edit(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant()
    source = png_data_uri()
    response = await gateway.generate(
        tenant, {"prompt": "Add a hat", "model": "text-to-image", "image_url": source, "aspect_ratio": "1:1"}
    )
    assert response.status_code == 200, response.text
    assert await sandbox.requests("/v1/images/generations") == []
    [call] = await sandbox.requests("/v1/images/edits")
    assert call["body"]["image"] == {"url": source}
    assert call["body"]["prompt"] == "Add a hat"
    assert "aspect_ratio" not in call["body"]  # xAI derives it from the input image for a single-image edit


async def test_text_to_video_is_accepted_then_polled_to_a_real_mp4(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=150)
    response = await gateway.generate(tenant, {"prompt": "Neon alley", "aspect_ratio": "9:16", "duration": 2})
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"jobId", "status", "message", "creditsCharged", "externalJobId", "input"}
    assert body["status"] == "pending"
    assert body["message"] == "Grok Imagine video job created. Poll /api/v1/jobs/{jobId} for status."
    assert body["creditsCharged"] == 150
    assert body["input"] == {"model": "text-to-video", "prompt": "Neon alley", "aspect_ratio": "9:16", "duration": 2}
    [call] = await sandbox.requests("/v1/videos/generations")
    assert call["body"] == {
        "model": "grok-imagine-video",
        "prompt": "Neon alley",
        "duration": 2,
        "aspect_ratio": "9:16",
    }
    assert body["externalJobId"]

    job = await wait_job(gateway.client, tenant, body["jobId"])
    assert job["status"] == "completed", job
    assert job["output"]["duration"] == 2
    assert job["output"]["resultUrls"] == [job["output"]["videoUrl"]]
    assert job["creditsCharged"] == 150
    assert set(job) == {"id", "status", "output", "creditsCharged", "workflowSlug", "createdAt", "updatedAt"}
    video = await fetch(job["output"]["videoUrl"])
    with av.open(io.BytesIO(video.content)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (480, 848)
        assert stream.codec_context.name == "h264"
        assert container.duration / 1_000_000 == pytest.approx(2, abs=0.2)
    row = await job_row(gateway.db_url, body["jobId"])
    assert row.cost_in_usd_ticks == 2 * 500_000_000
    assert row.external_job_id == body["externalJobId"]


async def test_video_duration_defaults_to_six_and_is_always_sent(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant()
    response = await gateway.generate(tenant, {"prompt": "Default length"})
    assert response.json()["input"]["duration"] == 6
    [call] = await sandbox.requests("/v1/videos/generations")
    assert call["body"]["duration"] == 6


async def test_image_to_video_sends_the_image(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant()
    source = png_data_uri()
    response = await gateway.generate(tenant, {"model": "image-to-video", "image_url": source, "duration": 1})
    assert response.status_code == 202, response.text
    [call] = await sandbox.requests("/v1/videos/generations")
    assert call["body"] == {"model": "grok-imagine-video", "duration": 1, "image": {"url": source}}
    job = await wait_job(gateway.client, tenant, response.json()["jobId"])
    assert job["status"] == "completed"


async def test_status_moves_through_processing(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    response = await gateway.generate(tenant, {"prompt": "slow [sandbox:delay=1]", "duration": 1})
    job_id = response.json()["jobId"]
    seen: set[str] = set()

    async def done() -> bool:
        status = (await gateway.client.get(f"/api/v1/jobs/{job_id}", headers=tenant.headers)).json()["status"]
        seen.add(status)
        return status == "completed"

    from tests.support import wait_for

    await wait_for(done, what="video to complete")
    assert "processing" in seen


@pytest.mark.parametrize(
    ("marker", "code"),
    [
        ("fail", "UPSTREAM_INTERNAL_ERROR"),
        ("expire", "UPSTREAM_EXPIRED"),
        ("moderate", "CONTENT_MODERATED"),
        ("gone", "UPSTREAM_NOT_FOUND"),
    ],
)
async def test_video_that_ends_without_a_result_is_refunded_once(gateway: Gateway, marker: str, code: str) -> None:
    tenant = await gateway.tenant(credits=150)
    response = await gateway.generate(tenant, {"prompt": f"doomed [sandbox:{marker}]", "duration": 1})
    assert response.status_code == 202
    job = await wait_job(gateway.client, tenant, response.json()["jobId"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == code
    assert job["error"]["message"]
    assert job["creditsRefunded"] == 150
    assert job["output"] is None
    # The whole charge is back, exactly once: a new video is affordable again, and only one.
    assert (await gateway.generate(tenant, {"prompt": "again", "duration": 1})).status_code == 202
    assert (await gateway.generate(tenant, {"prompt": "again", "duration": 1})).status_code == 402


async def test_polls_survive_transient_upstream_errors_and_empty_202s(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant()
    response = await gateway.generate(
        tenant, {"prompt": "flaky [sandbox:pollerror=4] [sandbox:empty202]", "duration": 1}
    )
    job = await wait_job(gateway.client, tenant, response.json()["jobId"])
    assert job["status"] == "completed"
    assert len(await sandbox.requests("/v1/videos/")) > 5


async def test_video_past_its_deadline_is_failed_and_refunded(gateway_factory: Any) -> None:
    async with gateway_factory(video_deadline=0.5) as gw:
        tenant = await gw.tenant(credits=150)
        response = await gw.generate(tenant, {"prompt": "forever [sandbox:never]", "duration": 1})
        job = await wait_job(gw.client, tenant, response.json()["jobId"])
        assert job["status"] == "failed"
        assert job["error"]["code"] == "DEADLINE_EXCEEDED"
        assert job["creditsRefunded"] == 150


async def test_fifty_concurrent_images_on_160_credits(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=160)

    async def one(i: int) -> int:
        response = await gateway.generate(tenant, {"prompt": f"race {i}", "model": "text-to-image"})
        return response.status_code

    statuses = await asyncio.gather(*(one(i) for i in range(50)))
    assert statuses.count(200) == 20
    assert statuses.count(402) == 30
    assert len(await sandbox.requests("/v1/images/generations")) == 20
    db = Database(gateway.db_url)
    try:
        from grokgate.billing.ledger import balance_of

        async with db.reader() as session:
            balance = await balance_of(session, tenant.org_id)
        assert balance is not None
        assert balance.credits_remaining == balance.ledger_sum == 0
    finally:
        await db.dispose()


async def test_jobs_of_every_kind_read_back_in_one_shape(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    ids: list[str] = []
    for body in ({"prompt": "i", "model": "text-to-image"}, {"prompt": "v", "duration": 1}):
        response = await gateway.generate(tenant, body)
        ids.append(response.json()["jobId"])
    for job_id in ids:
        job: dict[str, Any] = (await gateway.client.get(f"/api/v1/jobs/{job_id}", headers=tenant.headers)).json()
        assert job["id"] == job_id
        assert job["status"] in ("pending", "processing", "completed")
        assert job["createdAt"].endswith("Z") or "+00:00" in job["createdAt"]
