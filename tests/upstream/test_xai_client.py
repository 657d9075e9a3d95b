"""The xAI client at the edges the sandbox cannot show: a connection dropped after the request was sent, a peer that
never answers, an answer cut off halfway, and nobody listening at all. Each is a real socket on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from grokgate.upstream.base import ImageRequest, SubmitOutcomeUnknown, UpstreamError, VideoRequest
from grokgate.upstream.xai import XaiUpstream
from tests.support import free_port


class RawServer:
    """A TCP server that reads a request and then misbehaves as told; counts the requests it saw."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.requests = 0
        self.server: asyncio.Server | None = None
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.requests += 1
        if self.behaviour == "hang":
            await asyncio.sleep(30)
        if self.behaviour == "half":  # the answer begins, then the connection is cut
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"id":')
            await writer.drain()
        writer.close()  # "drop": the request arrived, no answer ever leaves

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture(params=["drop", "hang", "half"])
async def misbehaving(request: pytest.FixtureRequest) -> AsyncIterator[RawServer]:
    async with RawServer(request.param) as server:
        yield server


async def test_submit_with_unknown_outcome_is_not_repeated(misbehaving: RawServer) -> None:
    client = XaiUpstream(misbehaving.url, "k", timeout=0.3, retries=3, backoff=0.01)
    try:
        with pytest.raises(SubmitOutcomeUnknown):
            await client.submit_video(VideoRequest(prompt="p", duration=6))
        with pytest.raises(SubmitOutcomeUnknown):
            await client.generate_image(ImageRequest(prompt="p"))
    finally:
        await client.aclose()
    assert misbehaving.requests == 2


async def test_polls_are_retried_then_reported(misbehaving: RawServer) -> None:
    client = XaiUpstream(misbehaving.url, "k", timeout=0.3, retries=3, backoff=0.01)
    try:
        with pytest.raises(UpstreamError):
            await client.poll_video("abc")
    finally:
        await client.aclose()
    # A GET whose connection closes before any answer is sent once more by aiohttp itself (RFC 9112's retry of an
    # idempotent request), inside each of our three attempts; a submit never is (above).
    assert misbehaving.requests == (6 if misbehaving.behaviour == "drop" else 3)


async def test_nobody_listening_is_retried_then_an_upstream_error() -> None:
    client = XaiUpstream(f"http://127.0.0.1:{free_port()}/v1", "k", timeout=1, retries=2, backoff=0.01)
    try:
        with pytest.raises(UpstreamError) as caught:
            await client.submit_video(VideoRequest(prompt="p", duration=6))
        assert not isinstance(caught.value, SubmitOutcomeUnknown)
    finally:
        await client.aclose()
