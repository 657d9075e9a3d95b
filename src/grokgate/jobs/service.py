"""The life of a job, from the charge to its end: the one place that moves a job between states.

A request never holds a database connection while xAI works. It charges and records the job in one short
transaction, talks to xAI with no transaction open, and records the outcome in another; a job left in between by a
crash carries a lease that runs out, and the poller then finishes it (see `jobs/poller.py`). Every way a job ends
goes through `finish_in`, which also refunds and queues the webhook, in the same transaction.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.api.metrics import Metrics
from grokgate.billing import ledger
from grokgate.billing.pricing import price_of, upstream_list_cost
from grokgate.config import Settings
from grokgate.db.base import new_id, utcnow
from grokgate.db.engine import Database
from grokgate.db.leases import claim
from grokgate.errors import ApiError, job_not_found
from grokgate.jobs import states
from grokgate.jobs.models import Job
from grokgate.jobs.spec import GenerationSpec
from grokgate.jobs.views import job_json
from grokgate.orgs.service import Caller
from grokgate.storage.ingest import Ingestor, MediaRejected, MediaUnavailable, StoredMedia
from grokgate.storage.links import MediaLinks
from grokgate.storage.models import Media
from grokgate.upstream.base import ImageRequest, Upstream, UpstreamError, UpstreamRejected, VideoRequest
from grokgate.webhooks import outbox

log = structlog.get_logger(__name__)


def process_identity() -> str:
    """A lease owner name unique to this process (and to this start of it)."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id('run')[4:12]}"


@dataclass(frozen=True)
class Finishing:
    """What ending a job needs besides the database: how to link its media, and how long media is kept."""

    links: MediaLinks
    retention: timedelta
    metrics: Metrics | None = None


