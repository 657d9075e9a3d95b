"""The poller's leases against the real database: disjoint claims, take-over after a lease runs out, lost submits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from grokgate.db.base import new_id, utcnow
from grokgate.db.engine import Database
from grokgate.jobs.due import claim_due
from grokgate.jobs.models import Job
from grokgate.jobs.poller import Poller, PollerSettings
from grokgate.jobs.render_times import RenderTimes
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


@pytest.fixture
async def upstream(sandbox: Sandbox) -> AsyncIterator[XaiUpstream]:
    client = XaiUpstream(f"{sandbox.url}/v1", SANDBOX_KEY, timeout=10, backoff=0.01)
    yield client
    await client.aclose()


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """What a JobService and a Poller need besides the database and xAI: storage, links, retention."""
    store = MediaStore(open_store(None, tmp_path))
    ingestor = Ingestor(store, Limits(image_bytes=10**7, video_bytes=10**8), tmp_path / "tmp")
    finishing = Finishing(MediaLinks("secret", "http://gateway.test", 3600), timedelta(days=1))
    yield {"ingestor": ingestor, "finishing": finishing}
    await ingestor.aclose()


async def video_done(sandbox: Sandbox, request_id: str) -> bool:
    """Whether the sandbox (as xAI would, to whoever polls it) says the video is finished."""
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {SANDBOX_KEY}"}) as client:
        answer = await client.get(f"{sandbox.url}/v1/videos/{request_id}")
    return answer.status_code == 200 and answer.json().get("status") == "done"


def video_spec(prompt: str = "v") -> GenerationSpec:
    return GenerationSpec(
        kind="video", model="text-to-video", prompt=prompt, image_url=None, aspect_ratio=None, duration=1,
        xai_model="grok-imagine-video", price=150,
    )  # fmt: skip


async def test_concurrent_claims_are_disjoint(
    db_url: str, db: Database, upstream: XaiUpstream, sandbox: Sandbox, parts: dict[str, Any]
) -> None:
    tenant = await make_tenant(db_url, credits=150 * 30)
    service = JobService(
        db=db, upstream=upstream, settings=gateway_settings(db_url, sandbox.url), owner="submitter", **parts
    )
    caller = Caller(org_id=tenant.org_id, key_id=tenant.key_id)
    for i in range(30):
        await service.start(caller, video_spec(f"v{i}"))
    async with db.transaction() as session:
        await session.execute(update(Job).values(next_poll_at=utcnow() - timedelta(seconds=1)))

    async def claim(owner: str) -> set[str]:
        return {job.id for job in await claim_due(db, owner=owner, lease_seconds=60, limit=20)}

    first, second = await asyncio.gather(claim("a"), claim("b"))
    assert not first & second
    assert len(first | second) == 30
    # Leased jobs are not due for anybody else until their lease runs out.
    assert await claim("c") == set()


async def test_a_claim_takes_orphaned_jobs_first_and_never_more_than_asked(
    db_url: str, db: Database, upstream: XaiUpstream, sandbox: Sandbox, parts: dict[str, Any]
) -> None:
    """Due polls and jobs whose lease ran out are found by two statements (each on its own index): together they
    never lease more than the room given, the orphans first; without `orphaned` only the due polls."""
    tenant = await make_tenant(db_url, credits=150 * 6)
    service = JobService(
        db=db, upstream=upstream, settings=gateway_settings(db_url, sandbox.url), owner="submitter", **parts
    )
    caller = Caller(org_id=tenant.org_id, key_id=tenant.key_id)
    ids = [(await service.start(caller, video_spec(f"v{i}"))).id for i in range(6)]
    past = utcnow() - timedelta(seconds=1)
    async with db.transaction() as session:
        await session.execute(update(Job).values(next_poll_at=utcnow() + timedelta(hours=1)))
        await session.execute(update(Job).where(Job.id.in_(ids[:2])).values(lease_owner="dead", lease_expires_at=past))
        await session.execute(update(Job).where(Job.id.in_(ids[2:5])).values(next_poll_at=past))
    due_only = await claim_due(db, owner="a", lease_seconds=60, limit=10, orphaned=False)
    assert {job.id for job in due_only} == set(ids[2:5])
    async with db.transaction() as session:  # let them go again
        await session.execute(update(Job).where(Job.id.in_(ids[2:5])).values(lease_owner=None, lease_expires_at=None))
    first = await claim_due(db, owner="b", lease_seconds=60, limit=3)
    assert len(first) == 3
    assert set(ids[:2]) < {job.id for job in first}
    rest = await claim_due(db, owner="c", lease_seconds=60, limit=10)
    assert {job.id for job in first} | {job.id for job in rest} == set(ids[:5])
    assert not {job.id for job in first} & {job.id for job in rest}
    assert ids[5] not in {job.id for job in first + rest}  # neither due nor orphaned


async def test_two_pollers_finish_every_job_exactly_once(
    db_url: str, db: Database, upstream: XaiUpstream, sandbox: Sandbox, parts: dict[str, Any]
) -> None:
    tenant = await make_tenant(db_url, credits=150 * 40)
    settings = gateway_settings(db_url, sandbox.url)
    service = JobService(db=db, upstream=upstream, settings=settings, owner="submitter", **parts)
    caller = Caller(org_id=tenant.org_id, key_id=tenant.key_id)
    ids = [
        (await service.start(caller, video_spec(f"v{i} {'[sandbox:fail]' if i % 4 == 0 else ''}"))).id
        for i in range(40)
    ]
    stop = asyncio.Event()
    pollers = [
        Poller(db, upstream, PollerSettings(interval=0.05, batch=7), owner=name, **parts) for name in ("p1", "p2")
    ]
    tasks = [asyncio.create_task(poller.run(stop)) for poller in pollers]

    async def all_done() -> bool:
        async with db.reader() as session:
            jobs = [await session.get(Job, job_id) for job_id in ids]
        return all(job is not None and job.status in ("completed", "failed") for job in jobs)

    try:
        await wait_for(all_done, timeout=30, what="both pollers to end every job")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    async with db.reader() as session:
        statuses = [(await session.get(Job, job_id)).status for job_id in ids]  # type: ignore[union-attr]
    assert statuses.count("failed") == 10
    assert statuses.count("completed") == 30
    # The money invariants (one charge each, one refund per failed job) are checked by the db_url fixture.


async def test_a_job_whose_submit_was_lost_is_refunded_after_its_lease(
    db_url: str, db: Database, upstream: XaiUpstream, sandbox: Sandbox, parts: dict[str, Any]
) -> None:
    tenant = await make_tenant(db_url, credits=150)
    service = JobService(
        db=db, upstream=upstream, settings=gateway_settings(db_url, sandbox.url), owner="dead-process", **parts
    )
    job = await service._open(
        Caller(org_id=tenant.org_id, key_id=tenant.key_id),
        video_spec(),
        {},
        webhook_url=None,
        workflow="grok-imagine",
    )
    poller = Poller(db, upstream, PollerSettings(interval=0.05), owner="survivor", **parts)
    assert await poller.round() == 0  # still leased by the (dead) submitter: left alone
    async with db.transaction() as session:
        await session.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert await poller.round() == 1
    async with db.reader() as session:
        row = await session.get(Job, job.id)
    assert row is not None
    assert (row.status, row.error_code, row.credits_refunded) == ("failed", "SUBMIT_INTERRUPTED", 150)
    assert await sandbox.requests("/v1/") == []


async def test_a_poll_whose_poller_died_is_taken_over(
    db_url: str, db: Database, upstream: XaiUpstream, sandbox: Sandbox, parts: dict[str, Any]
) -> None:
    tenant = await make_tenant(db_url, credits=150)
    service = JobService(
        db=db, upstream=upstream, settings=gateway_settings(db_url, sandbox.url), owner="submitter", **parts
    )
    result = await service.start(Caller(org_id=tenant.org_id, key_id=tenant.key_id), video_spec())
    # A poller leases the job and dies before writing anything back.
    async with db.transaction() as session:
        await session.execute(update(Job).values(next_poll_at=utcnow() - timedelta(seconds=1)))
    claimed = await claim_due(db, owner="dead", lease_seconds=0.2, limit=10)
    assert [job.id for job in claimed] == [result.id]
    survivor = Poller(db, upstream, PollerSettings(interval=0.05), owner="survivor", **parts)
    assert await survivor.round() == 0
    # Wait for the two things the take-over needs: the dead poller's lease ends, and xAI has the video.
    lease_end = claimed[0].lease_expires_at
    assert lease_end is not None
    await wait_for(lambda: utcnow() > lease_end, what="the dead poller's lease to end")
    assert result.external_job_id is not None
    await wait_for(lambda: video_done(sandbox, result.external_job_id), what="the sandbox to finish the video")
    assert await survivor.round() == 1
    async with db.reader() as session:
        row = await session.get(Job, result.id)
    assert row is not None
    assert row.status == "completed"


async def test_a_late_writer_without_the_lease_changes_nothing(
    db_url: str, db: Database, parts: dict[str, Any]
) -> None:
    finishing = {"finishing": parts["finishing"]}
    tenant = await make_tenant(db_url, credits=150)
    now = utcnow()
    job_id = new_id("job")
    from grokgate.billing import ledger
    from grokgate.jobs import states
    from grokgate.jobs.repository import finish_in

    async with db.transaction() as session:
        await ledger.charge(session, tenant.org_id, job_id, 150)
        session.add(
            Job(
                id=job_id, org_id=tenant.org_id, kind="video", model="text-to-video", status="processing",
                input={}, credits_charged=150, credits_refunded=0, external_job_id="r", lease_owner="current",
                lease_expires_at=now + timedelta(seconds=60), deadline_at=now + timedelta(hours=1),
            )
        )  # fmt: skip
    async with db.transaction() as session:
        assert not await finish_in(session, job_id, states.Fail("X", "late"), owner="former", **finishing)
    async with db.transaction() as session:
        assert await finish_in(session, job_id, states.Fail("X", "now"), owner="current", **finishing)
    async with db.transaction() as session:
        assert not await finish_in(session, job_id, states.Fail("X", "again"), owner=None, **finishing)


async def test_once_videos_were_seen_finishing_the_poller_asks_less_while_they_cannot_be_ready(
    db_url: str, db: Database, upstream: XaiUpstream, sandbox: Sandbox, parts: dict[str, Any]
) -> None:
    """Twenty 2 s videos polled every 0.05 s teach the poller how long such videos take; the next twenty are first
    asked at about that age (and every 0.05 s from then on): far fewer polls, all completed."""
    tenant = await make_tenant(db_url, credits=150 * 40)
    learned = RenderTimes()  # one per process, as `runtime` shares it
    settings = gateway_settings(db_url, sandbox.url, poll_interval=0.05)
    service = JobService(db=db, upstream=upstream, settings=settings, owner="submitter", render_times=learned, **parts)
    caller = Caller(org_id=tenant.org_id, key_id=tenant.key_id)
    poller = Poller(db, upstream, PollerSettings(interval=0.05), owner="poller", render_times=learned, **parts)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))

    async def polls_of_a_batch(name: str) -> int:
        async with httpx.AsyncClient() as client:
            await client.delete(f"{sandbox.url}/_sandbox/requests")
        ids = [(await service.start(caller, video_spec(f"{name} {i} [sandbox:delay=2]"))).id for i in range(20)]

        async def all_completed() -> bool:
            async with db.reader() as session:
                jobs = [await session.get(Job, job_id) for job_id in ids]
            return all(job is not None and job.status == "completed" for job in jobs)

        await wait_for(all_completed, timeout=30, what=f"the {name} batch to complete")
        return sum(entry["method"] == "GET" for entry in await sandbox.requests("/v1/videos/"))

    try:
        first = await polls_of_a_batch("first")
        second = await polls_of_a_batch("second")
    finally:
        stop.set()
        await task
    assert first >= 20 * 8
    assert second <= 20 * 6
    assert 2 * second < first
