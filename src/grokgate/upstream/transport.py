"""The HTTP transport under the media downloader (`storage/ingest.py`): aiohttp's connection pool and parser,
behind httpx's interface. (The xAI client itself, `xai.py`, calls aiohttp directly.)

httpx's own transport (httpcore over anyio) scans every pooled connection on each request (a readability check,
a system call each) and runs a pure-Python HTTP/1.1 state machine under cancel scopes; with a few hundred calls to
xAI in flight (videos submitted, polled and downloaded at once) that was about a third of the serving loop's CPU
(py-spy). `httpx-aiohttp` keeps httpx's client (URLs, headers, timeouts, the `httpx.Response` the adapter reads)
and hands the wire to aiohttp, whose pool and C parser cost a fraction of that.

One thing is taken back from it: which error a failure becomes. Every failure on the wire comes out as an httpx
`TransportError` (the downloader catches httpx's errors), mid-body included, where the library lets aiohttp's own
through; and the type keeps what is known: the library maps every `aiohttp.ClientConnectionError`, a server that
hung up mid-answer included, to `ConnectTimeout`; here only a connection that was never made is a connect error,
and anything unsure is a `ReadError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NoReturn

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def precise(error: BaseException) -> httpx.TransportError:
    """The httpx error that says what is known of a failure: `error` is aiohttp's, or httpx's with aiohttp's as
    its cause (the library's mapping, which is redone here)."""
    cause = error
    if isinstance(error, httpx.TransportError) and isinstance(error.__cause__, aiohttp.ClientError | TimeoutError):
        cause = error.__cause__
    message = str(cause) or type(cause).__name__
    if isinstance(cause, httpx.TransportError):
        return cause
    if isinstance(cause, aiohttp.ConnectionTimeoutError):  # no connection within the connect (or pool) timeout
        return httpx.ConnectTimeout(message)
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)  # refused, unreachable, no name, no TLS handshake: nothing was sent
    if isinstance(cause, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(message)
    return httpx.ReadError(message)


_FAILURES = (httpx.TransportError, aiohttp.ClientError, TimeoutError)
"""What a call through aiohttp may raise for a failure on the wire: httpx's mapped errors, and aiohttp's own where
the library has no mapping."""


def _reraise(error: BaseException) -> NoReturn:
    translated = precise(error)
    if translated is error:
        raise error
    raise translated from error


class _PreciseStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except _FAILURES as error:
            _reraise(error)

    async def aclose(self) -> None:
        await self._stream.aclose()


KEEPALIVE_SECONDS = 4.0
"""How long an idle connection is kept for reuse: below the 5 s after which uvicorn (the sandbox, a gateway in front
of another) and other servers with short idle timeouts close theirs. Reusing a connection the server is closing at
that moment fails a POST in a way that cannot be told from one the server received, so it is never retried."""


class UpstreamTransport(AiohttpTransport):
    """`AiohttpTransport` with errors that keep the sent/not-sent distinction (see the module's docstring), and idle
    connections let go before common servers drop them."""

    def __init__(self, max_connections: int = 100) -> None:
        super().__init__(limits=httpx.Limits(max_connections=max_connections, keepalive_expiry=KEEPALIVE_SECONDS))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except _FAILURES as error:
            _reraise(error)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _PreciseStream(response.stream)
        return response
