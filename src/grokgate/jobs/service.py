"""The life of a job on the request path, from the charge to its end or to xAI's request id.

A request never holds a database connection while xAI works. It charges and records the job in one short
transaction, talks to xAI with no transaction open, and records the outcome in another. While it waits, its lease on
the job is renewed (`db.leases.LeaseKeeper`); if its process dies, the lease runs out within `job_lease` seconds and
the poller refunds the job (see `jobs/poller.py`).

Whatever goes wrong once the job exists, foreseen or not, ends it here at once, refunded, and the client is answered
with the code `jobs/failures.py` gives it and the `jobId`; no failure leaves a job `processing` until a lease runs
out. The queries live in `jobs/repository.py`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from grokgate.billing import caps, ledger
from grokgate.billing.pricing import upstream_list_cost
from grokgate.config import Settings
from grokgate.db.base import detached, new_id, utcnow
from grokgate.db.engine import Database
from grokgate.db.leases import LeaseKeeper
from grokgate.errors import ApiError, job_not_found
from grokgate.jobs import repository, states
from grokgate.jobs.failures import failure_of
from grokgate.jobs.models import Job
from grokgate.jobs.notifications import JobNotifier
from grokgate.jobs.one_trip import concurrent_limit, open_in_one_call
from grokgate.jobs.render_times import RenderTimes, kind_of
from grokgate.jobs.repository import Finishing
from grokgate.jobs.spec import GenerationSpec
from grokgate.jobs.views import MEDIA_REF
from grokgate.orgs.service import Caller
from grokgate.storage.ingest import Ingestor, InlineImage, inline_image
from grokgate.storage.service import find_media
from grokgate.storage.stored import MediaGone, MediaUnavailable, StoredMedia
from grokgate.upstream.base import ImageRequest, Upstream, UpstreamBusy, VideoRequest

log = structlog.get_logger(__name__)


def process_identity() -> str:
    """A lease owner name unique to this process (and to this start of it)."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id('run')[4:12]}"


def _not_cancellable(job_id: str, status: str) -> ApiError:
    return ApiError(
        409,
        "JOB_NOT_CANCELLABLE",
        f"Job {job_id} is {status} and can no longer be cancelled",
        {"jobId": job_id, "status": status},
    )


