"""The jobs table's queries: reading and listing jobs, the poller's writes, and `finish_in`, the one exit.

Services and the poller call these; routes never run SQL. Every write that a lease holder makes is conditioned on
`lease_owner` still being its own, and every ending on the job still being active, so work done twice by two
processes (one that stalled past its lease, one that took over) changes the database once.

A write that a client holding on to the job would see (its end, its status, its submission to xAI) notes the job as
changed (`db.engine.changed`), so that clients waiting on it are woken once the transaction commits
(`jobs/notifications.py`); bookkeeping (leases, claims, poll counts) does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from grokgate.billing import caps, ledger
from grokgate.db.base import detached, new_id, table_of, utcnow
from grokgate.db.direct import Tx
from grokgate.db.engine import changed
from grokgate.jobs import one_trip, states
from grokgate.jobs.models import Job
from grokgate.jobs.views import job_json
from grokgate.metrics import Metrics
from grokgate.orgs.models import Organization
from grokgate.storage.links import MediaLinks
from grokgate.storage.models import Media
from grokgate.storage.stored import StoredMedia
from grokgate.webhooks import outbox

log = structlog.get_logger(__name__)

WITHOUT_INPUT = defer(Job.input, raiseload=True)
"""Lists and streams never show a job's input, which may be large: it is not read for them (and not loadable)."""
_JOBS = table_of(Job)
JOB_INSERT = insert(_JOBS)
"""A new job's row, by a prebuilt Core INSERT. The request path's statements are built once, not per call: building
one (expressions, the ORM's bulk-update bookkeeping, its cache key) costs more CPU than running it."""
_MEDIA = insert(table_of(Media))
_SHOWN = [column for column in _JOBS.c if column.key != "input"]
"""What an ending returns of the job: all but its input, which may be large and no answer shows."""


@dataclass(frozen=True)
class Finishing:
    """What ending a job needs besides the database: how to link its media, and how long media is kept."""

    links: MediaLinks
    retention: timedelta
    metrics: Metrics | None = None


_GETS = {
    with_input: select(*(_JOBS.c if with_input else _SHOWN)).where(
        _JOBS.c.id == bindparam("job_id"), _JOBS.c.org_id == bindparam("org_id")
    )
    for with_input in (True, False)
}


async def get(session: Tx, org_id: str, job_id: str, *, with_input: bool = True) -> Job | None:
    """The organisation's job, or None: another organisation's job is as unknown as a job that does not exist.
    Without its input, the job's `input` is None (streams never show it, and it may be large)."""
    row = (await session.execute(_GETS[with_input], {"job_id": job_id, "org_id": org_id})).one_or_none()
    return None if row is None else detached(Job, row._mapping)


def with_input(job: Job, job_input: dict[str, Any]) -> Job:
    """A copy of `job` (read without its input) carrying `job_input`; `job` itself is left as it is (it may be
    shared by every client woken by its ending)."""
    return detached(Job, {column.key: getattr(job, column.key) for column in _JOBS.c} | {"input": job_input})


async def status_of(session: AsyncSession, job_id: str) -> str | None:
    return await session.scalar(select(Job.status).where(Job.id == job_id))


JOBS = "jobs"
"""The topic under which a transaction notes the jobs it changed."""


