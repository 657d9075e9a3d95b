"""Slow and oversized clients at the HTTP layer: what uvicorn leaves to the deployment, done in the process.

uvicorn closes an idle keep-alive connection, but a connection that opened and sends its request line and headers
a byte at a time (slow loris) is kept for ever, and header size is bounded only by what the parser accepts. Each
such connection costs a file descriptor and parser state, not a worker (the event loop keeps serving everyone
else), but enough of them exhaust the descriptors. `GuardedHttpProtocol` is uvicorn's own httptools protocol with
two limits added:

- the request line and headers must arrive within `header_timeout` seconds of the connection opening or of the
  request's first byte, else 408 and the connection is closed;
- they must fit in `max_header_bytes`, else 431 and the connection is closed. The parser is fed at most one
  byte more than the room left, so the limit holds however the bytes arrive: a trickle, or a whole oversized
  request in one write (which the parser would otherwise take in one call, headers complete, before any check).
  A request pipelined behind another inside one such piece is counted from the next piece, so it is bounded by
  twice the limit.

A refusal is written, then the sending side is shut and what the client still sends is read and dropped for up to
`LINGER_SECONDS` before the connection is closed: closing a socket with unread bytes in it resets the connection,
and the reset can destroy the refusal before the client reads it.

The body has its own deadline in `api/headers.BodyLimit`. `grokgate serve` passes the class to uvicorn with the
configured limits (`functools.partial`, which pickles, so `--workers` processes get it too).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LINGER_SECONDS = 2.0
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def _refusal(status: int, code: str, message: str) -> bytes:
    body = json.dumps({"error": message, "code": code, "details": {}}).encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class GuardedHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, header_timeout: float = 10.0, max_header_bytes: int = 64 * 1024, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self._awaiting_headers = True
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        while data and not self._refused:
            if not self._awaiting_headers:
                super().data_received(data)
                return
            room = self.max_header_bytes - self._header_bytes + 1
            piece, data = data[:room], data[room:]
            self._header_bytes += len(piece)
            super().data_received(piece)
            if self._refused or self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # refused (by us or by the parser), or handed to a WebSocket protocol
            # Still no end of headers after this piece, and already past the limit: refuse without reading on.
            if self._awaiting_headers and self._header_bytes > self.max_header_bytes:
                self._refuse(431, "HEADERS_TOO_LARGE", f"Request line and headers exceed {self.max_header_bytes} bytes")
                return

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._awaiting_headers:  # the next request on a kept-alive connection
            self._awaiting_headers = True
            self._header_bytes = 0
            self._arm()

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self._refused and not self.transport.is_closing():
            self._refuse(408, "REQUEST_TIMEOUT", f"Request headers did not arrive within {self.header_timeout:g} s")

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.logger.warning("Refused a client: %s", message)
        self._refused = True
        self._disarm()
        self.transport.write(_refusal(status, code, message))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._header_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)
