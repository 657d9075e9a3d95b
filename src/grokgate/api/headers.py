"""Small ASGI middlewares around every answer: rate-limit headers, and the request-size limit."""

from __future__ import annotations

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
    at once, and by counting for bodies sent without one."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"error": f"Request body is larger than {self.limit} bytes", "code": "PAYLOAD_TOO_LARGE", "details": {}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting, send)
        except _TooLarge:
            await self._refuse(send)


class _TooLarge(Exception):
    pass