async def watched_states(session: AsyncSession, ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
    """What a held client watches of each job (its status and `updatedAt`), for a batch of jobs in one statement."""
    query = select(Job.id, Job.status, Job.updated_at).where(Job.id.in_(ids))
    return {job_id: (status, updated_at) for job_id, status, updated_at in (await session.execute(query)).all()}


@dataclass(frozen=True)
class JobFilters:
    """Narrowing a list of jobs beyond its status: by sub-model and by creation time (`since` <= t < `until`)."""

    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def page(
    session: AsyncSession,
    org_id: str,
    *,
    limit: int,
    offset: int,
    status: str | None,
    filters: JobFilters | None = None,
) -> tuple[list[Job], int]:
    """A page of the organisation's jobs, newest first, and how many there are in all."""
    narrow = filters or JobFilters()
    where = JobFilter(org_id=org_id, status=status, model=narrow.model, since=narrow.since, until=narrow.until)
    return await search(session, where, limit=limit, offset=offset)


_ACTIVE_COUNT = select(Organization.active_jobs).where(Organization.id == bindparam("org_id")).scalar_subquery()
"""The organisation's jobs in flight, as the triggers of migration 0015 keep them."""


async def count_active(session: Tx, org_id: str) -> int:
    found = await session.scalar(select(_ACTIVE_COUNT), {"org_id": org_id})
    return int(found or 0)


NEW_JOB = (
    "id", "org_id", "key_id", "kind", "model", "workflow", "webhook_url", "request_id", "status", "input",
    "credits_charged", "credits_refunded", "poll_count", "poll_failures", "lease_owner", "lease_expires_at",
    "deadline_at", "created_at", "updated_at",
)  # fmt: skip
"""The columns a new job's row gives (`JobService._open`); the others start empty."""


def _job_insert_within() -> Any:
    """The new job's INSERT, made only while the organisation has fewer than `most` jobs active, as one statement.
    Its number of active jobs is read after the charge's lock on the organisation, so requests of one organisation
    cannot race past the limit; the INSERT's trigger then counts the new job."""
    values = select(*[bindparam(key, type_=_JOBS.c[key].type) for key in NEW_JOB]).where(
        bindparam("most") > _ACTIVE_COUNT
    )
    return insert(_JOBS).from_select(NEW_JOB, values).returning(_JOBS.c.id)


_JOB_INSERT_WITHIN = _job_insert_within()


async def insert_within(session: Tx, row: dict[str, Any], *, most: int) -> bool:
    """Insert the new job unless the organisation already has `most` active (see `_job_insert_within`); False
    then, and nothing is written."""
    return (await session.execute(_JOB_INSERT_WITHIN, {**row, "most": most})).one_or_none() is not None


_SUBMITTED = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("job_id"), _JOBS.c.status.in_(states.ACTIVE))
    .where(_JOBS.c.lease_owner == bindparam("owner"))
    .values(
        external_job_id=bindparam("xai_request_id"),
        upstream_key_id=bindparam("xai_key_id"),
        upstream_request=None,
        lease_owner=None,
        lease_expires_at=None,
        next_poll_at=bindparam("poll_at"),
        submitted_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(*_JOBS.c)
)


async def record_submission(
    session: Tx,
    job_id: str,
    *,
    owner: str,
    request_id: str,
    next_poll_at: datetime,
    key_id: str | None = None,
) -> Job | None:
    """xAI took the video: keep its request id and the key that made it, and hand the job to the poller. None if
    the job ended meanwhile."""
    row = (
        await session.execute(
            _SUBMITTED,
            {
                "job_id": job_id,
                "owner": owner,
                "xai_request_id": request_id,
                "xai_key_id": key_id,
                "poll_at": next_poll_at,
                "now": utcnow(),
            },
        )
    ).one_or_none()
    job = None if row is None else detached(Job, row._mapping)
    if job is not None:
        changed(session, JOBS, job_id)
    return job


def _queued() -> list[Any]:
    """A video waiting for a key's pace: pending, not sent, and nobody's (a submitter that took it and died leaves
    its lease to run out, and the poller then refunds it: the send may or may not have reached xAI)."""
    return [
        Job.kind == "video",
        Job.status == "pending",
        Job.external_job_id.is_(None),
        Job.lease_owner.is_(None),
        Job.lease_expires_at.is_(None),
        Job.next_poll_at.is_not(None),
    ]


async def queue_submission(
    session: AsyncSession, job_id: str, *, owner: str, request: dict[str, Any], due: datetime
) -> Job | None:
    """No key may take the video now: leave it queued for the submitter, with what to send. None if it ended."""
    return (
        await session.scalars(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(states.ACTIVE), Job.lease_owner == owner)
            .values(upstream_request=request, lease_owner=None, lease_expires_at=None, next_poll_at=due)
            .returning(Job)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()


async def count_queued(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Job).where(*_queued())) or 0)


_ANY_QUEUED = select(Job.id).where(*_queued()).limit(1)


async def any_queued(tx: Tx) -> bool:
    """Whether any video waits to be sent: read before `claim_queued` (see `Submitter.claim`), and before a video
    is sent at once (a queued one goes first)."""
    return (await tx.scalar(_ANY_QUEUED)) is not None


