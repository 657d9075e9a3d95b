"""The durable video poller: one loop that leases due jobs, asks xAI about them, and records what it heard.

All state lives in the jobs table, so a poller can die at any instruction: its leases run out and any poller
(this process after a restart, or another one) takes the jobs over. Work done twice is harmless because every
write is conditioned on still holding the lease, and a job's end is conditioned on it still being active.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from grokgate.api.metrics import Metrics
from grokgate.background import run_rounds
from grokgate.db.base import utcnow
from grokgate.db.engine import Database
from grokgate.jobs import states
from grokgate.jobs.models import Job
from grokgate.jobs.service import Finishing, claim_due, finish_in, reschedule
from grokgate.storage.ingest import Ingestor, MediaRejected, MediaUnavailable
from grokgate.upstream.base import Upstream, UpstreamError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PollerSettings:
    interval: float
    """Seconds between two polls of one video."""
    batch: int = 200
    """Most jobs leased in one round."""
    concurrency: int = 64
    """Most polls in flight at once."""
    lease: float = 120.0
    """Seconds a leased job stays ours; must outlast one poll with its retries."""

    @property
    def tick(self) -> float:
        """Sleep between rounds when there was nothing more to do: small against the interval, at most 1 s."""
        return max(0.01, min(1.0, self.interval / 2))


class Poller:
    def __init__(
        self,
        db: Database,
        upstream: Upstream,
        settings: PollerSettings,
        owner: str,
        *,
        ingestor: Ingestor,
        finishing: Finishing,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.upstream = upstream
        self.settings = settings
        self.owner = owner
        self.ingestor = ingestor
        self.finishing = finishing
        self.metrics = metrics
        self._slots = asyncio.Semaphore(settings.concurrency)

    async def run(self, stop: asyncio.Event) -> None:
        await run_rounds("poller", self.round, stop=stop, batch=self.settings.batch, tick=self.settings.tick)

    async def round(self) -> int:
        """Lease what is due and handle it; returns how many jobs were handled."""
        async with self.db.transaction() as session:
            jobs = await claim_due(
                session,
                owner=self.owner,
                lease_seconds=self.settings.lease,
                limit=self.settings.batch,
                is_postgres=not self.db.is_sqlite,
            )
        if jobs:
            self._observe_lag(jobs)
            await asyncio.gather(*(self._guarded(job) for job in jobs))
        return len(jobs)

    def _observe_lag(self, jobs: Sequence[Job]) -> None:
        """How long after its due time each poll starts: the first sign of a poller that cannot keep up."""
        if self.metrics is None:
            return
        now = utcnow()
        for job in jobs:
            if job.next_poll_at is not None and job.next_poll_at <= now:
                self.metrics.poll_lag.observe((now - job.next_poll_at).total_seconds())

    async def _guarded(self, job: Job) -> None:
        async with self._slots:
            try:
                with structlog.contextvars.bound_contextvars(job_id=job.id, request_id=job.request_id):
                    await self.handle(job)
            except Exception:
                # The lease runs out and a later round tries again; nothing was half-written.
                log.exception("poller.job_failed", job_id=job.id)

    async def handle(self, job: Job) -> None:
        if job.external_job_id is None or job.kind != "video":
            # Its request died (with its process) before xAI's outcome was recorded: nothing can be delivered.
            await self._apply(job, states.lost_request(job.kind), answered=True)
            return
        try:
            poll = await self.upstream.poll_video(job.external_job_id)
        except UpstreamError as exc:
            log.warning("poller.poll_failed", job_id=job.id, error=str(exc), failures=job.poll_failures + 1)
            delay = states.retry_delay(self.settings.interval, job.poll_failures + 1)
            silence = states.after_silence(now=utcnow(), deadline=job.deadline_at, delay=delay, status=job.status)
            await self._apply(job, silence, answered=False)
            return
        decision = states.after_poll(
            poll,
            now=utcnow(),
            deadline=job.deadline_at,
            interval=self.settings.interval,
            requested_duration=job.input.get("duration"),
        )
        if isinstance(decision, states.Deliver):
            await self._deliver(job, decision)
            return
        await self._apply(job, decision, answered=True)

    async def _deliver(self, job: Job, found: states.Deliver) -> None:
        """Copy the finished video into storage, then complete; a failed download is retried until the deadline."""
        try:
            media = await self.ingestor.ingest(found.url, "video")
        except MediaUnavailable as exc:
            log.warning("poller.result_unavailable", job_id=job.id, error=str(exc), failures=job.poll_failures + 1)
            delay = states.retry_delay(self.settings.interval, job.poll_failures + 1)
            silence = states.after_silence(now=utcnow(), deadline=job.deadline_at, delay=delay, status=job.status)
            if isinstance(silence, states.Fail):
                silence = states.Fail("RESULT_UNAVAILABLE", f"xAI's video could not be fetched: {exc}")
            await self._apply(job, silence, answered=False)
            return
        except MediaRejected as exc:
            await self._apply(job, states.Fail("RESULT_INVALID", f"xAI's video is unusable: {exc}"), answered=True)
            return
        await self._apply(job, states.Complete(tuple(media), found.duration, found.cost_in_usd_ticks), answered=True)

    async def _apply(self, job: Job, decision: states.Ending | states.Wait, *, answered: bool) -> None:
        async with self.db.transaction() as session:
            if isinstance(decision, states.Wait):
                kept = await reschedule(session, job.id, decision, owner=self.owner, answered=answered)
            else:
                finished = await finish_in(session, job.id, decision, owner=self.owner, finishing=self.finishing)
                kept = finished is not None
        if not kept:
            log.warning("poller.lease_lost", job_id=job.id)