@dataclass
class JobService:
    db: Database
    upstream: Upstream
    settings: Settings
    owner: str
    ingestor: Ingestor
    finishing: Finishing
    leases: LeaseKeeper | None = None
    """Renews the leases of jobs in work; `runtime` passes the process's running keeper."""
    notifier: JobNotifier | None = None
    """Wakes held clients when their job changes; `runtime` passes the process's running one."""
    render_times: RenderTimes = field(default_factory=RenderTimes)
    """When a video just taken is first polled; `runtime` passes the one its poller learns in."""
    _reading: dict[tuple[str, str, bool], tuple[float, asyncio.Future[Job]]] = field(
        default_factory=dict, init=False, repr=False
    )
    """Reads of a job by held clients under way, with when each began (see `_read_since`)."""

    def __post_init__(self) -> None:
        if self.leases is None:
            self.leases = LeaseKeeper(self.db, Job, self.owner, self.settings.job_lease)
        if self.notifier is None:
            self.notifier = JobNotifier(self.db, recheck=self.settings.wait_recheck)

    @property
    def keeper(self) -> LeaseKeeper:
        assert self.leases is not None
        return self.leases

    @property
    def notices(self) -> JobNotifier:
        assert self.notifier is not None
        return self.notifier

    async def start(
        self,
        caller: Caller,
        spec: GenerationSpec,
        *,
        webhook_url: str | None = None,
        workflow: str = "grok-imagine",
    ) -> Job:
        """Charge, then run an image to its end or hand a video to xAI. Raises `ApiError` only; every error after
        the charge has ended the job (refunded) before it is raised."""
        spec = await self._own_video(caller, spec)
        inline = await self._read_inline(spec)
        job = await self._open(caller, spec, inline, webhook_url=webhook_url, workflow=workflow)
        with self.keeper.holding(job.id):
            try:
                for image in inline.values():
                    await self.ingestor.keep(image)
                if spec.kind == "image":
                    return await self._run_image(job, spec)
                return await self._submit_video(job, spec)
            except ApiError:
                raise
            except asyncio.CancelledError:
                # The process is stopping under this request: nobody will learn xAI's answer, so refund now.
                await asyncio.shield(self._end_quietly(job.id, states.lost_request(spec.kind)))
                raise
            except Exception as exc:
                failure = failure_of(exc)
                log.warning("job.failed_on", error=repr(exc)[:500], code=failure.ending.code)
                try:
                    await self.finish(job.id, failure.ending, owner=self.owner)
                except Exception as lost:  # the database is away: the lease runs out and the poller refunds
                    raise failure_of(lost).error(job.id) from lost
                raise failure.error(job.id) from exc

    async def _end_quietly(self, job_id: str, decision: states.Fail) -> None:
        try:
            await self.finish(job_id, decision, owner=self.owner)
        except Exception:  # the database is away: the lease runs out and the poller refunds
            log.warning("job.end_failed", job_id=job_id, exc_info=True)

    async def _own_video(self, caller: Caller, spec: GenerationSpec) -> GenerationSpec:
        """A `video_url` that links to one of our stored results must be the caller's own video; xAI is then given
        a fresh link to it (the customer's may be about to expire). Refused before any charge otherwise."""
        links = self.finishing.links
        prefix = f"{links.base_url}/media/"
        if spec.video_url is None or not spec.video_url.startswith(prefix):
            return spec
        media_id = spec.video_url[len(prefix) :].partition("?")[0]
        row = await self.db.quick_read(lambda tx: find_media(tx, media_id))
        if row is None or row.org_id != caller.org_id or row.role != "video" or row.deleted_at is not None:
            raise ApiError(400, "INVALID_URL", "video_url: is not one of your stored videos", {"field": "video_url"})
        return replace(spec, video_url=links.url(media_id))

    async def _read_inline(self, spec: GenerationSpec) -> dict[str, InlineImage]:
        """`data:` input images by where they came from (`image_url`, `image_urls.N`), decoded off the event loop;
        refused (before any charge) unless each is an image."""
        places = [("image_url", spec.image_url)] + [(f"image_urls.{i}", url) for i, url in enumerate(spec.image_urls)]
        found: dict[str, InlineImage] = {}
        for place, url in places:
            if url is None or not url.startswith("data:"):
                continue
            inline = await asyncio.to_thread(inline_image, url)
            if inline is None:
                field = place.partition(".")[0]
                raise ApiError(
                    400, "INVALID_URL", f"{place}: the data URI holds no PNG, JPEG or WebP image", {"field": field}
                )
            found[place] = inline
        return found

    async def _open(
        self,
        caller: Caller,
        spec: GenerationSpec,
        inline: dict[str, InlineImage],
        *,
        webhook_url: str | None,
        workflow: str,
    ) -> Job:
        """Charge the caller and record the job, leased to this process, in one transaction. An inline input image
        is kept as stored media: the job's `input` refers to it (`media:<id>`) instead of holding its bytes."""
        now = utcnow()
        price = spec.price
        lifetime = self.settings.video_deadline if spec.kind == "video" else self.settings.request_lease
        shown = spec.echo()
        input_ids = {place: new_id("med") for place in inline}
        for place, media_id in input_ids.items():
            field, _, index = place.partition(".")
            if index:
                shown[field] = [*shown[field]]
                shown[field][int(index)] = f"{MEDIA_REF}{media_id}"
            else:
                shown[field] = f"{MEDIA_REF}{media_id}"
        row: dict[str, Any] = {
            "id": new_id("job"),
            "org_id": caller.org_id,
            "key_id": caller.key_id or None,  # a console session pays with no key
            "kind": spec.kind,
            "model": spec.model,
            "workflow": workflow,
            "webhook_url": webhook_url,
            "request_id": structlog.contextvars.get_contextvars().get("request_id"),
            "status": "pending" if spec.kind == "video" else "processing",
            "input": shown,
            "credits_charged": price,
            "credits_refunded": 0,
            "poll_count": 0,
            "poll_failures": 0,
            "lease_owner": self.owner,
            "lease_expires_at": now + timedelta(seconds=self.settings.job_lease),
            "deadline_at": now + timedelta(seconds=lifetime),
            "created_at": now,
            "updated_at": now,
        }
        job = detached(Job, row)  # what the caller goes on with; the row itself is written by the statements below
        plan = self.settings.plans.get(caller.plan) or self.settings.plans["default"]
        if not self.db.is_sqlite and not caller.caps and not inline:
            await open_in_one_call(self.db, row, price=price, most=plan.concurrent)
        else:
            await self._open_in_transaction(caller, job, row, inline, input_ids, most=plan.concurrent, now=now)
        if self.finishing.metrics is not None:
            self.finishing.metrics.credits.labels("charge").inc(price)
        structlog.contextvars.bind_contextvars(job_id=job.id)
        log.info("job.created", kind=spec.kind, model=spec.model, credits=price)
        return job

    async def _open_in_transaction(
        self,
        caller: Caller,
        job: Job,
        row: dict[str, Any],
        inline: dict[str, InlineImage],
        input_ids: dict[str, str],
        *,
        most: int,
        now: datetime,
    ) -> None:
        """The opening's statements one by one in a transaction (SQLite; and spend caps or stored input images,
        which the one-call opening of `jobs/one_trip.py` does not do)."""
        price = row["credits_charged"]
        async with self.db.direct() as session:
            # The charge's UPDATE locks the organisation's row: concurrent requests of one organisation queue here,
            # so the number of active jobs the job's INSERT is made on cannot be raced past the plan's limit.
            await ledger.charge(session, caller.org_id, job.id, price)
            if caller.caps:  # after the charge: its lock on the organisation orders this as a refund does
                await caps.spend(session, caller.key_id, caller.caps, price, now)
            if not await repository.insert_within(session, row, most=most):
                raise concurrent_limit(most, await repository.count_active(session, caller.org_id))
            for place, image in inline.items():
                await repository.add_input(session, job, input_ids[place], image.media, self.finishing.retention)

    async def _store_image(self, urls: list[str]) -> list[StoredMedia]:
        """Copy every image into storage before answering: a few quick retries of what can heal (a timeout, a 5xx),
        none of a URL that is gone (404/410)."""
        stored: list[StoredMedia] = []
        for url in urls:
            for attempt in range(self.settings.upstream_retries):
                try:
                    stored.extend(await self.ingestor.ingest(url, "image"))
                    break
                except MediaGone:
                    raise
                except MediaUnavailable:
                    if attempt + 1 == self.settings.upstream_retries:
                        raise
                    await asyncio.sleep(self.settings.upstream_backoff * (2**attempt))
        return stored

    async def _ended_elsewhere(self, job_id: str) -> ApiError:
        """The job ended while we waited on xAI (cancelled, or its lease was lost): say how."""
        async with self.db.reader() as session:
            status = await repository.status_of(session, job_id)
        if status == "cancelled":
            return ApiError(409, "JOB_CANCELLED", "The job was cancelled while xAI worked on it", {"jobId": job_id})
        return ApiError(502, "UPSTREAM_ERROR", "xAI answered after the request's lease ran out", {"jobId": job_id})

    async def _run_image(self, job: Job, spec: GenerationSpec) -> Job:
        assert spec.prompt is not None
        result = await self.upstream.generate_image(
            ImageRequest(
                prompt=spec.prompt,
                aspect_ratio=spec.aspect_ratio,
                image_url=spec.image_url,
                model=spec.xai_model,
                images=spec.image_urls,
                n=spec.n,
                resolution=spec.asked("resolution"),
                quality=spec.asked("quality"),
                lane=job.org_id,
            )
        )
        media = await self._store_image(result.urls)
        refund = spec.undelivered(len(result.urls))
        decision = states.Complete(tuple(media), cost_in_usd_ticks=result.cost_in_usd_ticks, refund=refund)
        if not self.db.is_sqlite and not refund and job.webhook_url is None:  # the ending is one statement
            finished = await self._end_alone(job.id, decision)
        else:
            async with self.db.direct() as session:
                finished = await repository.finish_in(
                    session, job.id, decision, owner=self.owner, finishing=self.finishing
                )
        if finished is None:
            raise await self._ended_elsewhere(job.id)
        return finished

    async def _end_alone(self, job_id: str, decision: states.Complete) -> Job | None:
        """A completed ending that writes nothing but the job and its media (no refund, no webhook: the caller
        knows): one statement (`jobs/one_trip.py`), conditioned on the job being active and ours, so sending it
        again cannot apply it twice (`Database.single`)."""
        return await self.db.single(
            lambda tx: repository.finish_in(tx, job_id, decision, owner=self.owner, finishing=self.finishing)
        )

    async def _submit_video(self, job: Job, spec: GenerationSpec) -> Job:
        """Send the video now if a key has room and no video is queued before it; queue it otherwise."""
        request = VideoRequest(
            prompt=spec.prompt,
            duration=spec.duration,
            aspect_ratio=spec.aspect_ratio,
            image_url=spec.image_url,
            model=spec.xai_model,
            operation=spec.operation,
            video_url=spec.video_url,
            resolution=spec.asked("resolution"),
            lane=job.org_id,
        )
        submission = None
        if not self.upstream.paces_videos or not await self._videos_queued():
            submission = await self.upstream.submit_video(request, wait=False)
        if submission is None:
            return await self._queue(job, request)
        next_poll_at = self.render_times.first_poll(
            kind_of(job.model, job.input), utcnow(), self.settings.poll_interval
        )
        stored = await self.db.single(  # one conditioned UPDATE: sent twice, it sets the same values
            lambda tx: repository.record_submission(
                tx,
                job.id,
                owner=self.owner,
                request_id=submission.request_id,
                next_poll_at=next_poll_at,
                key_id=submission.key_id,
            )
        )
        if stored is None:
            raise await self._ended_elsewhere(job.id)
        log.info("job.submitted", external_job_id=submission.request_id, upstream_key=submission.key_id)
        return stored

    async def _videos_queued(self) -> bool:
        return await self.db.quick_read(repository.any_queued)

    async def _queue(self, job: Job, request: VideoRequest) -> Job:
        """Leave the video to the submitter (`jobs/submitter.py`), which sends it when a key's pace allows. An
        inline input image is kept as its stored media's reference, as in the job's input, not as its bytes."""
        body = asdict(request)
        if request.image_url is not None and request.image_url.startswith("data:"):
            body["image_url"] = job.input.get("image_url")
        async with self.db.transaction() as session:
            if await repository.count_queued(session) >= self.settings.video_queue:
                raise UpstreamBusy(f"{self.settings.video_queue} videos already wait for an xAI key", 30.0)
            queued = await repository.queue_submission(session, job.id, owner=self.owner, request=body, due=utcnow())
        if queued is None:
            raise await self._ended_elsewhere(job.id)
        log.info("job.queued", reason="every xAI key's video pace is spoken for")
        return queued

    async def get(self, caller: Caller, job_id: str, *, with_input: bool = True) -> Job:
        job = await self.db.quick_read(lambda tx: repository.get(tx, caller.org_id, job_id, with_input=with_input))
        if job is None:
            raise job_not_found(job_id)
        return job

    async def list(
        self,
        caller: Caller,
        *,
        limit: int,
        offset: int,
        status: str | None,
        filters: repository.JobFilters | None = None,
    ) -> tuple[list[Job], int]:
        async with self.db.reader() as session:
            return await repository.page(
                session, caller.org_id, limit=limit, offset=offset, status=status, filters=filters
            )

    async def cancel(self, caller: Caller, job_id: str) -> Job:
        job = await self.get(caller, job_id)
        if job.status not in states.ACTIVE:
            raise _not_cancellable(job_id, job.status)
        started = job.external_job_id is not None
        cost = upstream_list_cost(job.kind, job.input.get("duration")) if started else None
        async with self.db.transaction() as session:
            cancelled = await repository.finish_in(
                session, job_id, states.Cancel(started, cost), owner=None, finishing=self.finishing
            )
        if cancelled is None:  # it ended between our read and our write
            job = await self.get(caller, job_id, with_input=False)
            raise _not_cancellable(job_id, job.status)
        return cancelled

    async def wait(self, caller: Caller, job_id: str, seconds: float) -> Job:
        """The job once it has ended, or as it stands when `seconds` run out (`Prefer: wait`). The job is read when
        the wait begins and each time the notifier says it changed, never on a timer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        first: Job | None = None
        with self.notices.watch(job_id) as watch:
            while True:
                job = await self._read_since(caller, job_id, watch.woken_at, with_input=True, input_of=first)
                first = first or job
                watch.saw(job.status, job.updated_at)
                if job.status in states.TERMINAL or not await watch.wait(deadline - loop.time()):
                    return job

    async def follow(self, caller: Caller, job_id: str, *, idle: float) -> AsyncGenerator[Job | None]:
        """The job (without its input) as it stands, then again each time the notifier says it changed, until it
        has ended; None after each `idle` seconds without news (an event stream's keep-alive)."""
        with self.notices.watch(job_id) as watch:
            while True:
                job = await self._read_since(caller, job_id, watch.woken_at, with_input=False)
                watch.saw(job.status, job.updated_at)
                yield job
                if job.status in states.TERMINAL:
                    return
                while not await watch.wait(idle):
                    yield None

    async def _read_since(
        self, caller: Caller, job_id: str, since: float, *, with_input: bool, input_of: Job | None = None
    ) -> Job:
        """The job as read by a read that began after `since` (when the client was woken): the clients of one
        organisation woken by one change of a job (every stream open on it) share one read.

        A job this process just ended needs no read: its ending handed it over (without its input, which never
        changes: `input_of`, an earlier read of the job, lends it when the input is wanted)."""
        if not with_input or input_of is not None:
            ended = self.notices.ended(job_id)
            if ended is not None and ended.org_id == caller.org_id:
                return ended if input_of is None else repository.with_input(ended, input_of.input)
        key = (caller.org_id, job_id, with_input)
        under_way = self._reading.get(key)
        if under_way is not None and under_way[0] >= since:
            return await asyncio.shield(under_way[1])
        read = asyncio.ensure_future(self.get(caller, job_id, with_input=with_input))
        read.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen even if nobody is left
        self._reading[key] = (time.monotonic(), read)
        try:
            return await asyncio.shield(read)
        finally:
            if self._reading.get(key, (0.0, None))[1] is read:
                del self._reading[key]

    async def finish(self, job_id: str, decision: states.Ending, *, owner: str | None) -> Job | None:
        async with self.db.direct() as session:
            return await repository.finish_in(session, job_id, decision, owner=owner, finishing=self.finishing)