async def claim_queued(session: AsyncSession, *, owner: str, lease_seconds: float, after_org: str | None) -> Job | None:
    """Lease the oldest queued video of the organisation whose turn it is: the first, in id order, after
    `after_org` (the one served last), wrapping around. Organisations take turns, one video each, so one
    organisation's burst never holds back another's video by more than one video per organisation."""
    waiting = list((await session.scalars(select(Job.org_id).where(*_queued()).distinct().order_by(Job.org_id))).all())
    if not waiting:
        return None
    later = [org for org in waiting if after_org is None or org > after_org]
    org_id = (later or waiting)[0]
    oldest = await session.scalar(
        select(Job.id).where(*_queued(), Job.org_id == org_id).order_by(Job.created_at, Job.id).limit(1)
    )
    if oldest is None:
        return None
    return (
        await session.scalars(
            update(Job)
            .where(Job.id == oldest, *_queued())
            .values(lease_owner=owner, lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
            .returning(Job)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()


async def requeue(session: AsyncSession, job_id: str, *, owner: str) -> None:
    """Give back a queued video this process took but did not send (no key had room, or it is stopping)."""
    await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "pending", Job.external_job_id.is_(None), Job.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None, updated_at=Job.updated_at)
    )


def _media_row(
    job_id: str, org_id: str, item: StoredMedia, now: datetime, retention: timedelta, media_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": media_id or new_id("med"),
        "job_id": job_id,
        "org_id": org_id,
        "role": item.role,
        "key": item.key,
        "content_type": item.content_type,
        "size": item.size,
        "sha256": item.sha256,
        "width": item.width,
        "height": item.height,
        "duration": item.duration,
        "created_at": now,
        "expires_at": now + retention,
        "deleted_at": None,
    }


def _ending_statement(*, completed: bool, owned: bool) -> Any:
    """`finish_in`'s UPDATE, built once for each kind of ending (see `ledger._move_statement` for why)."""
    conditions = [_JOBS.c.id == bindparam("job_id"), _JOBS.c.status.in_(states.ACTIVE)]
    if owned:
        conditions.append(_JOBS.c.lease_owner == bindparam("owner"))
    values: dict[str, Any] = {
        "lease_owner": None,
        "lease_expires_at": None,
        "next_poll_at": None,
        "updated_at": bindparam("now"),
        "finished_at": bindparam("now"),
        "cost_in_usd_ticks": bindparam("cost", type_=_JOBS.c.cost_in_usd_ticks.type),
        "status": bindparam("ending"),
    }
    if completed:
        values |= {"output": bindparam("result", type_=_JOBS.c.output.type), "credits_refunded": bindparam("refund")}
    else:
        values |= {
            "error_code": bindparam("code"),
            "error_message": bindparam("message"),
            "credits_refunded": _JOBS.c.credits_charged,
        }
    return update(_JOBS).where(*conditions).values(**values).returning(*_SHOWN)


_ENDINGS = {(c, o): _ending_statement(completed=c, owned=o) for c in (False, True) for o in (False, True)}


async def add_input(session: Tx, job: Job, media_id: str, item: StoredMedia, retention: timedelta) -> None:
    """Record the customer's input image beside its job, in the job's own transaction."""
    await session.execute(_MEDIA, [_media_row(job.id, job.org_id, item, job.created_at, retention, media_id)])


async def finish_in(
    session: Tx, job_id: str, decision: states.Ending, *, owner: str | None, finishing: Finishing
) -> Job | None:
    """The single exit from `pending`/`processing`: the new state, the stored media or the refund, and the
    webhook, in one transaction. None when the job had already ended or (with `owner`) another process owns it.

    The job returned is detached and carries no `input` (the UPDATE does not return it)."""
    now = utcnow()
    completed = isinstance(decision, states.Complete)
    params: dict[str, Any] = {"job_id": job_id, "owner": owner, "now": now, "cost": decision.cost_in_usd_ticks}
    media_rows: list[dict[str, Any]] = []
    if isinstance(decision, states.Complete):
        media_rows = [_media_row(job_id, "", item, now, finishing.retention) for item in decision.media]
        ids: dict[str, list[str]] = {}
        for media in media_rows:
            ids.setdefault(media["role"], []).append(media["id"])
        params |= {
            "ending": "completed",
            "result": states.stored_output(ids, decision.duration),
            "refund": decision.refund,
        }
    else:
        status = "cancelled" if isinstance(decision, states.Cancel) else "failed"
        params |= {"ending": status, "code": decision.code, "message": decision.message}
    ending = _ENDINGS[completed, owner is not None]
    folded = bool(media_rows) and session.get_bind().dialect.name == "postgresql"
    if folded:  # one round trip for both (`jobs/one_trip.py`)
        ending, params = one_trip.ending_with_media(ending, len(media_rows)), params | one_trip.media_params(media_rows)
    found = (await session.execute(ending, params)).one_or_none()
    if found is None:
        return None
    job = detached(Job, found._mapping)
    changed(session, JOBS, job_id, job)
    if media_rows and not folded:
        for media in media_rows:
            media["org_id"] = job.org_id
        await session.execute(_MEDIA, media_rows)
    if job.credits_refunded:
        note = "IMAGES_WITHHELD" if isinstance(decision, states.Complete) else decision.code
        await ledger.refund(session, job.org_id, job_id, job.credits_refunded, note=note)
        if job.key_id is not None:
            await caps.give_back(session, job.key_id, job.credits_refunded, job.created_at)
    if job.webhook_url:
        await outbox.enqueue(
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
    log.info("job.finished", job_id=job_id, status=job.status, error_code=job.error_code, refunded=job.credits_refunded)
    return job


def _reschedule_statement(*, with_progress: bool, answered: bool) -> Any:
    """`reschedule`'s UPDATE, built once for each kind (see `ledger._move_statement` for why)."""
    unchanged = _JOBS.c.status == bindparam("wait_status")
    if with_progress:
        unchanged = and_(unchanged, _JOBS.c.progress == bindparam("wait_progress"))
    values: dict[str, Any] = {
        "status": bindparam("wait_status"),
        "next_poll_at": bindparam("poll_at", type_=_JOBS.c.next_poll_at.type),
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": case((unchanged, _JOBS.c.updated_at), else_=bindparam("now", type_=_JOBS.c.updated_at.type)),
        "poll_count": _JOBS.c.poll_count + 1,
        "poll_failures": 0 if answered else _JOBS.c.poll_failures + 1,
    }
    if with_progress:
        values["progress"] = bindparam("wait_progress", type_=_JOBS.c.progress.type)
    if answered:  # xAI said "not yet" now: the video took at least this long
        values["polled_at"] = bindparam("now", type_=_JOBS.c.polled_at.type)
    return (
        update(_JOBS)
        .where(
            _JOBS.c.id == bindparam("job_id"),
            _JOBS.c.status.in_(states.ACTIVE),
            _JOBS.c.lease_owner == bindparam("owner"),
        )
        .values(**values)
        .returning(_JOBS.c.id)
    )


_RESCHEDULES = {
    (p, a): _reschedule_statement(with_progress=p, answered=a) for p in (False, True) for a in (False, True)
}


async def reschedule(
    session: Tx,
    job_id: str,
    wait: states.Wait,
    *,
    owner: str,
    answered: bool,
    was: str | None = None,
    was_progress: int | None = None,
) -> bool:
    """Hand a still-running job back with its next poll time; only the lease holder may.

    `answered` says whether the attempt made progress (xAI answered the poll and, for a finished video, the result
    was fetched): it resets or extends the run of failed attempts that sets the back-off. `updatedAt` moves only
    when the status or xAI's progress does, and only then are its waiting clients woken: `was` and
    `was_progress` are what the lease holder found (unknown: they are woken), since only the lease holder changes
    them while the job runs.
    """
    params = {
        "job_id": job_id,
        "owner": owner,
        "wait_status": wait.status,
        "wait_progress": wait.progress,
        "poll_at": wait.next_poll_at,
        "now": utcnow(),
    }
    result = await session.execute(_RESCHEDULES[wait.progress is not None, answered], params)
    kept = result.scalar_one_or_none() is not None
    if kept and (was != wait.status or (wait.progress is not None and wait.progress != was_progress)):
        changed(session, JOBS, job_id)
    return kept


async def hand_back(session: AsyncSession, owner: str) -> None:
    """Give up this process's leases on submitted videos at shutdown, so another process polls them at once.

    A job still leased by an in-flight request (no xAI request id yet) keeps its lease: only its running out
    tells the poller that nobody will ever learn xAI's answer."""
    await session.execute(
        update(Job)
        .where(Job.lease_owner == owner, Job.external_job_id.is_not(None), Job.status.in_(states.ACTIVE))
        .values(lease_owner=None, lease_expires_at=None, updated_at=Job.updated_at)
    )


@dataclass(frozen=True)
class JobFilter:
    """What the operator's list of every organisation's jobs may be narrowed by."""

    org_id: str | None = None
    status: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def search(session: AsyncSession, where: JobFilter, *, limit: int, offset: int) -> tuple[list[Job], int]:
    """A page of all organisations' jobs matching `where`, newest first, and how many match in all."""
    conditions = []
    if where.org_id is not None:
        conditions.append(Job.org_id == where.org_id)
    if where.status is not None:
        conditions.append(Job.status == where.status)
    if where.model is not None:
        conditions.append(Job.model == where.model)
    if where.since is not None:
        conditions.append(Job.created_at >= where.since)
    if where.until is not None:
        conditions.append(Job.created_at < where.until)
    total = await session.scalar(select(func.count()).select_from(Job).where(*conditions))
    jobs = await session.scalars(
        select(Job)
        .options(WITHOUT_INPUT)
        .where(*conditions)
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(jobs.all()), int(total or 0)
