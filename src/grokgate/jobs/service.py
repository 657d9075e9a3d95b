"""The life of a job, from the charge to its end: the one place that moves a job between states.

A request never holds a database connection while xAI works. It charges and records the job in one short
transaction, talks to xAI with no transaction open, and records the outcome in another; a job left in between by a
crash carries a lease that runs out, and the poller then finishes it (see `jobs/poller.py`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.billing import ledger
from grokgate.billing.pricing import price_of
from grokgate.config import Settings
from grokgate.db.base import new_id, utcnow
from grokgate.db.engine import Database
from grokgate.errors import ApiError, job_not_found
from grokgate.jobs import states
from grokgate.jobs.models import Job
from grokgate.jobs.schemas import JobError, JobView
from grokgate.jobs.spec import GenerationSpec
from grokgate.orgs.service import Caller
from grokgate.upstream.base import ImageRequest, Upstream, UpstreamError, UpstreamRejected, VideoRequest

log = structlog.get_logger(__name__)

IMAGE_MESSAGE = "Image generated successfully."
VIDEO_MESSAGE = "Grok Imagine video job created. Poll /api/v1/jobs/{jobId} for status."


def process_identity() -> str:
    """A lease owner name unique to this process (and to this start of it)."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id('run')[4:12]}"


def present(job: Job) -> JobView:
    view = JobView(
        id=job.id,
        status=job.status,
        output=job.output,
        creditsCharged=job.credits_charged,
        workflowSlug="grok-imagine-generate",
        createdAt=job.created_at,
        updatedAt=job.updated_at,
    )
    if job.status == "failed":
        view.error = JobError(code=job.error_code or "FAILED", message=job.error_message or "")
        view.creditsRefunded = job.credits_refunded
    return view


@dataclass
class JobService:
    db: Database
    upstream: Upstream
    settings: Settings
    owner: str

    async def _open(self, caller: Caller, spec: GenerationSpec) -> Job:
        """Charge the caller and record the job, leased to this process, in one transaction."""
        now = utcnow()
        price = price_of(spec.model, self.settings.prices)
        lifetime = self.settings.video_deadline if spec.kind == "video" else self.settings.request_lease
        job = Job(
            id=new_id("job"),
            org_id=caller.org_id,
            kind=spec.kind,
            model=spec.model,
            status="pending" if spec.kind == "video" else "processing",
            input=spec.echo(),
            credits_charged=price,
            credits_refunded=0,
            lease_owner=self.owner,
            lease_expires_at=now + timedelta(seconds=self.settings.request_lease),
            deadline_at=now + timedelta(seconds=lifetime),
            created_at=now,
            updated_at=now,
        )
        async with self.db.transaction() as session:
            await ledger.charge(session, caller.org_id, job.id, price)
            session.add(job)
        structlog.contextvars.bind_contextvars(job_id=job.id)
        log.info("job.created", kind=spec.kind, model=spec.model, credits=price)
        return job

    async def _fail_on_upstream(self, job: Job, exc: Exception) -> ApiError:
        if isinstance(exc, UpstreamRejected):
            await self.finish(job.id, states.Fail("UPSTREAM_REJECTED", exc.message), owner=self.owner)
            return ApiError(400, "UPSTREAM_REJECTED", exc.message, {"upstreamCode": exc.code, "jobId": job.id})
        await self.finish(job.id, states.Fail("UPSTREAM_ERROR", str(exc)), owner=self.owner)
        return ApiError(502, "UPSTREAM_ERROR", f"xAI failed: {exc}", {"jobId": job.id})

    async def generate_image(self, caller: Caller, spec: GenerationSpec) -> dict[str, Any]:
        job = await self._open(caller, spec)
        assert spec.prompt is not None
        try:
            result = await self.upstream.generate_image(
                ImageRequest(prompt=spec.prompt, aspect_ratio=spec.aspect_ratio, image_url=spec.image_url)
            )
        except (UpstreamRejected, UpstreamError) as exc:
            raise await self._fail_on_upstream(job, exc) from exc
        output = states.image_output(result.urls)
        if not await self.finish(job.id, states.Complete(output, result.cost_in_usd_ticks), owner=self.owner):
            raise ApiError(502, "UPSTREAM_ERROR", "xAI answered after the request's lease ran out", {"jobId": job.id})
        return {
            "jobId": job.id,
            "status": "completed",
            "message": IMAGE_MESSAGE,
            "creditsCharged": job.credits_charged,
            "imageUrl": output["imageUrl"],
            "resultUrls": output["resultUrls"],
        }

    async def submit_video(self, caller: Caller, spec: GenerationSpec) -> dict[str, Any]:
        job = await self._open(caller, spec)
        assert spec.duration is not None
        try:
            request_id = await self.upstream.submit_video(
                VideoRequest(
                    prompt=spec.prompt,
                    duration=spec.duration,
                    aspect_ratio=spec.aspect_ratio,
                    image_url=spec.image_url,
                )
            )
        except (UpstreamRejected, UpstreamError) as exc:
            raise await self._fail_on_upstream(job, exc) from exc
        now = utcnow()
        async with self.db.transaction() as session:
            stored = await session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status.in_(states.ACTIVE), Job.lease_owner == self.owner)
                .values(
                    external_job_id=request_id,
                    lease_owner=None,
                    lease_expires_at=None,
                    next_poll_at=now + timedelta(seconds=self.settings.poll_interval),
                    updated_at=now,
                )
                .returning(Job.id)
                .execution_options(synchronize_session=False)
            )
            if stored.scalar_one_or_none() is None:
                raise ApiError(502, "UPSTREAM_ERROR", "xAI confirmed after the request's lease ran out")
        log.info("job.submitted", external_job_id=request_id)
        return {
            "jobId": job.id,
            "status": "pending",
            "message": VIDEO_MESSAGE,
            "creditsCharged": job.credits_charged,
            "externalJobId": request_id,
            "input": job.input,
        }

    async def get(self, caller: Caller, job_id: str) -> JobView:
        async with self.db.reader() as session:
            job = await session.get(Job, job_id)
        if job is None or job.org_id != caller.org_id:
            raise job_not_found(job_id)
        return present(job)

    async def finish(self, job_id: str, decision: states.Complete | states.Fail, *, owner: str | None) -> bool:
        """End an active job. False when it had already ended or (with `owner`) another process owns it now."""
        async with self.db.transaction() as session:
            return await finish_in(session, job_id, decision, owner=owner)


