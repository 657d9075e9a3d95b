"""Small ASGI middlewares around every answer: rate-limit headers, and the request-size limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def adding_headers(send: Send, extra: Callable[[], list[tuple[bytes, bytes]]]) -> Send:
    """`send`, with the headers `extra()` gives appended to the response start (names not already present)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            message["headers"] = headers + [(name, value) for name, value in extra() if name not in present]
        await send(message)

    return wrapped


class RateLimitHeaders:
    """Adds the rate-limit headers computed during a request to its answer, whatever the answer is (errors too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        def extra() -> list[tuple[bytes, bytes]]:
            found = scope.get("state", {}).get("rate_headers") or {}
            return [(name.lower().encode(), value.encode()) for name, value in found.items()]

        await self.app(scope, receive, adding_headers(send, extra))


class BodyLimit:
    """Refuses request bodies over `limit` bytes with 413, before they are read into memory: by `Content-Length`
    at once, and by counting for bodies sent without one. A body that is still arriving `timeout` seconds after
    the request began is cut off with 408, so a client trickling its body cannot keep a request open for ever
    (the headers have their own deadline in `api/slowclients.py`). Once the body is complete, `receive` is left
    alone: streaming responses wait on it for the client to go away."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float = 120.0) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def _refuse(self, send: Send, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message, "code": code, "details": {}}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 408:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _too_large(self, send: Send) -> None:
        await self._refuse(send, 413, "PAYLOAD_TOO_LARGE", f"Request body is larger than {self.limit} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        received = 0
        complete = False
        deadline = asyncio.get_running_loop().time() + self.timeout

        async def counting() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _TooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
                complete = not message.get("more_body", False)
            return message

        try:
            await self.app(scope, counting, send)
        except _TooLarge:
            await self._too_large(send)
        except _TooSlow:
            await self._refuse(
                send, 408, "REQUEST_TIMEOUT", f"The request body did not arrive within {self.timeout:g} s"
            )


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass
