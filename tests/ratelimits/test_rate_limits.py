"""Plans and rate limits: per-window limits with headers, the concurrent-jobs limit, and nothing charged on a 429."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Sandbox
from tests.e2e.process import GatewayProcess, gateway_env
from tests.support import assert_money_exact, counts, free_port, make_tenant

TINY = {"default": {"rpm": 3, "rph": 100, "rpd": 1000, "concurrent": 2}}


async def test_over_the_minute_limit_is_429_with_headers_and_no_charge(
    gateway_factory: Callable[..., Any], sandbox: Sandbox
) -> None:
    async with gateway_factory(plans=TINY) as gw:
        tenant = await gw.tenant()
        remaining = []
        for i in range(3):
            response = await gw.generate(tenant, {"prompt": f"ok {i}", "model": "text-to-image"})
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "3"
            remaining.append(int(response.headers["x-ratelimit-remaining"]))
            assert 0 <= int(response.headers["x-ratelimit-reset"]) <= 60
        assert remaining == [2, 1, 0]
        before = await counts(gw.db_url)
        limited = await gw.generate(tenant, {"prompt": "one too many", "model": "text-to-image"})
        assert limited.status_code == 429
        body = limited.json()
        assert body["code"] == "RATE_LIMIT_EXCEEDED"
        assert body["details"]["limits"] == {"type": "minute", "limit": 3, "used": 3}
        assert 1 <= body["details"]["retryAfter"] <= 60
        assert limited.headers["retry-after"] == str(body["details"]["retryAfter"])
        assert limited.headers["x-ratelimit-remaining"] == "0"
        assert await counts(gw.db_url) == before
        assert len(await sandbox.requests("/v1/images/")) == 3
        # Another organisation has its own count.
        other = await gw.tenant(name="other")
        assert (await gw.generate(other, {"prompt": "mine", "model": "text-to-image"})).status_code == 200


async def test_concurrent_jobs_limit(gateway_factory: Callable[..., Any]) -> None:
    async with gateway_factory(plans={"default": {"rpm": 100, "rph": 100, "rpd": 100, "concurrent": 2}}) as gw:
        tenant = await gw.tenant(credits=1000)
        for i in range(2):
            response = await gw.generate(tenant, {"prompt": f"long {i} [sandbox:never]", "duration": 1})
            assert response.status_code == 202
        before = await counts(gw.db_url)
        third = await gw.generate(tenant, {"prompt": "third", "duration": 1})
        assert third.status_code == 429
        assert third.json()["details"]["limits"] == {"type": "concurrent", "limit": 2, "used": 2}
        assert await counts(gw.db_url) == before
        organization = (await gw.client.get("/api/v1/organization", headers=tenant.headers)).json()
        assert organization["creditsRemaining"] == 1000 - 300


async def test_the_concurrent_limit_holds_against_a_burst(gateway_factory: Callable[..., Any]) -> None:
    """Twenty submissions of one organisation at once: the charge's lock orders them, so the count each job's
    INSERT is made on already holds every job committed before it, and exactly the plan's three get in."""
    async with gateway_factory(plans={"default": {"rpm": 100, "rph": 100, "rpd": 100, "concurrent": 3}}) as gw:
        tenant = await gw.tenant(credits=10_000)
        answers = await asyncio.gather(
            *(gw.generate(tenant, {"prompt": f"burst {i} [sandbox:never]", "duration": 1}) for i in range(20))
        )
        assert sorted(answer.status_code for answer in answers) == [202] * 3 + [429] * 17
        organization = (await gw.client.get("/api/v1/organization", headers=tenant.headers)).json()
        assert organization["creditsRemaining"] == 10_000 - 3 * 150
        await assert_money_exact(gw.db_url)


