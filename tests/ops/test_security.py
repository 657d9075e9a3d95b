"""One organisation can never reach another's jobs, media links or ledger; keys never appear in clear in the
database or the logs; request bodies have a size limit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text

from grokgate.db.engine import Database
from tests.conftest import Gateway
from tests.support import counts, wait_job

JOB_ROUTES = [
    ("GET", "/api/v1/jobs/{id}"),
    ("DELETE", "/api/v1/jobs/{id}"),
    ("GET", "/api/v1/jobs/{id}/events"),
    ("GET", "/api/v1/jobs/{id}/deliveries"),
    ("GET", "/api/v1/jobs/{id}/media"),
]


@pytest.mark.parametrize(("method", "route"), JOB_ROUTES)
async def test_another_organisations_job_is_404_on_every_route(gateway: Gateway, method: str, route: str) -> None:
    owner = await gateway.tenant(name="owner")
    stranger = await gateway.tenant(name="stranger")
    job_id = (await gateway.generate(owner, {"prompt": "mine [sandbox:never]", "duration": 1})).json()["jobId"]
    response = await gateway.client.request(method, route.format(id=job_id), headers=stranger.headers)
    assert (response.status_code, response.json()["code"]) == (404, "JOB_NOT_FOUND")
    assert (await gateway.client.get(f"/api/v1/jobs/{job_id}", headers=owner.headers)).json()["status"] != "cancelled"


async def test_lists_and_ledger_show_only_your_own(gateway: Gateway) -> None:
    owner = await gateway.tenant(name="owner")
    stranger = await gateway.tenant(name="stranger")
    await gateway.generate(owner, {"prompt": "mine", "model": "text-to-image"})
    jobs = (await gateway.client.get("/api/v1/jobs", headers=stranger.headers)).json()
    assert jobs["total"] == 0
    ledger = (await gateway.client.get("/api/v1/ledger", headers=stranger.headers)).json()
    assert [entry["kind"] for entry in ledger["entries"]] == ["grant"]


async def test_keys_are_never_stored_or_logged_in_clear(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    tenant = await gateway.tenant()
    job_id = (await gateway.generate(tenant, {"prompt": "logged", "duration": 1})).json()["jobId"]
    await wait_job(gateway.client, tenant, job_id)
    db = Database(gateway.db_url)
    try:
        async with db.reader() as session:
            for table in ("api_keys", "jobs", "ledger_entries", "idempotency_keys", "webhook_deliveries"):
                rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
                assert tenant.key not in repr(rows), table
                assert tenant.key.rsplit("_", 1)[1] not in repr(rows), table
    finally:
        await db.dispose()
    captured = capsys.readouterr()
    assert tenant.key.rsplit("_", 1)[1] not in captured.out + captured.err


@pytest.fixture
async def small_gateway(gateway_factory: Callable[..., Any]) -> AsyncIterator[Gateway]:
    async with gateway_factory(max_image_url_bytes=1000) as gw:
        yield gw


async def test_oversized_bodies_are_413_and_change_nothing(small_gateway: Gateway) -> None:
    tenant = await small_gateway.tenant()
    before = await counts(small_gateway.db_url)
    big = {"prompt": "x" * 3_000_000, "model": "text-to-image"}
    response = await small_gateway.generate(tenant, big)
    assert (response.status_code, response.json()["code"]) == (413, "PAYLOAD_TOO_LARGE")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536

    streamed = await small_gateway.client.post(
        "/api/v1/models/grok-imagine", content=chunks(), headers={**tenant.headers, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert await counts(small_gateway.db_url) == before
