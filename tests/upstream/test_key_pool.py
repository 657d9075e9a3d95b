"""The upstream key pool against a sandbox that enforces xAI's per-key limits: submissions never exceed a key's
pace, keys share the load, a revoked key leaves the rotation without losing a job, polls use the creating key,
queued videos take turns by organisation and survive a restart."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from grokgate.api.app import create_app
from grokgate.db.engine import Database
from grokgate.jobs.models import Job
from grokgate.upstream.models import UpstreamKey
from grokgate.upstream.pace import DatabasePace, RedisPace
from grokgate.upstream.sandbox.app import create_sandbox_app, set_api_keys
from grokgate.upstream.sandbox.state import key_id
from grokgate.upstream.xai import key_id_of
from tests.conftest import gateway_settings
from tests.support import LiveServer, Tenant, make_tenant
from tests.upstream.sandbox_support import png_data_uri

KEY_A = "xai-pool-key-aaaaaaaa"
KEY_B = "xai-pool-key-bbbbbbbb"
VIDEO = {"prompt": "a paced video", "model": "text-to-video", "duration": 1}
IMAGE = {"prompt": "a paced image", "model": "text-to-image"}


class Setup:
    def __init__(self, sandbox: LiveServer, gateway: LiveServer, client: httpx.AsyncClient, db_url: str) -> None:
        self.sandbox = sandbox
        self.gateway = gateway
        self.client = client
        self.db_url = db_url

    async def journal(self, part: str = "") -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as client:
            entries = (await client.get(f"{self.sandbox.url}/_sandbox/requests")).json()["requests"]
        return [entry for entry in entries if part in entry["path"]]

    async def post(self, tenant: Tenant, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        headers = {**tenant.headers, **({"Idempotency-Key": key} if key else {})}
        return await self.client.post("/api/v1/models/grok-imagine", json=body, headers=headers)

    async def jobs(self) -> list[Job]:
        db = Database(self.db_url)
        try:
            async with db.reader() as session:
                return list((await session.scalars(select(Job).order_by(Job.created_at))).all())
        finally:
            await db.dispose()

    async def until_ended(self, count: int, seconds: float = 60) -> list[Job]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            jobs = await self.jobs()
            if len(jobs) == count and all(job.status in ("completed", "failed") for job in jobs):
                return jobs
            await asyncio.sleep(0.1)
        raise AssertionError(f"jobs did not end: {[(job.id, job.status) for job in await self.jobs()]}")


@contextlib.asynccontextmanager
async def pool_setup(
    db_url: str, tmp_path: Path, *, keys: tuple[str, ...], rps: int, sandbox: LiveServer | None = None, **overrides: Any
) -> AsyncIterator[Setup]:
    """A sandbox allowing `rps` image and video submits per second per key, and a gateway pacing itself at it."""
    own_sandbox = sandbox is None
    if sandbox is None:
        sandbox = LiveServer(
            create_sandbox_app(api_keys=keys, video_seconds=0.2, inspect=True, image_rps=rps, video_rps=rps)
        )
        await sandbox.__aenter__()
    try:

        def make_app(url: str) -> Any:
            values: dict[str, Any] = {
                "public_url": url,
                "data_dir": tmp_path / "data",
                "xai_api_key": keys[0],
                "xai_api_keys": keys[1:],
                "xai_image_rps": rps,
                "xai_video_rps": rps,
                "image_queue_wait": 20.0,
                # Bursts of 50 on a loaded machine: renewal must not be what a pacing test measures.
                "job_lease": 30.0,
                **overrides,
            }
            return create_app(gateway_settings(db_url, sandbox.url, **values))

        async with (
            LiveServer(make_app=make_app) as gateway,
            httpx.AsyncClient(base_url=gateway.url, timeout=60) as client,
        ):
            yield Setup(sandbox, gateway, client, db_url)
    finally:
        if own_sandbox:
            await sandbox.__aexit__(None, None, None)


def failures(jobs: list[Job]) -> list[tuple[str | None, str | None]]:
    return [(job.error_code, job.error_message) for job in jobs if job.status != "completed"]


def most_in_one_second(times: list[float]) -> int:
    """The most arrivals inside any window of one second (what xAI's per-second limit counts)."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.timeout(90)
async def test_a_burst_of_videos_reaches_xai_at_the_key_pace(db_url: str, tmp_path: Path) -> None:
    """50 videos at once on one key paced at 10/s (xAI's 1/s, ten times faster): none refused with 429, none
    failed, never more than 10 in any second."""
    async with pool_setup(db_url, tmp_path, keys=(KEY_A,), rps=10) as setup:
        tenant = await make_tenant(db_url, 10_000)
        answers = await asyncio.gather(*(setup.post(tenant, {**VIDEO, "prompt": f"v{i}"}) for i in range(50)))
        assert {r.status_code for r in answers} == {202}, [r.text for r in answers if r.status_code != 202]
        jobs = await setup.until_ended(50)
        assert {job.status for job in jobs} == {"completed"}, failures(jobs)
        submits = await setup.journal("/v1/videos/generations")
        assert len(submits) == 50
        assert not [entry for entry in submits if entry.get("status") == 429]
        assert most_in_one_second([entry["at"] for entry in submits]) <= 10


@pytest.mark.timeout(60)
async def test_queued_videos_take_turns_by_organisation(db_url: str, tmp_path: Path) -> None:
    """One organisation queues 16 videos, another then 4: the second's are sent among the first of the queue,
    not after the first's 16 (and the queue, being rows, is sent by whichever process runs the submitter)."""
    sandbox = LiveServer(create_sandbox_app(api_keys=(KEY_A,), video_seconds=0.2, inspect=True, video_rps=5))
    async with sandbox:
        async with pool_setup(db_url, tmp_path, keys=(KEY_A,), rps=5, sandbox=sandbox, run_poller=False) as first:
            burst, late = await make_tenant(db_url, 10_000, "burst"), await make_tenant(db_url, 1000, "late")
            for tenant, count in ((burst, 16), (late, 4)):
                answers = await asyncio.gather(
                    *(first.post(tenant, {**VIDEO, "prompt": f"{tenant.org_id} {i}"}) for i in range(count))
                )
                assert {r.status_code for r in answers} == {202}
            inline = len(await first.journal("/v1/videos/generations"))
            assert inline <= 2  # the rest were queued: no key had room
        async with pool_setup(db_url, tmp_path, keys=(KEY_A,), rps=5, sandbox=sandbox) as second:
            jobs = await second.until_ended(20, seconds=30)
            assert {job.status for job in jobs} == {"completed"}, failures(jobs)
            submits = await second.journal("/v1/videos/generations")
            queued_order = [entry["body"]["prompt"].split()[0] for entry in submits][inline:]
            assert [i for i, org in enumerate(queued_order) if org == late.org_id][-1] < 10, queued_order


@pytest.mark.timeout(60)
async def test_two_keys_share_the_load_and_polls_use_the_creating_key(db_url: str, tmp_path: Path) -> None:
    async with pool_setup(db_url, tmp_path, keys=(KEY_A, KEY_B), rps=5) as setup:
        tenant = await make_tenant(db_url, 10_000)
        answers = await asyncio.gather(*(setup.post(tenant, {**VIDEO, "prompt": f"v{i}"}) for i in range(20)))
        assert {r.status_code for r in answers} == {202}
        images = await asyncio.gather(*(setup.post(tenant, {**IMAGE, "prompt": f"i{i}"}) for i in range(12)))
        assert {r.status_code for r in images} == {200}
        jobs = await setup.until_ended(32)
        assert {job.status for job in jobs} == {"completed"}, failures(jobs)

        submits = await setup.journal("/v1/videos/generations")
        used = {entry["key"] for entry in submits}
        assert used == {key_id(KEY_A), key_id(KEY_B)}
        for key in used:  # each key within its own pace
            assert most_in_one_second([e["at"] for e in submits if e["key"] == key]) <= 5
        assert not [entry for entry in await setup.journal() if entry.get("status") == 429]
        sandbox_key = {key_id_of(KEY_A): key_id(KEY_A), key_id_of(KEY_B): key_id(KEY_B)}
        polls = [entry for entry in await setup.journal("/v1/videos/") if entry["method"] == "GET"]
        for job in (job for job in jobs if job.kind == "video"):
            assert job.upstream_key_id in sandbox_key
            mine = [entry for entry in polls if entry["path"].endswith(f"/{job.external_job_id}")]
            assert mine
            assert {entry["key"] for entry in mine} == {sandbox_key[job.upstream_key_id]}


@pytest.mark.timeout(60)
async def test_a_revoked_key_leaves_the_rotation_without_losing_a_job(db_url: str, tmp_path: Path) -> None:
    async with pool_setup(db_url, tmp_path, keys=(KEY_A, KEY_B), rps=20, metrics_token="scrape") as setup:
        tenant = await make_tenant(db_url, 10_000)
        set_api_keys(setup.sandbox.app, [KEY_A])  # xAI deleted team B's key
        answers = await asyncio.gather(
            *(setup.post(tenant, {**VIDEO, "prompt": f"v{i}"}) for i in range(8)),
            *(setup.post(tenant, {**IMAGE, "prompt": f"i{i}"}) for i in range(6)),
        )
        assert [r.status_code for r in answers] == [202] * 8 + [200] * 6, [r.text for r in answers]
        jobs = await setup.until_ended(14)
        assert {job.status for job in jobs} == {"completed"}, failures(jobs)
        assert {job.upstream_key_id for job in jobs if job.kind == "video"} == {key_id_of(KEY_A)}

        ready = (await setup.client.get("/readyz")).json()
        assert ready["checks"]["upstream"] == "ok"
        states = {key["id"]: key["status"] for key in ready["upstreamKeys"]}
        assert states == {key_id_of(KEY_A): "active", key_id_of(KEY_B): "refused"}
        scraped = (await setup.client.get("/metrics", headers={"Authorization": "Bearer scrape"})).text
        assert f'grokgate_upstream_key_up{{key="{key_id_of(KEY_B)}",status="refused"}} 1.0' in scraped

        set_api_keys(setup.sandbox.app, [])  # and now team A's: nothing is left to send with
        before = await setup.client.get("/api/v1/organization", headers=tenant.headers)
        refused = await setup.post(tenant, IMAGE)
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "UPSTREAM_UNAVAILABLE"
        assert refused.headers["retry-after"]
        after = await setup.client.get("/api/v1/organization", headers=tenant.headers)
        assert after.json()["creditsRemaining"] == before.json()["creditsRemaining"]
        ready = await setup.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["upstream"].startswith("unavailable")


@pytest.mark.timeout(60)
async def test_images_wait_their_turn_then_answer_busy_refunded(db_url: str, tmp_path: Path) -> None:
    """Images paced at 2/s with a 1.5 s wait: the first few are served in turn, the rest answer 503 with
    Retry-After and get their credits back; xAI never sees more than the pace."""
    async with pool_setup(db_url, tmp_path, keys=(KEY_A,), rps=2, image_queue_wait=1.5) as setup:
        tenant = await make_tenant(db_url, 1000)
        bodies = [{**IMAGE, "prompt": f"i{i}"} for i in range(10)]
        answers = await asyncio.gather(*(setup.post(tenant, body, key=f"burst-{i}") for i, body in enumerate(bodies)))
        codes = sorted(r.status_code for r in answers)
        served = codes.count(200)
        assert 2 <= served <= 5, codes
        assert codes == [200] * served + [503] * (10 - served), [r.text for r in answers]
        busy = [r for r in answers if r.status_code == 503]
        assert {r.json()["code"] for r in busy} == {"UPSTREAM_BUSY"}
        assert all(int(r.headers["retry-after"]) >= 1 for r in busy)
        balance = await setup.client.get("/api/v1/organization", headers=tenant.headers)
        assert balance.json()["creditsRemaining"] == 1000 - 8 * served
        submits = await setup.journal("/v1/images/")
        assert len(submits) == served
        # A busy answer is not kept under its Idempotency-Key: the client's retry, as told, runs and is charged once.
        index = next(i for i, r in enumerate(answers) if r.status_code == 503)
        retried = await setup.post(tenant, bodies[index], key=f"burst-{index}")
        assert retried.status_code == 200, retried.text
        assert "idempotent-replayed" not in retried.headers
        balance = await setup.client.get("/api/v1/organization", headers=tenant.headers)
        assert balance.json()["creditsRemaining"] == 1000 - 8 * (served + 1)
        assert not [entry for entry in submits if entry.get("status") == 429]


@pytest.mark.timeout(60)
async def test_queued_videos_survive_a_restart(db_url: str, tmp_path: Path) -> None:
    """Videos queued for a key's pace are rows: a gateway that stops with them queued hands them to the next."""
    sandbox = LiveServer(create_sandbox_app(api_keys=(KEY_A,), video_seconds=0.2, inspect=True, video_rps=1))
    async with sandbox:
        async with pool_setup(db_url, tmp_path, keys=(KEY_A,), rps=1, sandbox=sandbox, run_poller=False) as first:
            tenant = await make_tenant(db_url, 1000)
            answers = [await first.post(tenant, {**VIDEO, "prompt": f"v{i}"}) for i in range(4)]
            assert {r.status_code for r in answers} == {202}
            queued = [r.json()["jobId"] for r in answers if r.json()["externalJobId"] is None]
            assert len(queued) >= 3
        async with pool_setup(db_url, tmp_path, keys=(KEY_A,), rps=1, sandbox=sandbox) as second:
            jobs = await second.until_ended(4, seconds=30)
            assert {job.status for job in jobs} == {"completed"}, failures(jobs)
            assert not [entry for entry in await second.journal() if entry.get("status") == 429]


@pytest.mark.parametrize("backend", ["database", "redis"])
async def test_pace_spaces_submissions_and_holds_off(db_url: str, backend: str) -> None:
    db = Database(db_url)
    pace: DatabasePace | RedisPace
    if backend == "redis":
        pace = RedisPace("redis://127.0.0.1:6379/0", prefix=f"grokgate:test-pace:{time.time_ns()}")
    else:
        pace = DatabasePace(db)
        async with db.transaction() as session:
            session.add(UpstreamKey(id="k1", name="k1", source="env"))
    try:
        assert await pace.take("k1", "video", 0.5) == 0.0
        wait = await pace.take("k1", "video", 0.5)
        assert 0.3 < wait <= 0.5
        assert await pace.take("k1", "image", 0.5) == 0.0  # kinds are paced apart
        await asyncio.sleep(wait + 0.02)
        assert await pace.take("k1", "video", 0.5) == 0.0
        await pace.hold_off("k1", "image", 2.0)
        assert 1.5 < await pace.take("k1", "image", 0.5) <= 2.0
    finally:
        await pace.aclose()
        await db.dispose()


@pytest.mark.timeout(60)
async def test_a_429_from_one_key_fails_over_to_another(db_url: str, tmp_path: Path) -> None:
    """A gateway not pacing itself (its keys' limits unknown to it) meets xAI's 429s: each request moves to the
    other key or waits for the first to free up; no job fails and nothing is charged twice."""
    sandbox = LiveServer(create_sandbox_app(api_keys=(KEY_A, KEY_B), video_seconds=0.2, inspect=True, video_rps=1))
    async with sandbox, pool_setup(db_url, tmp_path, keys=(KEY_A, KEY_B), rps=0, sandbox=sandbox) as setup:
        tenant = await make_tenant(db_url, 1000)
        answers = await asyncio.gather(*(setup.post(tenant, {**VIDEO, "prompt": f"v{i}"}) for i in range(4)))
        assert {r.status_code for r in answers} == {202}
        jobs = await setup.until_ended(4, seconds=30)
        assert {job.status for job in jobs} == {"completed"}, failures(jobs)
        submits = await setup.journal("/v1/videos/generations")
        refused = [entry for entry in submits if entry.get("status") == 429]
        taken = [entry for entry in submits if entry.get("status") != 429]
        assert refused  # xAI did say no
        assert len(taken) == 4
        assert {entry["key"] for entry in taken} == {key_id(KEY_A), key_id(KEY_B)}


@pytest.mark.timeout(60)
async def test_a_queued_video_is_sent_with_its_input_image_as_given(db_url: str, tmp_path: Path) -> None:
    """A queued video keeps its inline input image as a stored media reference (`Submitter`); when it is sent, xAI
    gets the same bytes back as a data URI."""
    image = png_data_uri((16, 16))
    async with pool_setup(db_url, tmp_path, keys=(KEY_A,), rps=1) as setup:
        tenant = await make_tenant(db_url, 10_000)
        body = {"prompt": "from an image", "model": "image-to-video", "duration": 1, "image_url": image}
        answers = await asyncio.gather(*(setup.post(tenant, body) for _ in range(3)))
        assert {r.status_code for r in answers} == {202}, [r.text for r in answers]
        jobs = await setup.until_ended(3, seconds=30)
        assert {job.status for job in jobs} == {"completed"}, failures(jobs)
        submits = await setup.journal("/v1/videos/generations")
        assert len(submits) == 3
        assert [entry["body"]["image"]["url"] for entry in submits] == [image] * 3
