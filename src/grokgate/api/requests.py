"""A request id on every request: taken from `X-Request-ID` when the caller sends a sane one, made up otherwise,
bound to every log line of the request and sent back. Jobs keep it, so their polls log under it too."""

from __future__ import annotations

import re
import secrets

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from grokgate.api.headers import adding_headers

_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE.match(given) else f"req_{secrets.token_hex(8)}"
        scope.setdefault("state", {})["request_id"] = request_id

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, adding_headers(send, lambda: [(b"x-request-id", request_id.encode())]))
