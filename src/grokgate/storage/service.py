"""Media bookkeeping: the signing key and reading a job's media (the retention sweep is in `retention`)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.db.engine import Database
from grokgate.storage.models import Media, ServerSecret


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


async def find_media(session: AsyncSession, media_id: str) -> Media | None:
    return await session.get(Media, media_id)


async def job_media(db: Database, job_id: str) -> list[Media]:
    async with db.reader() as session:
        rows = await session.scalars(select(Media).where(Media.job_id == job_id).order_by(Media.created_at))
        return list(rows.all())
