"""The middleware that counts and times HTTP requests into the process's `Metrics` (see `grokgate/metrics.py`)."""

from __future__ import annotations

from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grokgate.metrics import Metrics


class RequestMetrics:
    """Counts and times every HTTP request by route template (not raw path, which would explode cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or (
                "/media/{mediaId}" if scope["path"].startswith("/media/") else "other"
            )
            self.metrics.requests.labels(name, str(status)).inc()
            self.metrics.latency.labels(name).observe(perf_counter() - started)
