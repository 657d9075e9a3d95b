"""Per-key spend caps over real HTTP: counted in the charge's transaction (so concurrency cannot pass them),
refused with 402 KEY_SPEND_CAP_REACHED and nothing else changed, given back by refunds, reset by their windows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from grokgate.billing import caps
from grokgate.billing.models import KeySpend
from grokgate.db.engine import Database
from grokgate.jobs.models import Job
from tests.admin.helpers import capped_key
from tests.conftest import Gateway, Sandbox
from tests.support import Tenant

IMAGE = {"prompt": "a capped lighthouse", "model": "text-to-image"}


async def _jobs_of(db_url: str, key_id: str) -> int:
    db = Database(db_url)
    try:
        async with db.reader() as session:
            return int(await session.scalar(select(func.count()).select_from(Job).where(Job.key_id == key_id)) or 0)
    finally:
        await db.dispose()


async def _balance(gateway: Gateway, tenant: Tenant) -> int:
    body = (await gateway.client.get("/api/v1/organization", headers=tenant.headers)).json()
    return int(body["creditsRemaining"])


@pytest.mark.timeout(120)
async def test_fifty_concurrent_requests_on_a_forty_credit_cap_charge_five(gateway: Gateway, sandbox: Sandbox) -> None:
    owner = await gateway.tenant(credits=1000)
    key = await capped_key(gateway.db_url, owner.org_id, daily=40)
    answers = await asyncio.gather(*(gateway.generate(key, {**IMAGE, "prompt": f"capped {i}"}) for i in range(50)))
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(200) == 5, statuses
    assert statuses.count(402) == 45, statuses
    refused = [answer.json() for answer in answers if answer.status_code == 402]
    assert {body["code"] for body in refused} == {"KEY_SPEND_CAP_REACHED"}
    details = refused[0]["details"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert details["cap"] == 40
    assert details["spent"] == 40
    assert details["window"] == "day"
    assert details["resetsAt"] == f"{tomorrow}T00:00:00Z"
    assert await _jobs_of(gateway.db_url, key.key_id) == 5  # the refused 45 made no job
    assert await _balance(gateway, owner) == 1000 - 40
    assert len(await sandbox.requests("/images/generations")) == 5  # and never reached xAI
    # Another key of the same organisation is not held back by this key's cap.
    assert (await gateway.generate(owner, IMAGE)).status_code == 200


async def test_a_failed_jobs_refund_gives_the_cap_back(gateway: Gateway, sandbox: Sandbox) -> None:
    owner = await gateway.tenant(credits=1000)
    key = await capped_key(gateway.db_url, owner.org_id, daily=16, monthly=1000)
    assert (await gateway.generate(key, IMAGE)).status_code == 200
    failed = await gateway.generate(key, {**IMAGE, "prompt": "refused [sandbox:reject]"})
    assert failed.status_code == 400, failed.text
    assert failed.json()["code"] == "UPSTREAM_REJECTED"
    # 8 spent and 8 given back by the refund: the cap still has room for one more image, then none.
    assert (await gateway.generate(key, IMAGE)).status_code == 200
    over = await gateway.generate(key, IMAGE)
    assert over.status_code == 402
    assert over.json()["details"]["spent"] == 16
    assert await _balance(gateway, owner) == 1000 - 16


async def test_a_monthly_cap_counts_across_days_and_says_when_it_resets(gateway: Gateway) -> None:
    owner = await gateway.tenant(credits=1000)
    key = await capped_key(gateway.db_url, owner.org_id, monthly=20)
    assert (await gateway.generate(key, IMAGE)).status_code == 200
    assert (await gateway.generate(key, IMAGE)).status_code == 200
    over = await gateway.generate(key, IMAGE)
    assert over.status_code == 402
    details = over.json()["details"]
    assert (details["cap"], details["spent"], details["window"]) == (20, 16, "month")
    assert details["resetsAt"] == caps.window("month", datetime.now(UTC)).resets_at.isoformat().replace("+00:00", "Z")


async def test_a_price_above_the_cap_is_refused_before_anything(gateway: Gateway) -> None:
    owner = await gateway.tenant(credits=1000)
    key = await capped_key(gateway.db_url, owner.org_id, daily=100)
    video = await gateway.generate(key, {"prompt": "too dear", "model": "text-to-video"})
    assert video.status_code == 402
    assert video.json()["details"] == {
        "cap": 100,
        "spent": 0,
        "window": "day",
        "resetsAt": caps.window("day", datetime.now(UTC)).resets_at.isoformat().replace("+00:00", "Z"),
    }
    assert await _balance(gateway, owner) == 1000
    assert await _jobs_of(gateway.db_url, key.key_id) == 0


async def test_windows_reset_and_a_late_refund_lends_the_new_window_nothing(gateway: Gateway) -> None:
    """Yesterday's spend is its own row: today starts from nothing, and giving back a charge of yesterday
    changes yesterday's row only."""
    owner = await gateway.tenant(credits=1000)
    key = await capped_key(gateway.db_url, owner.org_id, daily=8)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    db = Database(gateway.db_url)
    try:
        async with db.transaction() as session:
            session.add(KeySpend(key_id=key.key_id, period=caps.window("day", yesterday).period, spent=8))
        assert (await gateway.generate(key, IMAGE)).status_code == 200  # a new day: a full cap again
        assert (await gateway.generate(key, IMAGE)).status_code == 402
        async with db.transaction() as session:
            await caps.give_back(session, key.key_id, 8, yesterday)
        async with db.reader() as session:
            spent = dict((await session.execute(select(KeySpend.period, KeySpend.spent))).all())
        assert spent == {caps.window("day", yesterday).period: 0, caps.window("day", datetime.now(UTC)).period: 8}
    finally:
        await db.dispose()
    assert (await gateway.generate(key, IMAGE)).status_code == 402


def test_windows_are_utc_days_and_months() -> None:
    late = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert caps.window("day", late).period == "2026-12-31"
    assert caps.window("day", late).resets_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert caps.window("month", late).period == "2026-12"
    assert caps.window("month", late).resets_at == datetime(2027, 1, 1, tzinfo=UTC)
    elsewhere = datetime(2026, 3, 1, 0, 30, tzinfo=UTC).astimezone(ZoneInfo("America/New_York"))
    assert caps.window("month", elsewhere).period == "2026-03"  # still February in New York: UTC decides
    assert caps.window("month", datetime(2026, 2, 10, tzinfo=UTC)).resets_at == datetime(2026, 3, 1, tzinfo=UTC)
