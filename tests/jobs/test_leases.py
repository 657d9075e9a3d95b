"""Leases that cover the work: renewed while a job is worked on, so a download that outlasts the lease is not done
again by another poller; and start-up refuses settings under which a lease could not cover its work."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from grokgate.config import Settings
from grokgate.db.engine import Database
from grokgate.db.leases import LeaseKeeper
from grokgate.jobs.models import Job
from grokgate.jobs.poller import Poller, PollerSettings
from grokgate.jobs.repository import Finishing
from grokgate.jobs.service import JobService
from grokgate.jobs.spec import GenerationSpec
from grokgate.orgs.service import Caller
from grokgate.storage.ingest import Ingestor, Limits
from grokgate.storage.links import MediaLinks
from grokgate.storage.store import MediaStore, open_store
from grokgate.upstream.xai import XaiUpstream
from tests.conftest import SANDBOX_KEY, Sandbox, gateway_settings
from tests.support import make_tenant, wait_for

LEASE = 1.0


async def run_poller(db: Database, sandbox: Sandbox, tmp_path: Path, name: str, *, renew: bool, stop: asyncio.Event):
    upstream = XaiUpstream(f"{sandbox.url}/v1", SANDBOX_KEY, timeout=10, backoff=0.01)
    ingestor = Ingestor(MediaStore(open_store(None, tmp_path / name)), Limits(10**7, 10**8), tmp_path / name / "tmp")
    finishing = Finishing(MediaLinks("secret", "http://gateway.test", 3600), timedelta(days=1))
    keeper = LeaseKeeper(db, Job, name, LEASE)
    poller = Poller(
        db,
        upstream,
        PollerSettings(interval=0.05, lease=LEASE),
        name,
        ingestor=ingestor,
        finishing=finishing,
        leases=keeper,
    )
    try:
        await asyncio.gather(poller.run(stop), *([keeper.run(stop)] if renew else []))
    finally:
        await ingestor.aclose()
        await upstream.aclose()


@pytest.mark.parametrize("renew", [True, False])
async def test_a_download_longer_than_the_lease_is_done_once(
    db_url: str, db: Database, sandbox: Sandbox, tmp_path: Path, renew: bool
) -> None:
    tenant = await make_tenant(db_url, credits=150)
    upstream = XaiUpstream(f"{sandbox.url}/v1", SANDBOX_KEY, timeout=10, backoff=0.01)
    ingestor = Ingestor(MediaStore(open_store(None, tmp_path)), Limits(10**7, 10**8), tmp_path / "tmp")
    finishing = Finishing(MediaLinks("secret", "http://gateway.test", 3600), timedelta(days=1))
    service = JobService(
        db=db,
        upstream=upstream,
        settings=gateway_settings(db_url, sandbox.url),
        owner="submitter",
        ingestor=ingestor,
        finishing=finishing,
    )
    spec = GenerationSpec(
        kind="video", model="text-to-video", prompt="slow [sandbox:delay=0.1] [sandbox:slowmedia=2.5]",
        image_url=None, aspect_ratio=None, duration=1, xai_model="grok-imagine-video", price=150,
    )  # fmt: skip
    job = await service.start(Caller(org_id=tenant.org_id, key_id=tenant.key_id), spec)
    await ingestor.aclose()
    await upstream.aclose()

    stop = asyncio.Event()
    first = asyncio.create_task(run_poller(db, sandbox, tmp_path, "first", renew=renew, stop=stop))
    await wait_for(lambda: sandbox.requests("/files/"), what="the first poller to start downloading")
    second = asyncio.create_task(run_poller(db, sandbox, tmp_path, "second", renew=renew, stop=stop))

    async def ended() -> bool:
        async with db.reader() as session:
            row = await session.get(Job, job.id)
        return row is not None and row.status == "completed"

    try:
        await wait_for(ended, timeout=30, what="the video to be stored")
        await asyncio.sleep(LEASE)  # room for a second download to start, if a lease had been lost
    finally:
        stop.set()
        await asyncio.gather(first, second)
    downloads = len(await sandbox.requests("/files/"))
    if renew:
        assert downloads == 1, "the renewed lease kept the second poller away"
    else:
        assert downloads >= 2, "without renewal another claim takes the job over (what renewal prevents)"


def test_start_up_refuses_a_request_lease_shorter_than_the_image_path() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(request_lease=100, upstream_timeout=120, upstream_retries=3)
    message = str(refused.value)
    assert "GROKGATE_REQUEST_LEASE (100 s)" in message
    assert "GROKGATE_UPSTREAM_TIMEOUT (120 s)" in message
    assert Settings(request_lease=900, upstream_timeout=120).worst_image_seconds <= 900
    with pytest.raises(ValidationError, match="GROKGATE_JOB_LEASE"):
        Settings(job_lease=0.5)
    with pytest.raises(ValidationError, match="GROKGATE_VIDEO_DEADLINE"):
        Settings(video_deadline=5, poll_interval=5)
