"""Quick reads (`Database.quick_read`): a job's poll reads on the direct path. On SQLite that is a connection of its
own on the event loop's thread (`Direct.read`): it sees every commit, waits for no writer of this process, cannot
write, and waits for another process that holds the whole file without blocking the loop. On PostgreSQL it is one
statement outside any transaction, sent again on a new connection if the kept one was cut."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from grokgate.billing import ledger
from grokgate.db.base import new_id, utcnow
from grokgate.db.direct import DirectTx
from grokgate.db.engine import Database
from grokgate.jobs import repository
from grokgate.storage.models import Media
from grokgate.storage.service import find_media
from tests.db.test_direct import _job_row
from tests.support import BACKEND, kill_connections, loop_ticks, make_tenant


async def _open(tx: DirectTx, row: dict[str, Any]) -> None:
    await ledger.charge(tx, row["org_id"], row["id"], row["credits_charged"])
    await tx.execute(repository.JOB_INSERT, row)


async def _job_status(db: Database, org_id: str, job_id: str) -> str | None:
    job = await db.quick_read(lambda tx: repository.get(tx, org_id, job_id))
    return None if job is None else job.status


async def test_a_quick_read_sees_each_commit_and_not_a_writer_still_at_work(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url, credits=10)
    row = _job_row(tenant.org_id)
    async with db.direct() as tx:
        await _open(tx, row)
    assert await _job_status(db, tenant.org_id, row["id"]) == "processing"
    assert await _job_status(db, "org_other", row["id"]) is None  # another organisation's job is not found

    began, release = asyncio.Event(), asyncio.Event()

    async def slow_writer() -> None:
        async with db.direct() as tx:
            await _open(tx, _job_row(tenant.org_id) | {"id": "job_uncommitted"})
            began.set()
            await release.wait()  # holds this process's writer slot and SQLite's write lock meanwhile

    writing = asyncio.create_task(slow_writer())
    await began.wait()
    # The read neither queues behind the writer nor sees what it has not committed.
    assert await asyncio.wait_for(_job_status(db, tenant.org_id, "job_uncommitted"), 2) is None
    release.set()
    await writing
    assert await _job_status(db, tenant.org_id, "job_uncommitted") == "processing"


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's read connection")
async def test_a_write_slipped_into_a_quick_read_fails_and_changes_nothing(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url, credits=10)

    with pytest.raises(OperationalError, match="readonly"):
        await db.quick_read(lambda tx: ledger.charge(tx, tenant.org_id, "job_a", 4))
    async with db.reader() as session:
        assert await ledger.balance_of(session, tenant.org_id) == ledger.Balance(10, 10)
    # The connection is usable again, and was not left in a transaction.
    assert await db.quick_read(lambda tx: repository.get(tx, tenant.org_id, "job_none")) is None
    [connection] = db._direct._sqlite_readers
    assert not connection.in_transaction


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's file locks")
async def test_another_process_holding_the_file_is_waited_for_without_blocking_the_loop(
    db: Database, db_url: str
) -> None:
    """The one case where a reader of a WAL database waits: another process has it exclusively (here by
    `locking_mode=EXCLUSIVE`; also while it recovers the WAL after a crash)."""
    tenant = await make_tenant(db_url, credits=10)
    row = _job_row(tenant.org_id)
    before = Database(db_url)
    async with before.direct() as tx:
        await _open(tx, row)
    await before.dispose()  # every connection of this process closed: the other one can take the file whole
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    other.execute("UPDATE jobs SET status = 'queued' WHERE id = ?", (row["id"],))
    async with loop_ticks() as ticks:
        try:
            reading = asyncio.create_task(_job_status(db, tenant.org_id, row["id"]))
            await asyncio.sleep(0.3)
            assert not reading.done()
            assert ticks() >= 10  # the loop ran while the read waited
        finally:
            other.execute("COMMIT")
            other.close()
        assert await asyncio.wait_for(reading, 5) == "queued"


async def test_a_media_row_reads_the_same_on_the_direct_path_as_through_the_orm(db: Database, db_url: str) -> None:
    """Every column type of the media row both ways, a float (a video's duration) among them: asyncpg hands its
    numeric types over by the type code of the result, which a prebuilt statement knows from the column."""
    tenant = await make_tenant(db_url, credits=10)
    now = utcnow()
    media = Media(
        id=new_id("med"),
        job_id="job_x",
        org_id=tenant.org_id,
        role="video",
        key="ab/abc.mp4",
        content_type="video/mp4",
        size=123_456_789_012,
        sha256="ab" * 32,
        width=1280,
        height=720,
        duration=6.04,
        created_at=now,
        expires_at=now + timedelta(days=1),
    )
    async with db.transaction() as session:
        session.add(media)
    async with db.reader() as session:
        expected = {column.key: getattr(await session.get(Media, media.id), column.key) for column in Media.__table__.c}
    found = await db.quick_read(lambda tx: find_media(tx, media.id))
    assert await db.quick_read(lambda tx: find_media(tx, "med_none")) is None
    assert found is not None
    assert {column.key: getattr(found, column.key) for column in Media.__table__.c} == expected
    assert expected["duration"] == 6.04
    assert expected["deleted_at"] is None


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL's kept connections")
async def test_a_quick_read_on_a_kept_connection_killed_while_idle_is_sent_again(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url, credits=10)
    row = _job_row(tenant.org_id)
    async with db.direct() as tx:
        await _open(tx, row)
    assert await _job_status(db, tenant.org_id, row["id"]) == "processing"  # a connection is kept now
    assert await kill_connections(db_url) >= 1
    assert await _job_status(db, tenant.org_id, row["id"]) == "processing"
