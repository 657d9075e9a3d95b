"""A webhook receiver for tests: a real HTTP server on loopback that records what it gets and can fail on purpose."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    fail_first: int = 0
    received: list[Received] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            status = 500 if len(self.received) < self.fail_first else 204
            self.received.append(Received(dict(request.headers), body, status))
            return Response(status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    @property
    def accepted(self) -> list[Received]:
        return [item for item in self.received if item.answered < 300]

    def payloads(self) -> list[Any]:
        import json

        return [json.loads(item.body) for item in self.accepted]