async def test_account_endpoints(gateway_factory: Callable[..., Any]) -> None:
    async with gateway_factory() as gw:
        tenant = await gw.tenant(credits=500, name="Acme")
        await gw.generate(tenant, {"prompt": "i", "model": "text-to-image"})
        await gw.generate(tenant, {"prompt": "x [sandbox:reject]", "model": "text-to-image"})
        organization = (await gw.client.get("/api/v1/organization", headers=tenant.headers)).json()
        assert set(organization) == {"id", "name", "plan", "creditsRemaining", "createdAt", "updatedAt"}
        assert (organization["id"], organization["name"], organization["plan"]) == (tenant.org_id, "Acme", "default")
        assert organization["creditsRemaining"] == 492
        limits = (await gw.client.get("/api/v1/account/rate-limits", headers=tenant.headers)).json()
        assert limits["plan"] == "default"
        assert limits["limits"] == {"rpm": 600, "rph": 10_000, "rpd": 100_000, "concurrent": 100, "waiters": 20}
        assert limits["usage"]["minute"] >= 4
        assert set(limits["usage"]) == {"minute", "hour", "day"}
        assert limits["timestamp"]
        ledger = (await gw.client.get("/api/v1/ledger?limit=10", headers=tenant.headers)).json()
        assert [entry["kind"] for entry in ledger["entries"]] == ["refund", "charge", "charge", "grant"]
        assert [entry["amount"] for entry in ledger["entries"]] == [8, -8, -8, 500]
        assert ledger["total"] == 4
        assert sum(entry["amount"] for entry in ledger["entries"]) == organization["creditsRemaining"]
        page = (await gw.client.get("/api/v1/ledger?limit=1&offset=3", headers=tenant.headers)).json()
        assert [entry["kind"] for entry in page["entries"]] == ["grant"]


async def test_limiter_store_down_fails_open_or_closed(gateway_factory: Callable[..., Any]) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with gateway_factory(redis_url=dead) as gw:
        tenant = await gw.tenant()
        assert (await gw.generate(tenant, {"prompt": "open", "model": "text-to-image"})).status_code == 200
    async with gateway_factory(redis_url=dead, rate_limit_fail_open=False) as gw:
        tenant = await gw.tenant()
        before = await counts(gw.db_url)
        response = await gw.generate(tenant, {"prompt": "closed", "model": "text-to-image"})
        assert (response.status_code, response.json()["code"]) == (503, "RATE_LIMITER_UNAVAILABLE")
        assert await counts(gw.db_url) == before


@pytest.mark.e2e
async def test_two_processes_share_one_count_through_redis(db_url: str, sandbox: Sandbox, tmp_path: Path) -> None:
    env = gateway_env(
        db_url,
        sandbox.url,
        GROKGATE_REDIS_URL="redis://127.0.0.1:6379/0",
        GROKGATE_PLANS='{"default": {"rpm": 4, "rph": 100, "rpd": 100, "concurrent": 10}}',
    )
    tenant = await make_tenant(db_url)
    first = await GatewayProcess(env, tmp_path / "a.log").start()
    second = await GatewayProcess(env, tmp_path / "b.log").start()
    try:
        statuses = []
        async with httpx.AsyncClient(timeout=30) as client:
            for i in range(6):
                server = (first, second)[i % 2]
                response = await client.get(f"{server.url}/api/v1/organization", headers=tenant.headers)
                statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 200, 429, 429]
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_a_burst_never_gets_past_a_window(gateway_factory: Callable[..., Any], store: str) -> None:
    """Thirty requests of one organisation at once against 5 a minute: five pass, whichever store counts."""
    redis_url = "redis://127.0.0.1:6379/0" if store == "redis" else None
    plans = {"default": {"rpm": 5, "rph": 100, "rpd": 100, "concurrent": 10}}
    async with gateway_factory(plans=plans, redis_url=redis_url) as gw:
        tenant = await gw.tenant()
        answers = await asyncio.gather(
            *(gw.client.get("/api/v1/organization", headers=tenant.headers) for _ in range(30))
        )
        assert sorted(answer.status_code for answer in answers) == [200] * 5 + [429] * 25
