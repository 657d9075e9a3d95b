"""Media bookkeeping: the signing key, reading a job's media, and the retention sweep."""

from __future__ import annotations

import secrets
from datetime import datetime

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from grokgate.db.base import utcnow
from grokgate.db.engine import Database
from grokgate.jobs.models import Job
from grokgate.storage.models import Media, ServerSecret
from grokgate.storage.store import MediaStore

log = structlog.get_logger(__name__)


async def signing_secret(db: Database, configured: str | None) -> str:
    """The configured key, or the one this database keeps (made by whichever process asked first)."""
    if configured:
        return configured
    for _ in range(2):
        try:
            async with db.transaction() as session:
                found = await session.get(ServerSecret, "media_signing")
                if found is not None:
                    return found.value
                value = secrets.token_urlsafe(32)
                session.add(ServerSecret(name="media_signing", value=value))
                return value
        except IntegrityError:
            continue  # another process made it at the same moment: read theirs
    raise RuntimeError("could not read or create the media signing secret")


async def job_media(db: Database, job_id: str) -> list[Media]:
    async with db.reader() as session:
        rows = await session.scalars(select(Media).where(Media.job_id == job_id).order_by(Media.created_at))
        return list(rows.all())


async def sweep_expired(db: Database, store: MediaStore, *, now: datetime | None = None, batch: int = 200) -> int:
    """Delete media past retention: the object (unless a live row still shares its bytes), then mark the row and
    the job. Safe to run in several processes at once: every step is idempotent."""
    moment = now or utcnow()
    async with db.reader() as session:
        expired = list(
            (
                await session.scalars(
                    select(Media).where(Media.deleted_at.is_(None), Media.expires_at < moment).limit(batch)
                )
            ).all()
        )
    for row in expired:
        async with db.reader() as session:
            shared = await session.scalar(
                select(Media.id).where(
                    Media.key == row.key, Media.id != row.id, Media.deleted_at.is_(None), Media.expires_at >= moment
                )
            )
        if shared is None:
            await store.delete(row.key)
        async with db.transaction() as session:
            await session.execute(update(Media).where(Media.id == row.id).values(deleted_at=moment))
            job = await session.get(Job, row.job_id)
            if job is not None and job.output is not None and not job.output.get("expired"):
                job.output = {**job.output, "expired": True}
    if expired:
        log.info("media.swept", count=len(expired))
    return len(expired)
