"""The sweeper's purge: expired idempotency records and ended web sessions are deleted in bounded batches, live
ones never, and a key whose 24 h are over runs afresh."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from grokgate.accounts.models import AuthSession
from grokgate.accounts.sessions import find, open_session, revoke
from grokgate.db.base import utcnow
from grokgate.db.engine import Database
from grokgate.housekeeping import Purged, purge
from grokgate.idempotency.models import IdempotencyRecord
from tests.conftest import Gateway, Sandbox


async def _count(db: Database, model: type[IdempotencyRecord] | type[AuthSession]) -> int:
    async with db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_expired_idempotency_records_go_and_their_key_runs_afresh(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    body = {"prompt": "kept a day", "model": "text-to-image"}
    first = await gateway.generate(tenant, body, headers={"Idempotency-Key": "day-1"})
    await gateway.generate(tenant, {**body, "prompt": "another"}, headers={"Idempotency-Key": "day-2"})
    db = Database(gateway.db_url)
    try:
        assert await purge(db) == Purged(idempotency_keys=0, sessions=0)  # within their 24 h: kept
        assert await _count(db, IdempotencyRecord) == 2
        later = utcnow() + timedelta(hours=25)
        assert await purge(db, now=later, batch=1) == Purged(idempotency_keys=1, sessions=0)  # bounded
        assert await purge(db, now=later, batch=1) == Purged(idempotency_keys=1, sessions=0)
        assert await _count(db, IdempotencyRecord) == 0
    finally:
        await db.dispose()
    again = await gateway.generate(tenant, body, headers={"Idempotency-Key": "day-1"})
    assert again.status_code == 200
    assert "idempotent-replayed" not in again.headers
    assert again.json()["jobId"] != first.json()["jobId"]
    assert len(await sandbox.requests("/v1/images/generations")) == 3


async def test_ended_sessions_go_live_ones_stay(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.transaction() as session:
            _, live = await open_session(session, "operator", "op_live", ttl=timedelta(hours=8))
            _, expired = await open_session(session, "operator", "op_old", ttl=timedelta(seconds=-1))
            _, signed_out = await open_session(session, "operator", "op_out", ttl=timedelta(hours=8))
            await revoke(session, signed_out)
        assert await purge(db) == Purged(idempotency_keys=0, sessions=2)
        async with db.reader() as session:
            assert await find(session, live, "operator") is not None
            assert await find(session, expired, "operator") is None
        assert await _count(db, AuthSession) == 1
        assert await purge(db, now=utcnow() + timedelta(hours=9)) == Purged(idempotency_keys=0, sessions=1)
    finally:
        await db.dispose()
