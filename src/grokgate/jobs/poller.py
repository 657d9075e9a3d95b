"""The durable video poller: a bounded pool that leases due jobs, asks xAI about them, and records what it heard.

All state lives in the jobs table, so a poller can die at any instruction: its leases run out and any poller
(this process after a restart, or another one) takes the jobs over. While a job is worked on, its lease is renewed
(`db.leases.LeaseKeeper`), so a poll with retries or a long download is never done twice, and the lease itself can
be short. Work done twice anyway is harmless because every write is conditioned on still holding the lease, and a
job's end on it still being active.

The pool is continuous: as soon as a slot frees, more due jobs are leased, so one slow download never holds back
the polls of every other video (as rounds that wait on their slowest job would). A video that said "not yet" is
not asked again before videos of its kind are seen finishing (`render_times`): polls that cannot find anything
cost xAI calls and CPU that ready videos need.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError

from grokgate.db.base import utcnow
from grokgate.db.engine import Database
from grokgate.db.leases import LeaseKeeper
from grokgate.jobs import repository, states
from grokgate.jobs.due import DueJob, claim_due
from grokgate.jobs.failures import failure_of
from grokgate.jobs.models import Job
from grokgate.jobs.render_times import RenderTimes, kind_of, rendered_at_least
from grokgate.jobs.repository import Finishing
from grokgate.metrics import Metrics
from grokgate.storage.ingest import Ingestor
from grokgate.storage.stored import MediaGone, MediaRejected, MediaUnavailable, StorageFailed
from grokgate.upstream.base import Upstream, UpstreamError, UpstreamKeyRefused

log = structlog.get_logger(__name__)

_DATABASE_AWAY = (OperationalError, InterfaceError, ConnectionError)


@dataclass(frozen=True)
class PollerSettings:
    interval: float
    """Seconds between two polls of one video."""
    batch: int = 200
    """Most jobs leased in one claim."""
    concurrency: int = 64
    """Most jobs worked on at once."""
    lease: float = 60.0
    """Seconds a leased job stays ours without renewal (renewed every third of it while we work)."""
    result_attempts: int = 3
    """Tries to fetch a finished video whose URL is gone (404/410) or that our store refused, each after a fresh
    poll, before the job fails: these do not heal by waiting to the deadline."""

    @property
    def tick(self) -> float:
        """Sleep when nothing was due: small against the interval, at most 1 s."""
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
        leases: LeaseKeeper | None = None,
        metrics: Metrics | None = None,
        render_times: RenderTimes | None = None,
    ) -> None:
        self.db = db
        self.upstream = upstream
        self.settings = settings
        self.owner = owner
        self.ingestor = ingestor
        self.finishing = finishing
        self.leases = leases or LeaseKeeper(db, Job, owner, settings.lease)
        self.metrics = metrics
        self.render_times = render_times or RenderTimes()
        """Shared with what submits in this process (`runtime`), so first polls wait as later ones do."""
        self._orphans_sought = -math.inf
        """When `_claim` last looked for jobs whose lease ran out (monotonic seconds)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Keep up to `concurrency` jobs in work until `stop`; then let the running ones finish."""
        log.info("poller.started")
        running: set[asyncio.Task[None]] = set()
        freed = asyncio.Event()

        def done(task: asyncio.Task[None]) -> None:
            running.discard(task)
            freed.set()

        while not stop.is_set():
            room = min(self.settings.concurrency - len(running), self.settings.batch)
            jobs: Sequence[DueJob] = []
            if room > 0:
                try:
                    jobs = await self._claim(room)
                except Exception:
                    log.exception("poller.claim_failed")
            for job in jobs:
                task = asyncio.create_task(self._guarded(job))
                running.add(task)
                task.add_done_callback(done)
            if jobs and len(jobs) == room and len(running) < self.settings.concurrency:
                continue  # a full claim: more may be due right now
            freed.clear()
            waits = [asyncio.ensure_future(stop.wait())]
            if running:
                waits.append(asyncio.ensure_future(freed.wait()))
            await asyncio.wait(waits, timeout=self.settings.tick, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()
            if freed.is_set() and not stop.is_set():
                await asyncio.sleep(0.01)  # let a few more finish, so one claim serves them together
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        log.info("poller.stopped")

    async def round(self) -> int:
        """Lease what is due (one batch) and handle it to the end; returns how many jobs were handled."""
        self._orphans_sought = -math.inf  # a round always looks for them
        jobs = await self._claim(self.settings.batch)
        await asyncio.gather(*(self._guarded(job) for job in jobs))
        return len(jobs)

    async def _claim(self, limit: int) -> Sequence[DueJob]:
        """Due jobs, and at most once a tick those whose lease ran out (a dead process's work is taken over
        within a lease and a tick; looking for it on every claim would cost a query each time)."""
        now = time.monotonic()
        orphaned = now - self._orphans_sought >= self.settings.tick
        if orphaned:
            self._orphans_sought = now
        jobs = await claim_due(
            self.db, owner=self.owner, lease_seconds=self.settings.lease, limit=limit, orphaned=orphaned
        )
        for job in jobs:
            self.leases.held.add(job.id)  # renewed from now on, until `_guarded` lets go
        self._observe_lag(jobs)
        return jobs

    def _observe_lag(self, jobs: Sequence[DueJob]) -> None:
        """How long after its due time each poll starts: the first sign of a poller that cannot keep up."""
        if self.metrics is None:
            return
        now = utcnow()
        for job in jobs:
            if job.next_poll_at is not None and job.next_poll_at <= now:
                self.metrics.poll_lag.observe((now - job.next_poll_at).total_seconds())

    async def _guarded(self, job: DueJob) -> None:
        with self.leases.holding(job.id):
            try:
                with structlog.contextvars.bound_contextvars(job_id=job.id, request_id=job.request_id):
                    await self.handle(job)
            except _DATABASE_AWAY:
                # Nothing could be written: the lease runs out and a later claim tries again.
                log.warning("poller.database_away", job_id=job.id, exc_info=True)
            except Exception as exc:
                # A bug, or an answer nobody foresaw: end the job now (refunded) rather than retry it forever.
                log.exception("poller.job_failed", job_id=job.id)
                with contextlib.suppress(Exception):
                    await self._apply(job, failure_of(exc).ending, answered=True)

    async def handle(self, job: DueJob) -> None:
        if job.external_job_id is None or job.kind != "video":
            # Its request died (with its process) before xAI's outcome was recorded: nothing can be delivered.
            await self._apply(job, states.lost_request(job.kind), answered=True)
            return
        try:
            poll = await self.upstream.poll_video(job.external_job_id, job.upstream_key_id)
        except UpstreamKeyRefused as exc:
            # Only the key that created a request may read it: with that key refused or gone, nothing will come.
            log.warning("poller.key_refused", job_id=job.id, error=str(exc))
            await self._apply(job, failure_of(exc).ending, answered=True)
            return
        except UpstreamError as exc:
            log.warning("poller.poll_failed", job_id=job.id, error=str(exc), failures=job.poll_failures + 1)
            await self._apply(job, self._back_off(job), answered=False)
            return
        kind = kind_of(job.model, job.input)
        decision = states.after_poll(
            poll,
            now=utcnow(),
            deadline=job.deadline_at,
            interval=self.settings.interval,
            requested_duration=job.input.get("duration"),
            not_before=self.render_times.not_before(kind, job.submitted_at),
        )
        if isinstance(decision, states.Deliver):
            took = rendered_at_least(job.submitted_at, job.polled_at)
            if took is not None and job.poll_failures == 0:  # not again when a failed download is retried
                self.render_times.observe(kind, took)
            await self._deliver(job, decision)
            return
        await self._apply(job, decision, answered=True)

    def _back_off(self, job: DueJob) -> states.Fail | states.Wait:
        delay = states.retry_delay(self.settings.interval, job.poll_failures + 1)
        return states.after_silence(now=utcnow(), deadline=job.deadline_at, delay=delay, status=job.status)

    async def _deliver(self, job: DueJob, found: states.Deliver) -> None:
        """Copy the finished video into storage, then complete. What can heal (a timeout, a 5xx) is retried to the
        deadline; a gone URL or a refusing store only `result_attempts` times, each after a fresh poll."""
        try:
            media = await self.ingestor.ingest(found.url, "video")
        except (MediaGone, StorageFailed) as exc:
            failures = job.poll_failures + 1
            log.warning("poller.result_failed", job_id=job.id, error=str(exc), failures=failures)
            later = self._back_off(job)
            if failures >= self.settings.result_attempts or isinstance(later, states.Fail):
                # Out of attempts, or the deadline falls before the next one: the job ends for what went wrong
                # with its result (the customer is told the video was made and lost, not that xAI was slow).
                await self._apply(job, failure_of(exc).ending, answered=True)
            else:
                await self._apply(job, later, answered=False)
            return
        except MediaUnavailable as exc:
            log.warning("poller.result_unavailable", job_id=job.id, error=str(exc), failures=job.poll_failures + 1)
            silence = self._back_off(job)
            if isinstance(silence, states.Fail):
                silence = states.Fail("RESULT_UNAVAILABLE", f"xAI's video could not be fetched: {exc}")
            await self._apply(job, silence, answered=False)
            return
        except MediaRejected as exc:
            await self._apply(job, states.Fail("RESULT_INVALID", f"xAI's video is unusable: {exc}"), answered=True)
            return
        await self._apply(job, states.Complete(tuple(media), found.duration, found.cost_in_usd_ticks), answered=True)

    async def _apply(self, job: DueJob, decision: states.Ending | states.Wait, *, answered: bool) -> None:
        if isinstance(decision, states.Wait):  # one conditioned UPDATE, sent again only on a cut connection
            # (`Database.single`): at worst one poll is counted twice
            wait = decision
            kept = await self.db.single(
                lambda tx: repository.reschedule(
                    tx, job.id, wait, owner=self.owner, answered=answered, was=job.status, was_progress=job.progress
                )
            )
        else:  # an ending may write several rows (refund, webhook): a transaction
            async with self.db.direct() as session:
                finished = await repository.finish_in(
                    session, job.id, decision, owner=self.owner, finishing=self.finishing
                )
            kept = finished is not None
        if not kept:
            log.warning("poller.lease_lost", job_id=job.id)