async def finish_in(
    session: AsyncSession, job_id: str, decision: states.Complete | states.Fail, *, owner: str | None
) -> bool:
    """The single exit from `pending`/`processing`, and the refund that goes with a failure, in one transaction."""
    now = utcnow()
    conditions = [Job.id == job_id, Job.status.in_(states.ACTIVE)]
    if owner is not None:
        conditions.append(Job.lease_owner == owner)
    values: dict[str, Any] = {
        "lease_owner": None,
        "lease_expires_at": None,
        "next_poll_at": None,
        "updated_at": now,
        "finished_at": now,
        "cost_in_usd_ticks": decision.cost_in_usd_ticks,
    }
    if isinstance(decision, states.Complete):
        values |= {"status": "completed", "output": decision.output}
    else:
        values |= {
            "status": "failed",
            "error_code": decision.code,
            "error_message": decision.message,
            "credits_refunded": Job.credits_charged,
        }
    row = (
        await session.execute(
            update(Job)
            .where(*conditions)
            .values(**values)
            .returning(Job.org_id, Job.credits_charged)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if row is None:
        return False
    org_id, charged = row
    if isinstance(decision, states.Fail):
        await ledger.refund(session, org_id, job_id, charged, note=decision.code)
    log.info(
        "job.finished",
        job_id=job_id,
        status=values["status"],
        error_code=values.get("error_code"),
        refunded=charged if isinstance(decision, states.Fail) else 0,
    )
    return True


async def claim_due(
    session: AsyncSession, *, owner: str, lease_seconds: float, limit: int, is_postgres: bool
) -> Sequence[Job]:
    """Lease up to `limit` active jobs that need attention now, so no other process touches them meanwhile.

    Due are: videos with an xAI request id whose next poll time has come, and any job whose lease ran out with
    nobody holding it any more (its process died mid-request or mid-poll). Leased jobs are skipped. On PostgreSQL
    the candidate rows are locked with `FOR UPDATE SKIP LOCKED`, so concurrent pollers take disjoint batches; on
    SQLite the writing transaction is exclusive (`BEGIN IMMEDIATE`), which gives the same guarantee.
    """
    now = utcnow()
    free = or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now)
    due = or_(
        and_(Job.external_job_id.is_not(None), Job.next_poll_at <= now),
        and_(Job.lease_expires_at.is_not(None), Job.lease_expires_at < now),
    )
    candidates = select(Job.id).where(Job.status.in_(states.ACTIVE), free, due).order_by(Job.next_poll_at).limit(limit)
    if is_postgres:
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list((await session.scalars(candidates)).all())
    if not ids:
        return []
    claimed = await session.scalars(
        update(Job)
        .where(Job.id.in_(ids), Job.status.in_(states.ACTIVE), free)
        .values(
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            updated_at=Job.updated_at,  # a lease is bookkeeping, not news for the customer
        )
        .returning(Job)
        .execution_options(synchronize_session=False)
    )
    return list(claimed.all())


async def reschedule(session: AsyncSession, job_id: str, wait: states.Wait, *, owner: str, answered: bool) -> bool:
    """Hand a still-running job back with its next poll time; only the lease holder may.

    `answered` says whether xAI answered the poll: it resets or extends the run of failed polls that sets the
    back-off. `updatedAt` moves only when the status does.
    """
    values: dict[str, Any] = {
        "status": wait.status,
        "next_poll_at": wait.next_poll_at,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": case((Job.status == wait.status, Job.updated_at), else_=utcnow()),
        "poll_count": Job.poll_count + 1,
        "poll_failures": 0 if answered else Job.poll_failures + 1,
    }
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(states.ACTIVE), Job.lease_owner == owner)
        .values(**values)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none() is not None