@dataclass
class JobService:
    db: Database
    upstream: Upstream
    settings: Settings
    owner: str
    ingestor: Ingestor
    finishing: Finishing

    async def start(
        self,
        caller: Caller,
        spec: GenerationSpec,
        *,
        webhook_url: str | None = None,
        workflow: str = "grok-imagine",
    ) -> Job:
        """Charge, then run an image to its end or hand a video to xAI. Raises the API's errors; refunds on them."""
        job = await self._open(caller, spec, webhook_url=webhook_url, workflow=workflow)
        if spec.kind == "image":
            return await self._run_image(job, spec)
        return await self._submit_video(job, spec)

    async def _open(self, caller: Caller, spec: GenerationSpec, *, webhook_url: str | None, workflow: str) -> Job:
        """Charge the caller and record the job, leased to this process, in one transaction."""
        now = utcnow()
        price = price_of(spec.model, self.settings.prices)
        lifetime = self.settings.video_deadline if spec.kind == "video" else self.settings.request_lease
        job = Job(
            id=new_id("job"),
            org_id=caller.org_id,
            kind=spec.kind,
            model=spec.model,
            workflow=workflow,
            webhook_url=webhook_url,
            request_id=structlog.contextvars.get_contextvars().get("request_id"),
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
        plan = self.settings.plans.get(caller.plan) or self.settings.plans["default"]
        async with self.db.transaction() as session:
            # The charge's UPDATE locks the organisation's row: concurrent requests of one organisation queue here,
            # so the count of active jobs below cannot be raced past the plan's limit.
            await ledger.charge(session, caller.org_id, job.id, price)
            active = await session.scalar(
                select(func.count()).where(Job.org_id == caller.org_id, Job.status.in_(states.ACTIVE))
            )
            if (active or 0) >= plan.concurrent:
                raise ApiError(
                    429,
                    "RATE_LIMIT_EXCEEDED",
                    f"Too many jobs in flight: {plan.concurrent} at once on this plan",
                    {"retryAfter": 5, "limits": {"type": "concurrent", "limit": plan.concurrent, "used": active}},
                    headers={"Retry-After": "5"},
                )
            session.add(job)
        if self.finishing.metrics is not None:
            self.finishing.metrics.credits.labels("charge").inc(price)
        structlog.contextvars.bind_contextvars(job_id=job.id)
        log.info("job.created", kind=spec.kind, model=spec.model, credits=price)
        return job

    async def _store_image(self, job: Job, urls: list[str]) -> list[StoredMedia]:
        """Copy every image into storage before answering; a few quick retries, then the job fails (refunded)."""
        stored: list[StoredMedia] = []
        for url in urls:
            for attempt in range(self.settings.upstream_retries):
                try:
                    stored.extend(await self.ingestor.ingest(url, "image"))
                    break
                except MediaUnavailable as exc:
                    if attempt + 1 == self.settings.upstream_retries:
                        await self.finish(job.id, states.Fail("RESULT_UNAVAILABLE", str(exc)), owner=self.owner)
                        raise ApiError(502, "UPSTREAM_ERROR", f"xAI's result could not be fetched: {exc}") from exc
                    await asyncio.sleep(self.settings.upstream_backoff * (2**attempt))
                except MediaRejected as exc:
                    await self.finish(job.id, states.Fail("RESULT_INVALID", str(exc)), owner=self.owner)
                    raise ApiError(502, "UPSTREAM_ERROR", f"xAI's result is unusable: {exc}") from exc
        return stored

    async def _fail_on_upstream(self, job: Job, exc: Exception) -> ApiError:
        if isinstance(exc, UpstreamRejected):
            await self.finish(job.id, states.Fail("UPSTREAM_REJECTED", exc.message), owner=self.owner)
            return ApiError(400, "UPSTREAM_REJECTED", exc.message, {"upstreamCode": exc.code, "jobId": job.id})
        await self.finish(job.id, states.Fail("UPSTREAM_ERROR", str(exc)), owner=self.owner)
        return ApiError(502, "UPSTREAM_ERROR", f"xAI failed: {exc}", {"jobId": job.id})

    async def _ended_elsewhere(self, job_id: str) -> ApiError:
        """The job ended while we waited on xAI (cancelled, or its lease ran out): say how."""
        async with self.db.reader() as session:
            status = await session.scalar(select(Job.status).where(Job.id == job_id))
        if status == "cancelled":
            return ApiError(409, "JOB_CANCELLED", "The job was cancelled while xAI worked on it", {"jobId": job_id})
        return ApiError(502, "UPSTREAM_ERROR", "xAI answered after the request's lease ran out", {"jobId": job_id})

    async def _run_image(self, job: Job, spec: GenerationSpec) -> Job:
        assert spec.prompt is not None
        try:
            result = await self.upstream.generate_image(
                ImageRequest(prompt=spec.prompt, aspect_ratio=spec.aspect_ratio, image_url=spec.image_url)
            )
        except (UpstreamRejected, UpstreamError) as exc:
            raise await self._fail_on_upstream(job, exc) from exc
        media = await self._store_image(job, result.urls)
        async with self.db.transaction() as session:
            finished = await finish_in(
                session,
                job.id,
                states.Complete(tuple(media), cost_in_usd_ticks=result.cost_in_usd_ticks),
                owner=self.owner,
                finishing=self.finishing,
            )
        if finished is None:
            raise await self._ended_elsewhere(job.id)
        return finished

    async def _submit_video(self, job: Job, spec: GenerationSpec) -> Job:
        assert spec.duration is not None
        try:
            request_id = await self.upstream.submit_video(
                VideoRequest(
                    prompt=spec.prompt, duration=spec.duration, aspect_ratio=spec.aspect_ratio, image_url=spec.image_url
                )
            )
        except (UpstreamRejected, UpstreamError) as exc:
            raise await self._fail_on_upstream(job, exc) from exc
        now = utcnow()
        async with self.db.transaction() as session:
            stored = (
                await session.scalars(
                    update(Job)
                    .where(Job.id == job.id, Job.status.in_(states.ACTIVE), Job.lease_owner == self.owner)
                    .values(
                        external_job_id=request_id,
                        lease_owner=None,
                        lease_expires_at=None,
                        next_poll_at=now + timedelta(seconds=self.settings.poll_interval),
                        updated_at=now,
                    )
                    .returning(Job)
                    .execution_options(synchronize_session=False)
                )
            ).one_or_none()
        if stored is None:
            raise await self._ended_elsewhere(job.id)
        log.info("job.submitted", external_job_id=request_id)
        return stored

    async def get(self, caller: Caller, job_id: str) -> Job:
        async with self.db.reader() as session:
            job = await session.get(Job, job_id)
        if job is None or job.org_id != caller.org_id:
            raise job_not_found(job_id)
        return job

    async def list(self, caller: Caller, *, limit: int, offset: int, status: str | None) -> tuple[list[Job], int]:
        conditions = [Job.org_id == caller.org_id]
        if status is not None:
            conditions.append(Job.status == status)
        async with self.db.reader() as session:
            total = await session.scalar(select(func.count()).select_from(Job).where(*conditions))
            jobs = await session.scalars(
                select(Job)
                .where(*conditions)
                .order_by(Job.created_at.desc(), Job.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return list(jobs.all()), int(total or 0)

    async def cancel(self, caller: Caller, job_id: str) -> Job:
        job = await self.get(caller, job_id)
        if job.status not in states.ACTIVE:
            raise ApiError(
                409,
                "JOB_NOT_CANCELLABLE",
                f"Job {job_id} is {job.status} and can no longer be cancelled",
                {"jobId": job_id, "status": job.status},
            )
        started = job.external_job_id is not None
        cost = upstream_list_cost(job.kind, job.input.get("duration")) if started else None
        async with self.db.transaction() as session:
            cancelled = await finish_in(
                session, job_id, states.Cancel(started, cost), owner=None, finishing=self.finishing
            )
        if cancelled is None:  # it ended between our read and our write
            job = await self.get(caller, job_id)
            raise ApiError(
                409,
                "JOB_NOT_CANCELLABLE",
                f"Job {job_id} is {job.status} and can no longer be cancelled",
                {"jobId": job_id, "status": job.status},
            )
        return cancelled

    async def wait(self, caller: Caller, job_id: str, seconds: float) -> Job:
        """The job once it has ended, or as it stands when `seconds` run out (`Prefer: wait`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        step = max(0.02, min(0.25, self.settings.poll_interval / 2))
        while True:
            job = await self.get(caller, job_id)
            if job.status in states.TERMINAL or loop.time() >= deadline:
                return job
            await asyncio.sleep(min(step, max(0.0, deadline - loop.time())))

    async def finish(self, job_id: str, decision: states.Ending, *, owner: str | None) -> Job | None:
        async with self.db.transaction() as session:
            return await finish_in(session, job_id, decision, owner=owner, finishing=self.finishing)


async def finish_in(
    session: AsyncSession, job_id: str, decision: states.Ending, *, owner: str | None, finishing: Finishing
) -> Job | None:
    """The single exit from `pending`/`processing`: the new state, the stored media or the refund, and the
    webhook, in one transaction. None when the job had already ended or (with `owner`) another process owns it."""
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
    media_rows: list[Media] = []
    if isinstance(decision, states.Complete):
        ids: dict[str, list[str]] = {}
        for item in decision.media:
            row = Media(
                id=new_id("med"),
                job_id=job_id,
                org_id="",  # set below, once the job's organisation is known
                role=item.role,
                key=item.key,
                content_type=item.content_type,
                size=item.size,
                sha256=item.sha256,
                width=item.width,
                height=item.height,
                duration=item.duration,
                created_at=now,
                expires_at=now + finishing.retention,
            )
            media_rows.append(row)
            ids.setdefault(item.role, []).append(row.id)
        values |= {"status": "completed", "output": states.stored_output(ids, decision.duration)}
    else:
        values |= {
            "status": "cancelled" if isinstance(decision, states.Cancel) else "failed",
            "error_code": decision.code,
            "error_message": decision.message,
            "credits_refunded": Job.credits_charged,
        }
    job = (
        await session.scalars(
            update(Job).where(*conditions).values(**values).returning(Job).execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if job is None:
        return None
    for row in media_rows:
        row.org_id = job.org_id
        session.add(row)
    if not isinstance(decision, states.Complete):
        await ledger.refund(session, job.org_id, job_id, job.credits_charged, note=decision.code)
    if job.webhook_url:
        outbox.enqueue(
            session,
            org_id=job.org_id,
            job_id=job.id,
            url=job.webhook_url,
            event=f"job.{job.status}",
            data=job_json(job, finishing.links),
        )
    if finishing.metrics is not None:
        finishing.metrics.jobs_finished.labels(job.status).inc()
        if job.credits_refunded:
            finishing.metrics.credits.labels("refund").inc(job.credits_refunded)
    log.info(
        "job.finished",
        job_id=job_id,
        status=job.status,
        error_code=job.error_code,
        refunded=job.credits_refunded,
    )
    return job


async def claim_due(
    session: AsyncSession, *, owner: str, lease_seconds: float, limit: int, is_postgres: bool
) -> Sequence[Job]:
    """Lease active jobs that need attention now (see `db/leases.py` for how leases work).

    Due are videos with an xAI request id whose next poll time has come, and any job whose lease ran out with
    nobody holding it any more: its process died mid-request or mid-poll.
    """
    now = utcnow()
    due = or_(
        and_(Job.external_job_id.is_not(None), Job.next_poll_at <= now),
        and_(Job.lease_expires_at.is_not(None), Job.lease_expires_at < now),
    )
    return await claim(
        session,
        Job,
        due=[Job.status.in_(states.ACTIVE), due],
        order_by=Job.next_poll_at,
        owner=owner,
        lease_seconds=lease_seconds,
        limit=limit,
        is_postgres=is_postgres,
        keep={"updated_at": Job.updated_at},  # a lease is bookkeeping, not news for the customer
    )


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
