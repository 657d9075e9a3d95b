"""Retention without losing a result: ingests claim the objects they rely on, the sweeper deletes only what nobody
claimed lately and nothing refers to.

Objects are content-addressed, so two jobs with byte-identical results share one object, and an ingest that finds
the object already there does not write it again. Without care the sweeper could then delete it between that
ingest's check and the commit of the new job's media row (the row is what tells the sweeper the object is in use):
the new job would be completed with a link to nothing. Looking at the media rows alone cannot close that window,
because the new row is not visible until the job is committed, and neither can re-putting the object, because the
sweeper may have decided before the put and delete after it.

The protocol, the same on PostgreSQL and SQLite and with any number of processes:

- **Ingest** (`ObjectClaims.claim`) commits `media_objects(key).claimed_at = now` *before* it checks or writes
  the object, and the job's media row is committed well within `GRACE` after that (an upload and a commit).
- **Sweep** (`sweep_expired`) first marks expired media rows deleted. Then, for each object, in one transaction:
  it locks the object's claim row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` holds the
  whole database), re-checks that the claim is older than `GRACE` and that no live media row refers to the key,
  deletes the object from the store while still holding the lock, and deletes the claim row.

Why that is enough: a claim either commits before the sweeper takes the lock, and then the sweeper sees it (fresh
claim: the object stays; claim older than `GRACE`: the claiming job's media row is committed by then and the
sweeper sees that instead), or it waits for the sweeper's transaction to end, and then the ingest's check finds
the object gone and writes it again. A crash after the object is deleted but before the commit leaves the claim
row, so the next sweep finishes the deletion (deleting is idempotent). Wall clocks of the processes are compared,
so `GRACE` (an hour) is also far above any clock skew; deleting an object an hour after its last reference
expired costs nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import bindparam, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from grokgate.db.base import table_of, utcnow
from grokgate.db.engine import Database
from grokgate.jobs.models import Job
from grokgate.storage.models import Media, MediaObject
from grokgate.storage.store import MediaStore

log = structlog.get_logger(__name__)

GRACE = timedelta(hours=1)
"""How long after its last claim an object is kept even when nothing refers to it: more than any ingest takes
from its claim to the commit of its media row."""


def _insert(db: Database) -> Any:
    """The dialect's INSERT, which has ON CONFLICT."""
    return sqlite.insert(MediaObject) if db.is_sqlite else postgresql.insert(MediaObject)


def _claim_statement(dialect: Any) -> Any:
    """`claimed_at = now` for one key, inserted or refreshed; built once per dialect (every ingest runs it)."""
    statement = dialect.insert(table_of(MediaObject)).values(key=bindparam("object_key"), claimed_at=bindparam("now"))
    return statement.on_conflict_do_update(
        index_elements=[MediaObject.key], set_={"claimed_at": statement.excluded.claimed_at}
    )


_CLAIMS = {True: _claim_statement(sqlite), False: _claim_statement(postgresql)}


class ObjectClaims:
    """What an ingest calls before it relies on an object (see the module's docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(self, *keys: str) -> None:
        """Claim every key: refreshing a claim twice does no harm, so no transaction is needed around it."""
        now = utcnow()
        await self.db.upsert(_CLAIMS[self.db.is_sqlite], [{"object_key": key, "now": now} for key in keys])


def _referenced(key: Any) -> Any:
    return exists().where(Media.key == key, Media.deleted_at.is_(None))


async def _expire_rows(db: Database, moment: datetime, batch: int) -> int:
    """Mark media past retention deleted (and its job's output expired); make sure the sweeper knows the object."""
    async with db.reader() as session:
        expired = list(
            (
                await session.scalars(
                    select(Media).where(Media.deleted_at.is_(None), Media.expires_at < moment).limit(batch)
                )
            ).all()
        )
    for row in expired:
        async with db.transaction() as session:
            await session.execute(
                update(Media).where(Media.id == row.id, Media.deleted_at.is_(None)).values(deleted_at=moment)
            )
            await session.execute(_insert(db).values(key=row.key, claimed_at=row.created_at).on_conflict_do_nothing())
            if row.role == "input":
                continue  # a customer's input image: its going says nothing of the job's result
            job = await session.get(Job, row.job_id)
            if job is not None and job.output is not None and not job.output.get("expired"):
                job.output = {**job.output, "expired": True}
    return len(expired)


async def _delete_object(db: Database, store: MediaStore, key: str, cutoff: datetime) -> bool:
    """Delete one object if, under its lock, it is still unclaimed since `cutoff` and unreferenced."""
    async with db.transaction() as session:
        locked = await session.scalar(
            select(MediaObject.key)
            .where(MediaObject.key == key, MediaObject.claimed_at < cutoff, ~_referenced(MediaObject.key))
            .with_for_update()
        )
        if locked is None:
            return False
        # A claim arriving now waits for this transaction; the ingest then finds the object gone and writes it.
        await store.delete(key)
        await session.execute(delete(MediaObject).where(MediaObject.key == key))
    return True


async def sweep_expired(
    db: Database, store: MediaStore, *, now: datetime | None = None, batch: int = 200, grace: timedelta = GRACE
) -> int:
    """One round of retention: expire up to `batch` media rows, then delete up to `batch` objects that nothing
    refers to and nobody claimed within `grace` (see the module's docstring). Returns the rows expired. Safe in
    several processes at once: each step is conditional and idempotent."""
    moment = now or utcnow()
    rows = await _expire_rows(db, moment, batch)
    cutoff = moment - grace
    async with db.reader() as session:
        candidates = list(
            (
                await session.scalars(
                    select(MediaObject.key)
                    .where(MediaObject.claimed_at < cutoff, ~_referenced(MediaObject.key))
                    .limit(batch)
                )
            ).all()
        )
    deleted = 0
    for key in candidates:
        deleted += await _delete_object(db, store, key, cutoff)
    if rows or deleted:
        log.info("media.swept", rows=rows, objects=deleted)
    return rows
