"""Every credit amount, and every balance a grant makes, stays within `MAX_CREDITS`, which both databases hold
exactly: past it, a clear error names the field and nothing changes."""

from __future__ import annotations

import asyncio
import json

import pytest

from grokgate.billing.amounts import MAX_CREDITS, MAX_PRICE
from grokgate.db.engine import Database
from grokgate.errors import ApiError
from grokgate.orgs import service as orgs
from tests.conftest import Gateway
from tests.e2e.process import clean_env, run_cli
from tests.support import counts

MAX = MAX_CREDITS


def cli(*args: str, env: dict[str, str]) -> tuple[int, dict[str, object] | str]:
    """Exit status, and the JSON answer or the one error line."""
    result = run_cli(*args, "--json", env=env)
    if result.returncode == 0:
        return 0, json.loads(result.stdout)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.returncode, result.stderr.strip()


async def acli(*args: str, env: dict[str, str]) -> tuple[int, dict[str, object] | str]:
    """`cli` off the event loop, which serves the in-process gateway meanwhile."""
    return await asyncio.to_thread(cli, *args, env=env)


@pytest.mark.parametrize("credits", [str(2**63 - 1), str(2**63), str(MAX + 1)])
async def test_create_org_refuses_credits_past_the_maximum(db_url: str, credits: str) -> None:
    env = clean_env(GROKGATE_DATABASE_URL=db_url)
    before = await counts(db_url)
    status, error = cli("admin", "create-org", "--name", "Huge", "--credits", credits, env=env)
    assert status != 0
    assert "credits" in str(error)
    assert "Overflow" not in str(error)
    assert str(MAX) in str(error)
    assert await counts(db_url) == before


async def test_a_grant_past_the_maximum_balance_changes_nothing(gateway: Gateway) -> None:
    env = clean_env(GROKGATE_DATABASE_URL=gateway.db_url)
    status, org = await acli("admin", "create-org", "--name", "Full", "--credits", str(MAX), env=env)
    assert status == 0
    assert isinstance(org, dict)
    org_id = str(org["id"])
    before = await counts(gateway.db_url)
    for credits in ("1", str(2**63), str(MAX)):
        status, error = await acli("admin", "add-credits", "--org", org_id, "--credits", credits, env=env)
        assert status != 0
        assert "credits" in str(error), error
        assert str(MAX) in str(error), error
    assert await counts(gateway.db_url) == before
    assert await acli("admin", "balance", "--org", org_id, env=env) == (0, {"creditsRemaining": MAX, "ledgerSum": MAX})

    # The balance is still an exact integer: a charge takes exactly its price.
    status, key = await acli("admin", "create-key", "--org", org_id, env=env)
    assert status == 0
    assert isinstance(key, dict)
    headers = {"Authorization": f"Bearer {key['key']}"}
    made = await gateway.client.post(
        "/api/v1/models/grok-imagine", json={"prompt": "p", "model": "text-to-image"}, headers=headers
    )
    assert made.status_code == 200, made.text
    shown = (await gateway.client.get("/api/v1/organization", headers=headers)).json()
    assert shown["creditsRemaining"] == MAX - 8
    assert await acli("admin", "balance", "--org", org_id, env=env) == (
        0,
        {"creditsRemaining": MAX - 8, "ledgerSum": MAX - 8},
    )
    # Up to the maximum again is allowed; one more is not.
    assert (await acli("admin", "add-credits", "--org", org_id, "--credits", "8", env=env))[0] == 0
    assert (await acli("admin", "add-credits", "--org", org_id, "--credits", "1", env=env))[0] != 0


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("GROKGATE_PRICES", json.dumps({"text-to-image": MAX_PRICE + 1}), "prices"),
        ("GROKGATE_PRICES", json.dumps({"text-to-image": 2**63}), "prices"),
        ("GROKGATE_DEMO_CREDITS", str(MAX + 1), "demo_credits"),
        ("GROKGATE_DEMO_CREDITS", "-1", "demo_credits"),
        ("GROKGATE_PLANS", json.dumps({"pro": {"rpm": 2**63, "rph": 1, "rpd": 1, "concurrent": 1}}), "rpm"),
    ],
)
def test_configured_amounts_are_bounded(db_url: str, variable: str, value: str, field: str) -> None:
    env = clean_env(GROKGATE_DATABASE_URL=db_url, **{variable: value})
    status, error = cli("admin", "create-org", "--name", "X", env=env)
    assert status != 0
    assert "invalid configuration" in str(error), error
    assert field in str(error), error


# Grants stop at MAX_CREDITS, charges and refunds at MAX_PRICE: MAX + 1 is past both.
@pytest.mark.parametrize("amount", [0, -1, MAX + 1, 2**63])
async def test_the_ledger_refuses_amounts_out_of_range(db_url: str, amount: int) -> None:
    from grokgate.billing import ledger

    db = Database(db_url)
    try:
        async with db.transaction() as session:
            org = await orgs.create_org(session, "bounded", 100)
        before = await counts(db_url)
        for move in (
            lambda s: ledger.grant(s, org.id, amount),
            lambda s: ledger.charge(s, org.id, "job_x", amount),
            lambda s: ledger.refund(s, org.id, "job_x", amount),
        ):
            with pytest.raises(ApiError) as refused:
                async with db.transaction() as session:
                    await move(session)
            assert refused.value.status == 400
            assert refused.value.details == {"field": "credits"}
        assert await counts(db_url) == before
    finally:
        await db.dispose()
