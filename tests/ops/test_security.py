"""One organisation can never reach another's jobs, media links or ledger; keys never appear in clear in the
database or the logs; request bodies and headers have size limits and deadlines, so slow clients cannot hold
the server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from grokgate.db.engine import Database
from tests.conftest import Gateway, Sandbox
from tests.e2e.process import GatewayProcess, gateway_env
from tests.support import counts, make_images, make_tenant, wait_job

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
    secret = tenant.key.split("_", 2)[2]  # gg_<key id>_<secret>; the secret itself may contain "_"
    job_id = (await gateway.generate(tenant, {"prompt": "logged", "duration": 1})).json()["jobId"]
    await wait_job(gateway.client, tenant, job_id)
    db = Database(gateway.db_url)
    try:
        async with db.reader() as session:
            for table in ("api_keys", "jobs", "ledger_entries", "idempotency_keys", "webhook_deliveries"):
                rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
                assert tenant.key not in repr(rows), table
                assert secret not in repr(rows), table
    finally:
        await db.dispose()
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err


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


@pytest.mark.e2e
async def test_slow_and_oversized_clients_cannot_hold_the_server(db_url: str, sandbox: Sandbox, tmp_path: Path) -> None:
    """A real `grokgate serve` process (one worker): 200 slow-loris connections trickle headers that never end,
    while other customers are served; the slow ones get 408 and are closed, oversized headers get 431, a body
    that stalls gets 408, and none of it creates a job or moves a credit."""
    env = gateway_env(
        db_url,
        sandbox.url,
        GROKGATE_HEADER_TIMEOUT="1",
        GROKGATE_BODY_TIMEOUT="1",
        GROKGATE_MAX_HEADER_BYTES="8192",
        GROKGATE_DATA_DIR=str(tmp_path / "data"),
    )
    tenant = await make_tenant(db_url)
    server = await GatewayProcess(env, tmp_path / "gateway.log").start()
    try:
        host, port = "127.0.0.1", server.port
        stop_trickling = asyncio.Event()

        async def slow_loris() -> bytes:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            try:
                while not stop_trickling.is_set():
                    await writer.drain()
                    writer.write(b"X-Slow: 1\r\n")
                    try:
                        # read(n) loses nothing when the wait runs out first (read() would drop what it had read).
                        first = await asyncio.wait_for(reader.read(65536), 0.2)
                    except TimeoutError:
                        continue
                    return first + await reader.read()  # the answer, then EOF
                return b""
            except ConnectionError:
                return b"reset"
            finally:
                writer.close()

        lorises = [asyncio.create_task(slow_loris()) for _ in range(200)]
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            before = await counts(db_url)
            assert await make_images(client, tenant, 10, "busy") == [200] * 10
            answers = await asyncio.wait_for(asyncio.gather(*lorises), 30)
            stop_trickling.set()
            assert all(a.startswith(b"HTTP/1.1 408") and b"REQUEST_TIMEOUT" in a for a in answers), answers[:3]

            # Headers past the limit: 431 at once, whatever they are still to become.
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000)
            assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 431")
            writer.close()

            # A body that stalls after its first bytes: 408, and nothing was created or charged.
            reader, writer = await asyncio.open_connection(host, port)
            head = f"POST /api/v1/models/grok-imagine HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tenant.key}\r\n"
            writer.write(head.encode() + b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"pro')
            stalled = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert stalled.startswith(b"HTTP/1.1 408"), stalled
            assert b"REQUEST_TIMEOUT" in stalled
            after = await counts(db_url)
            assert after["jobs"] == before["jobs"] + 10
            assert after["ledger_entries"] == before["ledger_entries"] + 10

            # A connection that never says anything is closed too.
            reader, writer = await asyncio.open_connection(host, port)
            assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 408")
            writer.close()
            # And the server still answers.
            assert (await client.get("/healthz")).status_code == 200
    finally:
        server.stop()
