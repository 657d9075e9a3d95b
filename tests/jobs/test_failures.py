"""Every failure ends the job at once, refunded once, with a documented code: an upstream that answers nonsense,
withheld or billed refusals, results whose URL is gone, a store that cannot write, and retries of all of these under
one `Idempotency-Key`. Through real HTTP against the sandbox; money is checked after every test (conftest)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from grokgate.db.engine import Database
from grokgate.jobs.models import Job
from tests.conftest import Gateway, Sandbox
from tests.jobs.test_generate_errors import assert_error
from tests.support import wait_job

IMAGE = {"model": "text-to-image"}


async def job_of(gateway: Gateway, tenant: Any, job_id: str) -> dict[str, Any]:
    response = await gateway.client.get(f"/api/v1/jobs/{job_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def cost_of(db_url: str, job_id: str) -> int | None:
    db = Database(db_url)
    try:
        async with db.reader() as session:
            return await session.scalar(select(Job.cost_in_usd_ticks).where(Job.id == job_id))
    finally:
        await db.dispose()


@pytest.mark.parametrize("marker", ["notjson", "emptydata", "nourl"])
async def test_an_image_answer_that_is_nonsense_is_502_and_refunded_at_once(gateway: Gateway, marker: str) -> None:
    tenant = await gateway.tenant(credits=8)
    response = await gateway.generate(tenant, {**IMAGE, "prompt": f"x [sandbox:{marker}]"})
    error = assert_error(response, 502, "UPSTREAM_ERROR")
    job = await job_of(gateway, tenant, error["details"]["jobId"])  # at once: no lease has to run out
    assert job["status"] == "failed"
    assert job["error"]["code"] == "UPSTREAM_ERROR"
    assert job["creditsRefunded"] == job["creditsCharged"] == 8
    again = await gateway.generate(tenant, {**IMAGE, "prompt": "fine"})  # the 8 credits are back
    assert again.status_code == 200, again.text


async def test_one_idempotency_key_is_charged_once_however_often_a_failure_is_retried(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    tenant = await gateway.tenant(credits=8)
    headers = {"Idempotency-Key": "retry-me"}
    body = {**IMAGE, "prompt": "x [sandbox:notjson]"}
    answers = [await gateway.generate(tenant, body, headers) for _ in range(3)]
    first = assert_error(answers[0], 502, "UPSTREAM_ERROR")
    for replay in answers[1:]:
        assert replay.status_code == 502
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json() == first
    listed = (await gateway.client.get("/api/v1/jobs", headers=tenant.headers)).json()
    assert [job["id"] for job in listed["jobs"]] == [first["details"]["jobId"]]
    assert len(await sandbox.requests("/v1/images/generations")) == 1


async def test_withheld_images_are_a_refusal_not_a_result(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits=8)
    error = assert_error(
        await gateway.generate(tenant, {**IMAGE, "prompt": "x [sandbox:withheld]"}), 400, "UPSTREAM_REJECTED"
    )
    job = await job_of(gateway, tenant, error["details"]["jobId"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "CONTENT_MODERATED"
    assert job["creditsRefunded"] == 8


@pytest.mark.parametrize("shape", ["1", "2"])
async def test_a_billed_refusal_keeps_xais_cost_for_the_margin(gateway: Gateway, shape: str) -> None:
    """Both of xAI's error shapes; the refusal is refunded to the customer but its cost to us is recorded."""
    tenant = await gateway.tenant(credits=8)
    response = await gateway.generate(tenant, {**IMAGE, "prompt": f"x [sandbox:moderatedcost={shape}]"})
    error = assert_error(response, 400, "UPSTREAM_REJECTED")
    assert error["error"], error
    job_id = error["details"]["jobId"]
    assert (await job_of(gateway, tenant, job_id))["creditsRefunded"] == 8
    cost = await cost_of(gateway.db_url, job_id)
    assert cost is not None
    assert cost > 0


async def test_an_image_whose_url_is_gone_fails_at_once_without_retrying(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=8)
    error = assert_error(
        await gateway.generate(tenant, {**IMAGE, "prompt": "x [sandbox:deadurl]"}), 502, "UPSTREAM_ERROR"
    )
    job = await job_of(gateway, tenant, error["details"]["jobId"])
    assert job["error"]["code"] == "RESULT_GONE"
    assert len(await sandbox.requests("/files/")) == 1  # a 404 does not heal by asking again


