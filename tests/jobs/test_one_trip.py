"""The request path's writes in one round trip on PostgreSQL (`jobs/one_trip.py`): opening a job in one call (the
function of migration 0012) writes what the separate statements wrote, and each refusal (402, 403, 429) changes
nothing; a completed ending with its media is one statement that stores no media for a job that already ended. The
same paths through the HTTP API, concurrency included, run on both databases elsewhere."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from grokgate.billing import ledger
from grokgate.billing.models import LedgerEntry
from grokgate.db.engine import Database
from grokgate.errors import ApiError
from grokgate.jobs import repository, states
from grokgate.jobs.one_trip import open_in_one_call
from grokgate.jobs.repository import Finishing
from grokgate.orgs.models import Organization
from grokgate.storage.links import MediaLinks
from grokgate.storage.models import Media
from grokgate.storage.stored import StoredMedia
from tests.db.test_direct import _job_row
from tests.support import BACKEND, counts, kill_connections, make_tenant

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="the one-call opening is PostgreSQL's")


def _row(org_id: str, price: int) -> dict[str, Any]:
    return _job_row(org_id) | {"credits_charged": price}


async def test_an_opening_charges_once_and_writes_the_job_as_given(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url, credits=10)
    row = _row(tenant.org_id, 4)
    await open_in_one_call(db, row, price=4, most=5)
    async with db.reader() as session:
        job = await repository.get(session, tenant.org_id, row["id"])
        assert await ledger.balance_of(session, tenant.org_id) == ledger.Balance(6, 6)
        entry = (await session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == row["id"]))).one()
    assert job is not None
    assert {key: getattr(job, key) for key in row} == row  # JSON input and UTC times round-trip
    assert (entry.kind, entry.amount, entry.movement_key) == ("charge", -4, f"charge:{row['id']}")
    with pytest.raises(Exception, match=r"movement_key|jobs_pkey|duplicate"):  # the same job never twice
        await open_in_one_call(db, row, price=4, most=5)
    async with db.reader() as session:
        assert await ledger.balance_of(session, tenant.org_id) == ledger.Balance(6, 6)


async def test_refusals_change_nothing(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url, credits=10)
    await open_in_one_call(db, _row(tenant.org_id, 4), price=4, most=2)
    before = await counts(db_url)
    with pytest.raises(ApiError) as poor:
        await open_in_one_call(db, _row(tenant.org_id, 7), price=7, most=2)
    assert (poor.value.status, poor.value.code) == (402, "INSUFFICIENT_CREDITS")
    await open_in_one_call(db, _row(tenant.org_id, 1), price=1, most=2)
    with pytest.raises(ApiError) as full:
        await open_in_one_call(db, _row(tenant.org_id, 1), price=1, most=2)
    assert (full.value.status, full.value.details["limits"]) == (429, {"type": "concurrent", "limit": 2, "used": 2})
    async with db.transaction() as session:
        await session.execute(
            update(Organization).where(Organization.id == tenant.org_id).values(suspended_at=Organization.updated_at)
        )
    with pytest.raises(ApiError) as suspended:
        await open_in_one_call(db, _row(tenant.org_id, 1), price=1, most=9)
    assert (suspended.value.status, suspended.value.code) == (403, "ORG_SUSPENDED")
    after = await counts(db_url)
    assert after["jobs"] == before["jobs"] + 1  # the one opening that was let in
    async with db.reader() as session:
        assert await ledger.balance_of(session, tenant.org_id) == ledger.Balance(5, 5)


async def test_an_opening_on_a_kept_connection_killed_while_idle_goes_to_another(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url, credits=10)
    await open_in_one_call(db, _row(tenant.org_id, 1), price=1, most=9)  # a connection is kept now
    await kill_connections(db_url)
    await open_in_one_call(db, _row(tenant.org_id, 1), price=1, most=9)
    async with db.reader() as session:
        assert await ledger.balance_of(session, tenant.org_id) == ledger.Balance(8, 8)


async def test_a_completed_ending_and_its_media_are_one_statement_that_needs_the_job_active(
    db: Database, db_url: str
) -> None:
    tenant = await make_tenant(db_url, credits=10)
    row = _row(tenant.org_id, 4)
    await open_in_one_call(db, row, price=4, most=5)
    finishing = Finishing(
        links=MediaLinks(secret="s" * 32, base_url="http://gw.test", ttl=3600), retention=timedelta(1)
    )
    images = tuple(StoredMedia("image", f"k/{i}.png", "image/png", 10 + i, f"{i:064d}", 8, 8) for i in range(2))
    decision = states.Complete(images, cost_in_usd_ticks=5, refund=0)
    async with db.autocommit() as call:
        ended = await repository.finish_in(call, row["id"], decision, owner="me", finishing=finishing)
        again = await repository.finish_in(call, row["id"], decision, owner="me", finishing=finishing)
    assert ended is not None
    assert ended.status == "completed"
    assert again is None  # already ended: and no second set of media
    async with db.reader() as session:
        media = (await session.scalars(select(Media).where(Media.job_id == row["id"]))).all()
    assert sorted(item.key for item in media) == ["k/0.png", "k/1.png"]
    assert {item.org_id for item in media} == {tenant.org_id}
    assert ended.output is not None
    assert sorted(item.id for item in media) == sorted(ended.output["media"]["image"])
