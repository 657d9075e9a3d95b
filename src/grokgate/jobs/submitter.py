"""The video submitter: sends the videos that found every xAI key's pace spoken for, as the pace allows.

A request whose video no key could take at once leaves it queued: a `pending` row holding what to send
(`jobs.upstream_request`), with no lease. Here a few workers each lease the queued video whose turn it is
(organisations take turns, one video each, `repository.claim_queued`), wait for a key with room
(`UpstreamPool.submit_video`, which fails over between keys), and record xAI's request id and key, which hands
the job to the poller. Queued rows are in the database, so they survive a restart and are shared by every process
that runs the background work.

A worker holds one job at a time while it waits for a slot, its lease renewed meanwhile. If the process dies then,
the lease runs out and the poller refunds the job (the send may have been under way); if it stops cleanly, the
job is put back in the queue. A queued video past its deadline, or one no key is left for, ends refunded.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, fields
from typing import Any

import pybase64
import structlog

from grokgate.db.base import utcnow
from grokgate.db.engine import Database
from grokgate.db.leases import LeaseKeeper
from grokgate.jobs import repository, states
from grokgate.jobs.failures import failure_of
from grokgate.jobs.models import Job
from grokgate.jobs.render_times import RenderTimes, kind_of
from grokgate.jobs.repository import Finishing
from grokgate.jobs.views import MEDIA_REF
from grokgate.storage.service import find_media
from grokgate.storage.store import MediaStore
from grokgate.upstream.base import Upstream, VideoRequest

log = structlog.get_logger(__name__)

_REQUEST_FIELDS = {field.name for field in fields(VideoRequest)}


@dataclass(frozen=True)
class SubmitterSettings:
    concurrency: int = 4
    """Queued videos sent at once (each waiting for a key's pace)."""
    lease: float = 60.0
    interval: float = 5.0
    """The poll interval: the first poll of a sent video is due this long after it was sent."""

    @property
    def tick(self) -> float:
        """Sleep when nothing is queued."""
        return max(0.02, min(1.0, self.interval / 2))


class Submitter:
    def __init__(
        self,
        db: Database,
        upstream: Upstream,
        owner: str,
        *,
        leases: LeaseKeeper,
        finishing: Finishing,
        store: MediaStore,
        settings: SubmitterSettings,
        render_times: RenderTimes | None = None,
    ) -> None:
        self.db = db
        self.render_times = render_times or RenderTimes()
        self.upstream = upstream
        self.owner = owner
        self.leases = leases
        self.finishing = finishing
        self.store = store
        self.settings = settings
        self._served: str | None = None
        """The organisation whose video was taken last: the next claim starts after it (round robin)."""

    async def run(self, stop: asyncio.Event) -> None:
        workers = [asyncio.create_task(self._work(stop)) for _ in range(self.settings.concurrency)]
        await asyncio.gather(*workers)

    async def _work(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            job = None
            try:
                job = await self.claim()
            except Exception:
                log.warning("submitter.claim_failed", exc_info=True)
            if job is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.tick)
                continue
            with self.leases.holding(job.id), structlog.contextvars.bound_contextvars(job_id=job.id):
                await self._send_or_stop(job, stop)

    async def claim(self) -> Job | None:
        """The next queued video, leased to this process, or None. Read first: an empty queue (most of the time,
        and each of the `concurrency` workers asks every tick) then costs a read, where a writing transaction would
        hold SQLite's one writer slot across the pool's thread hops, under load tens of milliseconds that every
        request's charge waited behind (`db/slots.py`)."""
        if not await self.db.quick_read(repository.any_queued):
            return None
        async with self.db.transaction() as session:
            job = await repository.claim_queued(
                session, owner=self.owner, lease_seconds=self.settings.lease, after_org=self._served
            )
        if job is not None:
            self._served = job.org_id
        return job

    async def _send_or_stop(self, job: Job, stop: asyncio.Event) -> None:
        """Send the job, unless the process stops while it waits for a key: then it goes back in the queue."""
        sending = asyncio.create_task(self._send(job))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({sending, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if sending.done():
            return
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        with contextlib.suppress(Exception):
            async with self.db.transaction() as session:
                await repository.requeue(session, job.id, owner=self.owner)

    async def _send(self, job: Job) -> None:
        if job.deadline_at <= utcnow():
            await self._end(job, states.Fail("UPSTREAM_BUSY", "No xAI key had room for the video before its deadline"))
            return
        try:
            request = await self._request_of(job)
            submission = await self.upstream.submit_video(request, wait=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("submitter.send_failed", error=repr(exc)[:300])
            await self._end(job, failure_of(exc).ending)
            return
        async with self.db.transaction() as session:
            if submission is None:
                await repository.requeue(session, job.id, owner=self.owner)
                return
            stored = await repository.record_submission(
                session,
                job.id,
                owner=self.owner,
                request_id=submission.request_id,
                next_poll_at=self.render_times.first_poll(
                    kind_of(job.model, job.input), utcnow(), self.settings.interval
                ),
                key_id=submission.key_id,
            )
        if stored is None:
            log.warning("submitter.lease_lost")
        else:
            log.info("job.submitted", external_job_id=submission.request_id, upstream_key=submission.key_id)

    async def _request_of(self, job: Job) -> VideoRequest:
        """What to send, as queued; an inline input image is read back from storage into a `data:` URI."""
        body: dict[str, Any] = {k: v for k, v in (job.upstream_request or {}).items() if k in _REQUEST_FIELDS}
        image = body.get("image_url")
        if isinstance(image, str) and image.startswith(MEDIA_REF):
            body["image_url"] = await self._data_uri(image[len(MEDIA_REF) :])
        return VideoRequest(**body)

    async def _data_uri(self, media_id: str) -> str:
        row = await self.db.quick_read(lambda tx: find_media(tx, media_id))
        if row is None:
            raise LookupError(f"the queued video's input image {media_id} is gone")
        data = await self.store.read(row.key, 0, row.size)  # an input image: small enough to hold whole
        encoded = await asyncio.to_thread(lambda: pybase64.b64encode(data).decode())
        return f"data:{row.content_type};base64,{encoded}"

    async def _end(self, job: Job, decision: states.Fail) -> None:
        async with self.db.transaction() as session:
            await repository.finish_in(session, job.id, decision, owner=self.owner, finishing=self.finishing)
