"""The HTTP client under every call grokgate makes to xAI: its REST API (`xai.py`) and the downloads of its results
(`storage/ingest.py`). aiohttp's client is used directly: its pool and C parser, and no second library's request and
response objects on top (through httpx, with aiohttp as its transport, those cost about as much CPU as the wire).
"""

from __future__ import annotations

import aiohttp

KEEPALIVE_SECONDS = 4.0
"""How long an idle connection is kept for reuse: below the 5 s after which uvicorn (the sandbox, a gateway in front
of another) and other servers with short idle timeouts close theirs. Reusing a connection the server is closing at
that moment fails a POST in a way that cannot be told from one the server received, so it is never retried."""


def timeouts(seconds: float) -> aiohttp.ClientTimeout:
    """`seconds` to get a connection from the pool and between two reads, at most 10 s to connect; no bound on the
    whole (a large video may take long to download while bytes keep coming)."""
    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_connect=min(10.0, seconds), sock_read=seconds)


class LazySession:
    """An aiohttp session made on first use: aiohttp binds a session to the running event loop, and what holds one
    (the xAI client, the ingestor) is built before the loop runs. Once closed it stays closed (a call then raises
    aiohttp's RuntimeError), as the httpx client before it did."""

    def __init__(self, *, timeout: float, max_connections: int, headers: dict[str, str] | None = None) -> None:
        self._timeout = timeouts(timeout)
        self._max_connections = max_connections
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None

    def __call__(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=KEEPALIVE_SECONDS),
                headers=self._headers,
                timeout=self._timeout,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
