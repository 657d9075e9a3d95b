"""Prometheus metrics of one app: HTTP requests, upstream calls, polls, database use, credits.

Each app builds its own registry (no module-level metrics), so several apps in one test process do not collide.
Database connections are counted with pool events: `in use` now, and the most ever in use at once, which is how
the benchmark proves no connection is held while xAI works.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("grokgate_http_requests_total", "HTTP requests", ["route", "status"], registry=r)
        self.latency = Histogram(
            "grokgate_http_request_seconds", "HTTP request latency", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.upstream = Counter("grokgate_upstream_calls_total", "Calls to xAI", ["endpoint", "outcome"], registry=r)
        self.jobs_finished = Counter("grokgate_jobs_finished_total", "Jobs ended", ["status"], registry=r)
        self.credits = Counter("grokgate_credits_total", "Credits moved", ["kind"], registry=r)
        self.db_in_use = Gauge("grokgate_db_connections_in_use", "Connections checked out now", registry=r)
        self.db_max = Gauge("grokgate_db_connections_max", "Most connections checked out at once", registry=r)
        self.db_statements = Counter("grokgate_db_statements_total", "SQL statements executed", registry=r)
        self._in_use = 0
        self._most = 0

    def watch(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine

        @event.listens_for(sync.pool, "checkout")
        def _checkout(*_: Any) -> None:
            self._in_use += 1
            self.db_in_use.set(self._in_use)
            if self._in_use > self._most:
                self._most = self._in_use
                self.db_max.set(self._most)

        @event.listens_for(sync.pool, "checkin")
        def _checkin(*_: Any) -> None:
            self._in_use -= 1
            self.db_in_use.set(self._in_use)

        @event.listens_for(sync, "before_cursor_execute")
        def _statement(*_: Any) -> None:
            self.db_statements.inc()

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


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