async def test_a_store_that_cannot_write_is_503_and_refunded(gateway: Gateway, tmp_path: Path) -> None:
    tenant = await gateway.tenant(credits=8)
    media = tmp_path / "data" / "media"
    shutil.rmtree(media)
    media.write_text("a file where the media directory should be")  # every write below it now fails
    response = await gateway.generate(tenant, {**IMAGE, "prompt": "x"})
    error = assert_error(response, 503, "STORAGE_UNAVAILABLE")
    assert response.headers["Retry-After"]
    job = await job_of(gateway, tenant, error["details"]["jobId"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "STORAGE_UNAVAILABLE"
    assert job["creditsRefunded"] == 8


async def test_a_video_submit_answered_with_nonsense_is_502_and_refunded(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits=150)
    error = assert_error(
        await gateway.generate(tenant, {"prompt": "v [sandbox:notjson]", "duration": 1}), 502, "UPSTREAM_ERROR"
    )
    job = await job_of(gateway, tenant, error["details"]["jobId"])
    assert job["status"] == "failed"
    assert job["creditsRefunded"] == 150


async def test_a_finished_video_without_status_is_delivered(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits=150)
    accepted = await gateway.generate(tenant, {"prompt": "v [sandbox:nostatus] [sandbox:delay=0.1]", "duration": 1})
    assert accepted.status_code == 202, accepted.text
    job = await wait_job(gateway.client, tenant, accepted.json()["jobId"])
    assert job["status"] == "completed", job
    assert (await gateway.client.get(job["output"]["videoUrl"])).status_code == 200


async def test_a_finished_video_whose_url_is_gone_fails_after_a_few_fresh_polls(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    tenant = await gateway.tenant(credits=150)
    accepted = await gateway.generate(tenant, {"prompt": "v [sandbox:deadurl] [sandbox:delay=0.1]", "duration": 1})
    job = await wait_job(gateway.client, tenant, accepted.json()["jobId"], timeout=30)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "RESULT_GONE"
    assert job["creditsRefunded"] == 150
    downloads = await sandbox.requests("/files/")
    assert len(downloads) == 3  # PollerSettings.result_attempts, each after a poll that could give a fresh URL


async def test_a_gone_result_whose_next_attempt_falls_past_the_deadline_ends_for_the_result(
    gateway_factory: Any, sandbox: Sandbox
) -> None:
    # The first poll (at 1 s or later) finds the link dead; the deadline (1.5 s) comes before the second of the
    # three attempts can: the job ends for what happened (the video was made, its link was dead), not as a
    # deadline xAI missed.
    async with gateway_factory(poll_interval=1.0, video_deadline=1.5) as gw:
        tenant = await gw.tenant(credits=150)
        accepted = await gw.generate(tenant, {"prompt": "v [sandbox:deadurl]", "duration": 1})
        job = await wait_job(gw.client, tenant, accepted.json()["jobId"], timeout=30)
    assert (job["status"], job["error"]["code"], job["creditsRefunded"]) == ("failed", "RESULT_GONE", 150)
    assert 1 <= len(await sandbox.requests("/files/")) < 3


async def test_polls_answered_with_nonsense_end_at_the_deadline(gateway_factory: Any) -> None:
    async with gateway_factory(video_deadline=1.5) as gw:
        tenant = await gw.tenant(credits=150)
        accepted = await gw.generate(tenant, {"prompt": "v [sandbox:polljunk]", "duration": 1})
        job = await wait_job(gw.client, tenant, accepted.json()["jobId"], timeout=30)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "DEADLINE_EXCEEDED"
    assert job["creditsRefunded"] == 150


async def test_an_inline_input_image_is_stored_once_and_echoed_as_a_link(gateway: Gateway, sandbox: Sandbox) -> None:
    from tests.jobs.test_generate_flows import png_data_uri

    tenant = await gateway.tenant(credits=150)
    image = png_data_uri()
    accepted = await gateway.generate(tenant, {"model": "image-to-video", "image_url": image, "duration": 1})
    assert accepted.status_code == 202, accepted.text
    echoed = accepted.json()["input"]["image_url"]
    assert echoed.startswith(f"{gateway.server.url}/media/")
    assert (await gateway.client.get(echoed)).status_code == 200
    submitted = await sandbox.requests("/v1/videos/generations")
    assert submitted[-1]["body"]["image"]["url"] == image  # xAI still gets the bytes themselves
    db = Database(gateway.db_url)
    try:
        async with db.reader() as session:
            stored = await session.scalar(select(Job.input).where(Job.id == accepted.json()["jobId"]))
    finally:
        await db.dispose()
    assert stored is not None
    assert stored["image_url"].startswith("media:")
    await wait_job(gateway.client, tenant, accepted.json()["jobId"])


async def test_an_inline_input_that_is_not_an_image_changes_nothing(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=150)
    body = {"model": "image-to-video", "image_url": "data:image/png;base64,aGVsbG8gd29ybGQ="}
    assert_error(await gateway.generate(tenant, body), 400, "INVALID_URL", "image_url")
    assert await sandbox.requests("/v1/") == []
