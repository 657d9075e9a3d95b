"""What a hostile customer tries at the edges: oversized headers in one write, webhook URLs that reach inside,
credit amounts past what the database holds, and business totals on a public `/metrics`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import Sandbox
from tests.e2e.process import GatewayProcess, gateway_env


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
