"""The ledger against the real database: exact movements, no double refund, no negative balance, no rewrites."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from grokgate.billing import ledger
from grokgate.db.engine import Database
from grokgate.errors import ApiError
from grokgate.orgs import service as orgs


async def new_org(db: Database, credits: int) -> str:
    async with db.transaction() as session:
        return (await orgs.create_org(session, "ledger-test", credits)).id


async def balance(db: Database, org_id: str) -> ledger.Balance:
    async with db.reader() as session:
        found = await ledger.balance_of(session, org_id)
    assert found is not None
    return found


async def test_grant_charge_refund_move_the_balance_and_the_sum(db: Database) -> None:
    org_id = await new_org(db, 100)
    async with db.transaction() as session:
        assert await ledger.charge(session, org_id, "job_a", 30) == 70
    async with db.transaction() as session:
        await ledger.refund(session, org_id, "job_a", 30)
    async with db.transaction() as session:
        assert await ledger.grant(session, org_id, 5) == 105
    assert await balance(db, org_id) == ledger.Balance(credits_remaining=105, ledger_sum=105)


async def test_a_charge_the_balance_cannot_cover_moves_nothing(db: Database) -> None:
    org_id = await new_org(db, 10)
    with pytest.raises(ApiError) as caught:
        async with db.transaction() as session:
            await ledger.charge(session, org_id, "job_b", 11)
    assert caught.value.code == "INSUFFICIENT_CREDITS"
    assert caught.value.details == {"creditsRequired": 11, "creditsRemaining": 10}
    assert await balance(db, org_id) == ledger.Balance(10, 10)


async def test_a_second_refund_of_one_job_is_refused_by_the_database(db: Database) -> None:
    org_id = await new_org(db, 50)
    async with db.transaction() as session:
        await ledger.charge(session, org_id, "job_c", 50)
    async with db.transaction() as session:
        await ledger.refund(session, org_id, "job_c", 50)
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await ledger.refund(session, org_id, "job_c", 50)
    assert await balance(db, org_id) == ledger.Balance(50, 50)


async def test_a_second_charge_of_one_job_is_refused_by_the_database(db: Database) -> None:
    org_id = await new_org(db, 50)
    async with db.transaction() as session:
        await ledger.charge(session, org_id, "job_d", 10)
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await ledger.charge(session, org_id, "job_d", 10)
    assert await balance(db, org_id) == ledger.Balance(40, 40)


@pytest.mark.parametrize("statement", ["UPDATE ledger_entries SET amount = 1000", "DELETE FROM ledger_entries"])
async def test_ledger_rows_cannot_be_rewritten(db: Database, statement: str) -> None:
    org_id = await new_org(db, 20)
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.transaction() as session:
            await session.execute(text(statement))
    assert await balance(db, org_id) == ledger.Balance(20, 20)


async def test_concurrent_charges_never_overdraw(db: Database) -> None:
    org_id = await new_org(db, 95)

    async def attempt(i: int) -> bool:
        try:
            async with db.transaction() as session:
                await ledger.charge(session, org_id, f"job_race_{i}", 10)
        except ApiError:
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(30)))
    assert results.count(True) == 9
    assert await balance(db, org_id) == ledger.Balance(5, 5)


async def test_non_positive_grants_are_refused(db: Database) -> None:
    org_id = await new_org(db, 0)
    with pytest.raises(ApiError):
        async with db.transaction() as session:
            await ledger.grant(session, org_id, 0)
    assert await balance(db, org_id) == ledger.Balance(0, 0)
