"""Direct transactions (`db/direct.py`) against the real databases: what they write reads back through the ORM as
if a session had written it, a failing body writes nothing, the driver's errors are SQLAlchemy's, and the two
drivers' own hazards (a PostgreSQL connection killed while kept, another SQLite writer) are survived."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from grokgate.billing import ledger
from grokgate.db.base import new_id, utcnow
from grokgate.db.direct import Direct
from grokgate.db.engine import Database
from grokgate.jobs import repository, states
from grokgate.jobs.models import Job
from grokgate.jobs.repository import Finishing
from grokgate.orgs.models import Organization
from grokgate.storage.links import MediaLinks
from grokgate.storage.models import MediaObject
from grokgate.storage.retention import ObjectClaims
from tests.support import BACKEND, kill_connections, loop_ticks, make_tenant


def _job_row(org_id: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": new_id("job"),
        "org_id": org_id,
        "key_id": None,
        "kind": "image",
        "model": "grok-imagine-image",
        "workflow": "grok-imagine",
        "webhook_url": None,
        "request_id": None,
        "status": "processing",
        "input": {"prompt": "a lighthouse", "n": 2, "nested": {"ok": True}},
        "credits_charged": 4,
        "credits_refunded": 0,
        "poll_count": 0,
        "poll_failures": 0,
        "lease_owner": "me",
        "lease_expires_at": now + timedelta(seconds=60),
        "deadline_at": now + timedelta(seconds=600),
        "created_at": now,
        "updated_at": now,
    }


async def test_what_a_direct_transaction_writes_reads_back_through_the_orm(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url, credits=10)
    row = _job_row(tenant.org_id)
    async with db.direct() as tx:
        assert await ledger.charge(tx, tenant.org_id, row["id"], 4) == 6
        assert await repository.count_active(tx, tenant.org_id) == 0  # `IN` over the active states, written out
        await tx.execute(repository.JOB_INSERT, row)
        assert await repository.count_active(tx, tenant.org_id) == 1
    async with db.reader() as session:
        job = await repository.get(session, tenant.org_id, row["id"])
    assert job is not None
    assert job.input == row["input"]  # JSON both ways
    assert job.deadline_at == row["deadline_at"]
    assert job.deadline_at.tzinfo is not None  # UTC both ways, on SQLite's naive text too

    links = MediaLinks(secret="s" * 32, base_url="http://gw.test", ttl=3600)
    finishing = Finishing(links=links, retention=timedelta(days=1))
    async with db.direct() as tx:
        ended = await repository.finish_in(
            tx, row["id"], states.Fail("UPSTREAM_ERROR", "xAI failed"), owner="me", finishing=finishing
        )
    assert ended is not None
    assert (ended.status, ended.error_code, ended.credits_refunded) == ("failed", "UPSTREAM_ERROR", 4)
    assert ended.finished_at is not None
    assert ended.finished_at.tzinfo == UTC
    async with db.reader() as session:
        balance = await ledger.balance_of(session, tenant.org_id)
    assert balance == ledger.Balance(credits_remaining=10, ledger_sum=10)


async def test_a_body_that_raises_writes_nothing(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url, credits=10)
    row = _job_row(tenant.org_id)

    async def written_then_raised() -> None:
        async with db.direct() as tx:
            await ledger.charge(tx, tenant.org_id, row["id"], 4)
            await tx.execute(repository.JOB_INSERT, row)
            raise RuntimeError("after the writes")

    with pytest.raises(RuntimeError):
        await written_then_raised()
    async with db.reader() as session:
        assert await session.scalar(select(Organization.credits_remaining)) == 10
        assert (await session.scalars(select(Job))).all() == []
    failed = row | {"status": "failed", "credits_refunded": 4}
    async with db.direct() as tx:  # the connection is usable again
        assert await ledger.charge(tx, tenant.org_id, row["id"], 4) == 6
        await tx.execute(repository.JOB_INSERT, failed)
        await ledger.refund(tx, tenant.org_id, row["id"], 4)


async def test_a_second_refund_is_an_integrity_error_and_changes_nothing(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url, credits=10)
    row = _job_row(tenant.org_id) | {"status": "failed", "credits_refunded": 4}
    async with db.direct() as tx:
        await ledger.charge(tx, tenant.org_id, row["id"], 4)
        await tx.execute(repository.JOB_INSERT, row)
        await ledger.refund(tx, tenant.org_id, row["id"], 4)
    with pytest.raises(IntegrityError):
        async with db.direct() as tx:
            await ledger.refund(tx, tenant.org_id, row["id"], 4)
    async with db.reader() as session:
        assert await ledger.balance_of(session, tenant.org_id) == ledger.Balance(10, 10)


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL's kept connections")
async def test_a_kept_connection_killed_while_idle_is_replaced_before_anything_is_done(
    db: Database, db_url: str
) -> None:
    tenant = await make_tenant(db_url, credits=10)
    async with db.direct() as tx:
        assert await ledger.charge(tx, tenant.org_id, "job_a", 1) == 9
    killed = await kill_connections(db_url)
    assert killed >= 1
    async with db.direct() as tx:  # its BEGIN fails on the dead connection: a new one takes the transaction
        assert await ledger.charge(tx, tenant.org_id, "job_b", 1) == 8
    async with db.reader() as session:
        assert await ledger.balance_of(session, tenant.org_id) == ledger.Balance(8, 8)


async def _claimed(db: Database, *keys: str) -> dict[str, Any]:
    async with db.reader() as session:
        found = await session.scalars(select(MediaObject).where(MediaObject.key.in_(keys)))
        return {row.key: row.claimed_at for row in found.all()}


async def test_claims_are_upserts_committed_without_a_transaction_around_them(db: Database) -> None:
    claims = ObjectClaims(db)
    a, b = new_id("obj"), new_id("obj")
    await claims.claim(a, b)
    first = await _claimed(db, a, b)
    assert set(first) == {a, b}
    await claims.claim(b)  # again: the claim is refreshed, not refused
    again = await _claimed(db, a, b)
    assert again[a] == first[a]
    assert again[b] > first[b]


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL's kept connections")
async def test_a_claim_on_a_kept_connection_killed_while_idle_is_sent_again(db: Database, db_url: str) -> None:
    claims = ObjectClaims(db)
    a, b = new_id("obj"), new_id("obj")
    await claims.claim(a)  # a connection is kept now
    await kill_connections(db_url)
    await claims.claim(b)  # no BEGIN goes first to find the dead connection: the claim itself fails, then is resent
    assert set(await _claimed(db, a, b)) == {a, b}


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's write lock")
async def test_another_writer_is_waited_for_without_blocking_the_loop(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url, credits=10)
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)  # as another process would
    other.execute("BEGIN IMMEDIATE")

    async def charge(job_id: str) -> int:
        async with db.direct() as tx:
            return await ledger.charge(tx, tenant.org_id, job_id, 1)

    async with loop_ticks() as ticks:
        charging = asyncio.create_task(charge("job_a"))
        await asyncio.sleep(0.3)
        assert not charging.done()
        assert ticks() >= 10  # the loop ran while the charge waited for the lock
        # ... and this process's writer slot stayed free: a charge that has not begun holds up no other writer
        assert not db._direct.writers.locked()
        second = asyncio.create_task(charge("job_b"))
        await asyncio.sleep(0.05)
        assert not second.done()  # it too waits for the other process, not for the first charge
        other.execute("COMMIT")
        other.close()
        assert sorted(await asyncio.wait_for(asyncio.gather(charging, second), 5)) == [8, 9]


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's WAL")
async def test_the_wal_is_folded_back_every_so_many_commits(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The direct connection never checkpoints itself: without the pool's checkpoints the WAL would only grow."""
    tenant = await make_tenant(db_url, credits=10_000)
    wal = Path(db_url.removeprefix("sqlite:///") + "-wal")

    async def commits(count: int, start: int) -> None:
        for i in range(start, start + count):
            async with db.direct() as tx:
                await ledger.charge(tx, tenant.org_id, f"job_{i}", 1)
            if db._direct._checkpoint is not None:
                await db._direct._checkpoint

    monkeypatch.setattr(Direct, "CHECKPOINT_EVERY", 5)
    await commits(300, 0)
    folded = wal.stat().st_size
    monkeypatch.setattr(Direct, "CHECKPOINT_EVERY", 10**9)
    await commits(300, 300)
    assert folded < 300_000 < wal.stat().st_size


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's memory map")
async def test_every_sqlite_connection_reads_the_file_through_a_memory_map(db: Database) -> None:
    """A page missing from a connection's own cache is read from the map, not with a system call
    (`direct.SQLITE_PRAGMAS`): the direct connection and the pool's alike."""
    async with db.direct():
        direct = db._direct._sqlite_connection().execute("PRAGMA mmap_size").fetchone()
    async with db.reader() as session:
        pooled = (await session.execute(text("PRAGMA mmap_size"))).scalar_one()
    assert direct == (256 * 1024**2,)
    assert pooled == 256 * 1024**2
