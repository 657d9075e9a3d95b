"""An organisation's jobs in flight as the number on its row (`organizations.active_jobs`, kept by the triggers of
migration 0015): it follows every way a job enters or leaves `pending`/`processing`, on both databases, and the
plan's concurrent limit is checked against it."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

from sqlalchemy import delete, inspect, text, update

from grokgate.db.base import utcnow
from grokgate.db.engine import Database
from grokgate.db.migrate import downgrade, upgrade
from grokgate.jobs import repository, states
from grokgate.jobs.models import Job
from tests.conftest import empty_database
from tests.db.test_direct import _job_row
from tests.support import jobs_in_flight, make_tenant


async def _numbers(db: Database, org_id: str) -> tuple[int, int]:
    async with db.reader() as session:
        return await jobs_in_flight(session, org_id)


async def _insert(db: Database, org_id: str, **values: Any) -> str:
    row = _job_row(org_id) | values
    async with db.transaction() as session:
        await session.execute(repository.JOB_INSERT, row)
    return str(row["id"])


async def test_the_number_follows_every_entry_and_exit(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url)
    other = await make_tenant(db_url)
    pending = await _insert(db, tenant.org_id, status="pending")
    processing = await _insert(db, tenant.org_id, status="processing")
    await _insert(db, tenant.org_id, status="completed")  # born ended: not in flight
    await _insert(db, other.org_id, status="pending")
    assert await _numbers(db, tenant.org_id) == (2, 2)
    assert await _numbers(db, other.org_id) == (1, 1)
    async with db.transaction() as session:
        # pending -> processing, and a write that leaves the status as it was: still in flight, nothing moves
        await session.execute(update(Job).where(Job.id == pending).values(status="processing"))
        await session.execute(update(Job).where(Job.id == pending).values(status="processing", poll_count=3))
    assert await _numbers(db, tenant.org_id) == (2, 2)
    async with db.transaction() as session:
        await session.execute(update(Job).where(Job.id == pending).values(status="failed"))
        await session.execute(update(Job).where(Job.id == pending).values(status="cancelled"))  # ended to ended
    assert await _numbers(db, tenant.org_id) == (1, 1)
    async with db.transaction() as session:  # a job moved to another organisation (an operator's SQL)
        await session.execute(update(Job).where(Job.id == processing).values(org_id=other.org_id))
    assert await _numbers(db, tenant.org_id) == (0, 0)
    assert await _numbers(db, other.org_id) == (2, 2)
    async with db.transaction() as session:
        await session.execute(delete(Job).where(Job.id == processing))
    assert await _numbers(db, other.org_id) == (1, 1)
    async with db.transaction() as session:  # these jobs were never charged: gone before the ledger is checked
        await session.execute(delete(Job))
    assert await _numbers(db, tenant.org_id) == await _numbers(db, other.org_id) == (0, 0)


async def test_a_rolled_back_opening_leaves_the_number_as_it_was(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url)
    try:
        async with db.transaction() as session:
            await session.execute(repository.JOB_INSERT, _job_row(tenant.org_id))
            raise RuntimeError("the request failed after the INSERT")
    except RuntimeError:
        pass
    assert await _numbers(db, tenant.org_id) == (0, 0)


async def test_the_limit_reads_the_number(db: Database, db_url: str) -> None:
    """The opening's INSERT is refused once the number reaches the plan's limit; the refused one is not counted."""
    tenant = await make_tenant(db_url)
    await _insert(db, tenant.org_id)
    async with db.transaction() as session:
        assert await repository.insert_within(session, _job_row(tenant.org_id), most=2)
        assert not await repository.insert_within(session, _job_row(tenant.org_id), most=2)
        assert await repository.count_active(session, tenant.org_id) == 2
        await session.execute(delete(Job))  # never charged: gone before the ledger is checked


def test_the_migration_names_the_active_states_as_the_code_does() -> None:
    migration = importlib.import_module("grokgate.migrations.versions.0015_active_jobs_counted")
    assert "(" + ", ".join(f"'{status}'" for status in states.ACTIVE) + ")" == migration.ACTIVE


def test_the_migration_counts_the_jobs_already_in_flight_and_goes_back(tmp_path: Path) -> None:
    """Upgrading a database with jobs in flight starts each organisation's number at its count; downgrading takes
    the number and its triggers away again."""

    async def scenario(url: str) -> None:
        await upgrade(url, "0014")
        db = Database(url)
        try:
            async with db.transaction() as session:
                for org_id in ("org_a", "org_b"):  # as the schema of 0014 has them
                    await session.execute(
                        text("INSERT INTO organizations (id, name, credits_remaining, created_at, updated_at) "
                             "VALUES (:id, :id, 0, :now, :now)"),
                        {"id": org_id, "now": utcnow()},
                    )  # fmt: skip
                for status in ("pending", "processing", "failed"):
                    await session.execute(repository.JOB_INSERT, _job_row("org_a") | {"status": status})
        finally:
            await db.dispose()
        await upgrade(url)
        db = Database(url)
        try:
            assert await _numbers(db, "org_a") == (2, 2)
            assert await _numbers(db, "org_b") == (0, 0)
        finally:
            await db.dispose()
        await downgrade(url, "0014")
        db = Database(url)
        try:
            async with db.transaction() as session:  # no trigger left to write to a column that is gone
                await session.execute(repository.JOB_INSERT, _job_row("org_b"))
                columns = await session.run_sync(
                    lambda sync: [c["name"] for c in inspect(sync.connection()).get_columns("organizations")]
                )
            assert "active_jobs" not in columns
        finally:
            await db.dispose()

    with empty_database(tmp_path) as url:
        asyncio.run(scenario(url))
