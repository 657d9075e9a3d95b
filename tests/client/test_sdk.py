"""The SDK, sync and async, against a real gateway and the sandbox: images, videos with progress, cancel, typed
errors, retries honouring Retry-After, and one Idempotency-Key per call surviving a lost answer."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from grokgate.client import (
    AsyncClient,
    AuthenticationFailed,
    Client,
    Conflict,
    InsufficientCredits,
    Job,
    JobFailed,
    NotFound,
    RateLimited,
    WaitTimeout,
)
from tests.client.proxy import CuttingProxy
from tests.conftest import Gateway, Sandbox
from tests.support import counts


def png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def duration_of(path: Path) -> float:
    with av.open(str(path)) as container:
        assert container.duration is not None
        return float(container.duration / av.time_base)


async def test_images_async_and_sync(gateway: Gateway, sandbox: Sandbox, tmp_path: Path) -> None:
    tenant = await gateway.tenant(credits=1000)
    async with AsyncClient(tenant.key, base_url=gateway.server.url) as client:
        result = await client.images.generate("two lighthouses", aspect_ratio="16:9", n=2)
        assert (result.credits_charged, len(result.urls), result.replayed) == (16, 2, False)
        files = await result.save(tmp_path / "light.png")
        assert [f.name for f in files] == ["light-1.png", "light-2.png"]
        for file in files:
            with Image.open(file) as image:
                assert image.format == "PNG"
                assert image.width > image.height
        [named] = await (await client.images.generate("one")).save(tmp_path)  # a directory: named after the job
        assert named.suffix == ".png"
        assert named.stem.startswith("job_")
        assert (await client.account.balance()).credits_remaining == 1000 - 24

    source = tmp_path / "source.png"
    source.write_bytes(png())

    def blocking() -> tuple[Any, ...]:
        with Client(tenant.key, base_url=gateway.server.url) as client:
            edit = client.images.generate("make it blue", image_url=source)
            job = client.jobs.get(edit.job_id)
            page = client.jobs.list(limit=2)
            ledger = client.ledger.list(limit=10)
            return edit, job, page, ledger, client.account.balance()

    # The sync client blocks: it runs in a thread, the gateway in this test's event loop.
    edit, job, page, ledger, balance = await asyncio.to_thread(blocking)
    assert job.status == "completed"
    assert job.result_urls
    assert page.total == 3
    assert page.jobs[0].id == edit.job_id
    assert [e.kind for e in ledger.entries] == ["charge", "charge", "charge", "grant"]
    assert [e.amount for e in ledger.entries] == [-8, -8, -16, 1000]
    assert balance.credits_remaining == 1000 - 32 == sum(e.amount for e in ledger.entries)
    # The local file travelled as a data URI: xAI was handed the very bytes.
    [edit_call] = await sandbox.requests("/v1/images/edits")
    assert edit_call["body"]["image"]


async def test_video_with_progress_over_events_then_download(gateway: Gateway, tmp_path: Path) -> None:
    tenant = await gateway.tenant()
    waiters = gateway.server.app.state.services.waiters
    seen: list[tuple[str, int]] = []
    percents: list[tuple[str, int | None]] = []

    def progress(job: Job) -> None:
        seen.append((job.status, waiters.by_org[tenant.org_id]))
        percents.append((job.status, job.progress))

    async with AsyncClient(tenant.key, base_url=gateway.server.url) as client:
        video = await client.videos.create("a slow dolly [sandbox:delay=0.6]", duration=1)
        assert (video.status, video.job.credits_charged) == ("pending", 150)
        job = await video.wait(timeout=30, on_progress=progress)
        assert job.status == "completed"
        path = await video.download(tmp_path / "out.mp4")
    statuses = [status for status, _ in seen]
    assert statuses[-1] == "completed"
    assert statuses[0] in ("pending", "processing")
    assert all(a != b for a, b in itertools.pairwise(percents))  # each change (status or progress) reported once
    rendering = [percent for status, percent in percents if status == "processing" and percent is not None]
    assert rendering == sorted(rendering)  # xAI's progress percentage, as it rises
    # The updates came over one event stream (held while the job ran; the stream lets go as it sends the end).
    assert len(seen) >= 2
    assert all(held == 1 for _, held in seen[:-1])
    assert duration_of(path) > 0.5


async def test_sync_wait_falls_back_to_polling_when_streams_are_refused(
    gateway_factory: Callable[..., Any], tmp_path: Path
) -> None:
    plans = {"default": {"rpm": 600, "rph": 1000, "rpd": 1000, "concurrent": 10, "waiters": 1}}
    async with gateway_factory(plans=plans) as gw:
        tenant = await gw.tenant()
        blocker = (await gw.generate(tenant, {"prompt": "forever [sandbox:never]", "duration": 1})).json()["jobId"]
        async with gw.client.stream("GET", f"/api/v1/jobs/{blocker}/events", headers=tenant.headers) as held:
            assert held.status_code == 200

            def blocking() -> tuple[list[str], Path]:
                statuses: list[str] = []
                with Client(tenant.key, base_url=gw.server.url) as client:
                    video = client.videos.create("polled [sandbox:delay=0.3]", duration=1)
                    video.wait(timeout=30, poll_interval=0.1, on_progress=lambda job: statuses.append(job.status))
                    return statuses, video.download(tmp_path)

            statuses, path = await asyncio.to_thread(blocking)
        assert statuses[-1] == "completed"
        assert path.suffix == ".mp4"
        assert duration_of(path) > 0.5


async def test_cancel_timeout_and_failed_jobs(gateway: Gateway, tmp_path: Path) -> None:
    tenant = await gateway.tenant(credits=1000)
    async with AsyncClient(tenant.key, base_url=gateway.server.url) as client:
        video = await client.videos.create("never [sandbox:never]", duration=1)
        with pytest.raises(WaitTimeout) as timed_out:
            await video.wait(timeout=0.3)
        assert timed_out.value.job.status in ("pending", "processing")
        cancelled = await video.cancel()
        assert (cancelled.status, cancelled.credits_refunded) == ("cancelled", 150)
        with pytest.raises(Conflict) as again:
            await client.jobs.cancel(video.id)
        assert (again.value.status, again.value.code) == (409, "JOB_NOT_CANCELLABLE")
        failed = await client.videos.create("broken [sandbox:fail]", duration=1)
        assert (await failed.wait(timeout=30)).status == "failed"
        with pytest.raises(JobFailed) as refused:
            await failed.download(tmp_path / "never.mp4")
        assert refused.value.job.credits_refunded == 150
        assert not (tmp_path / "never.mp4").exists()
        assert (await client.account.balance()).credits_remaining == 1000


async def test_typed_errors_402_404_401(gateway: Gateway) -> None:
    poor = await gateway.tenant(credits=3, name="poor")
    other = await gateway.tenant(credits=100, name="other")
    theirs = (await gateway.generate(other, {"prompt": "theirs", "model": "text-to-image"})).json()["jobId"]
    before = await counts(gateway.db_url)
    async with AsyncClient(poor.key, base_url=gateway.server.url) as client:
        with pytest.raises(InsufficientCredits) as poor_call:
            await client.videos.create("too dear", duration=6)
        error = poor_call.value
        assert (error.status, error.code, error.credits_required, error.credits_remaining) == (
            402,
            "INSUFFICIENT_CREDITS",
            150,
            3,
        )
        assert str(error) == "402 INSUFFICIENT_CREDITS: 3 credits left, 150 needed"
        with pytest.raises(NotFound) as hidden:
            await client.jobs.get(theirs)
        assert (hidden.value.code, hidden.value.details) == ("JOB_NOT_FOUND", {"jobId": theirs})
    after = await counts(gateway.db_url)
    # Nothing charged, no job, and no answer kept under the call's key: after a top-up the same call runs.
    assert after == before
    async with AsyncClient("gg_not_a_real_key", base_url=gateway.server.url) as client:
        with pytest.raises(AuthenticationFailed) as denied:
            await client.account.balance()
        assert denied.value.status == 401


@pytest.mark.timeout(60)
async def test_429_is_retried_after_retry_after_with_the_same_key(gateway_factory: Callable[..., Any]) -> None:
    plans = {"default": {"rpm": 600, "rph": 1000, "rpd": 1000, "concurrent": 1}}
    async with gateway_factory(plans=plans) as gw:
        tenant = await gw.tenant(credits=1000)
        async with CuttingProxy(gw.server.port) as proxy:
            # One job in flight fills the plan; it ends in about two seconds, before the 5 s Retry-After is over.
            await gw.generate(tenant, {"prompt": "short [sandbox:delay=2]", "duration": 1})

            def blocking() -> tuple[float, Any]:
                with Client(tenant.key, base_url=proxy.url) as client:
                    started = time.monotonic()
                    result = client.images.generate("after the wait")
                    return time.monotonic() - started, result

            elapsed, result = await asyncio.to_thread(blocking)
        assert elapsed >= 4.9  # Retry-After: 5 was honoured
        assert result.credits_charged == 8
        first, second = proxy.keys
        assert first == second  # the retry carried the call's one key
        assert (await counts(gw.db_url))["jobs"] == 2

        # Asked to wait longer than the client allows, it gives up at once with the hint.
        await gw.generate(tenant, {"prompt": "again [sandbox:never]", "duration": 1})
        async with AsyncClient(tenant.key, base_url=gw.server.url, max_retry_wait=1) as client:
            started = time.monotonic()
            with pytest.raises(RateLimited) as limited:
                await client.images.generate("refused")
            assert time.monotonic() - started < 2
        assert (limited.value.status, limited.value.retry_after) == (429, 5)
        assert limited.value.details["limits"]["type"] == "concurrent"


async def test_a_lost_answer_is_retried_with_its_key_and_charged_once(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=1000)
    async with CuttingProxy(gateway.server.port, cut_answers=1) as proxy:
        async with AsyncClient(tenant.key, base_url=proxy.url) as client:
            result = await client.images.generate("lost in transit")
            assert proxy.cut == 1
            assert result.replayed  # the second attempt got the first one's answer
            assert (await client.account.balance()).credits_remaining == 992
        first, second = proxy.keys
        assert first == second
    assert (await counts(gateway.db_url))["jobs"] == 1
    assert len(await sandbox.requests("/v1/images/")) == 1
