"""A TCP forwarder in front of the gateway that records each request's Idempotency-Key and can cut the first
answers: the gateway does the work and answers, the client sees its connection drop before any byte of it."""

from __future__ import annotations

import asyncio
import contextlib
import re

from tests.support import free_socket

_KEY = re.compile(rb"\r\nidempotency-key: *([^\r\n]*)\r\n", re.IGNORECASE)


class CuttingProxy:
    def __init__(self, target_port: int, *, cut_answers: int = 0) -> None:
        self.target_port = target_port
        self.to_cut = cut_answers
        self.cut = 0
        self.requests: list[bytes] = []
        self._sock = free_socket()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server: asyncio.Server | None = None

    @property
    def keys(self) -> list[str]:
        """The Idempotency-Key of every request that carried one, in order."""
        return [key.decode() for raw in self.requests for key in _KEY.findall(raw)]

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._serve, sock=self._sock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        index = len(self.requests)
        self.requests.append(b"")

        async def up() -> None:
            with contextlib.suppress(OSError):
                while data := await client_reader.read(65536):
                    self.requests[index] += data
                    upstream_writer.write(data)
                    await upstream_writer.drain()
            upstream_writer.transport.abort()

        async def down() -> None:
            with contextlib.suppress(OSError):
                while data := await upstream_reader.read(65536):
                    if self.cut < self.to_cut:
                        self.cut += 1
                        break
                    client_writer.write(data)
                    await client_writer.drain()
            client_writer.transport.abort()
            upstream_writer.transport.abort()

        await asyncio.gather(up(), down())
