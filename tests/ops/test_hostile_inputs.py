"""What a hostile customer tries at the edges: oversized headers in one write, webhook URLs that reach inside,
credit amounts past what the database holds, and business totals on a public `/metrics`."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Gateway, Sandbox
from tests.e2e.process import GROKGATE, GatewayProcess, gateway_env
from tests.support import free_port, make_images, make_tenant, wait_for


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


@pytest.mark.e2e
async def test_headers_past_the_limit_are_431_however_they_arrive(
    db_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The whole request, headers complete, in one write: the size limit holds as it does for a trickle."""
    env = gateway_env(db_url, sandbox.url, GROKGATE_DATA_DIR=str(tmp_path / "data"))
    server = await GatewayProcess(env, tmp_path / "gateway.log").start()
    try:
        for size in (66_000, 100_000, 200_000):
            head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
            answer = await _raw(server.port, head)
            assert answer.startswith(b"HTTP/1.1 431"), (size, answer[:200])
            assert b"HEADERS_TOO_LARGE" in answer
        # Just under the limit is served, in one write or in pieces.
        fits = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + b"a" * 60_000 + b"\r\n\r\n"
        assert (await _raw(server.port, fits)).startswith(b"HTTP/1.1 200")
    finally:
        server.stop()


def _credits_charged(text: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "grokgate_credits_total" and sample.labels == {"kind": "charge"}:
                return float(sample.value)
    return None


async def test_metrics_are_not_public_on_the_api_port_by_default(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    client = gateway.client
    assert await make_images(client, tenant, 1) == [200]
    for headers in ({}, tenant.headers, {"Authorization": "Bearer anything"}):
        response = await client.get("/metrics", headers=headers)
        assert (response.status_code, response.json()["code"]) == (404, "NOT_FOUND")
        assert "grokgate_credits_total" not in response.text
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


async def test_metrics_on_the_api_port_need_the_token(gateway_factory: Callable[..., Any]) -> None:
    async with gateway_factory(metrics_token="s3cret") as gateway:
        tenant = await gateway.tenant()
        client = gateway.client
        assert await make_images(client, tenant, 1) == [200]
        refusals = {
            "MISSING_AUTH": [{}, {"Authorization": "Basic czNjcmV0"}],
            "KEY_NOT_FOUND": [{"Authorization": "Bearer s3cre"}, tenant.headers],
        }
        for code, attempts in refusals.items():
            for headers in attempts:
                response = await client.get("/metrics", headers=headers)
                assert (response.status_code, response.json()["code"]) == (401, code), headers
                assert set(response.json()) == {"error", "code", "details"}
        scraped = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert scraped.status_code == 200
        assert _credits_charged(scraped.text) == 8
        assert "401" in (await client.get("/openapi.json")).json()["paths"]["/metrics"]["get"]["responses"]


async def _scrape_until(url: str, check: Callable[[str], bool]) -> str:
    async with httpx.AsyncClient(timeout=10) as client:

        async def scraped() -> str | None:
            text = (await client.get(url)).text
            return text if check(text) else None

        found: str = await wait_for(scraped, what=f"{url} to report")
        return found


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [1, 2])
async def test_metrics_on_their_own_loopback_port(db_url: str, sandbox: Sandbox, tmp_path: Path, workers: int) -> None:
    """`serve --metrics-port` (one process, or the parent of several adding theirs up): the API port has no
    /metrics, the metrics port on 127.0.0.1 has them all, backlog gauges included."""
    tenant = await make_tenant(db_url)
    metrics_port = free_port()
    env = gateway_env(db_url, sandbox.url, GROKGATE_DATA_DIR=str(tmp_path / "data"))
    port = free_port()
    log = (tmp_path / "serve.log").open("ab")
    args = ["serve", "--port", str(port), "--workers", str(workers), "--metrics-port", str(metrics_port)]
    proc = subprocess.Popen([GROKGATE, *args], env=env, stdout=log, stderr=log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            async def ready() -> bool:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(ready, timeout=60, what="the server")
            assert await make_images(client, tenant, 4) == [200] * 4
            assert (await client.get("/metrics")).status_code == 404
        text = await _scrape_until(
            f"http://127.0.0.1:{metrics_port}/metrics",
            lambda text: _credits_charged(text) == 32 and "grokgate_jobs_active" in text,
        )
        assert "grokgate_http_requests_total" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
