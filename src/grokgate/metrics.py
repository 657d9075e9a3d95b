"""Prometheus metrics of one process: HTTP requests, upstream calls, polls, database use, credits.

The registry lives here, at the ground of the package, so the domains that count things (jobs, webhooks) are
handed a `Metrics` without importing the HTTP layer; `api/metrics.py` holds the middleware that times requests.

Each app builds its own registry (no module-level metrics), so several apps in one test process do not collide.
Database connections are counted with pool events: `in use` now, and the most ever in use at once, which is how
the benchmark proves no connection is held while xAI works.

With several API processes on one port (`grokgate serve --workers N`) a scrape reaches one of them at random, so
prometheus-client's multiprocess mode is used: when `PROMETHEUS_MULTIPROC_DIR` is set (the CLI sets it for
`--workers`), every process writes its values to files in that directory and each scrape adds them all up. Gauges
say how they combine: connections in use are summed over live processes, the backlog read from the shared database
is simply the most recent reading.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from grokgate.db.direct import Hooks

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    def __init__(self) -> None:
        self.shared_dir = os.environ.get(MULTIPROCESS_DIR)
        """Set when this process is one of several whose values a scrape adds up."""
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("grokgate_http_requests_total", "HTTP requests", ["route", "status"], registry=r)
        self.latency = Histogram(
            "grokgate_http_request_seconds", "HTTP request latency", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.upstream = Counter("grokgate_upstream_calls_total", "Calls to xAI", ["endpoint", "outcome"], registry=r)
        self.jobs_finished = Counter("grokgate_jobs_finished_total", "Jobs ended", ["status"], registry=r)
        self.credits = Counter("grokgate_credits_total", "Credits moved", ["kind"], registry=r)
        self.poll_lag = Histogram(
            "grokgate_poll_lag_seconds",
            "How late a video's poll started after it was due",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.webhooks = Counter("grokgate_webhook_attempts_total", "Webhook delivery attempts", ["outcome"], registry=r)
        self.active_jobs = Gauge(
            "grokgate_jobs_active",
            "Jobs not ended yet, by status",
            ["status"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.queue_depth = Gauge(
            "grokgate_queue_depth",
            "Work that is due now: video polls and webhook deliveries",
            ["queue"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.db_in_use = Gauge(
            "grokgate_db_connections_in_use", "Connections checked out now", registry=r, multiprocess_mode="livesum"
        )
        self.db_max = Gauge(
            "grokgate_db_connections_max", "Most connections checked out at once", registry=r, multiprocess_mode="max"
        )
        self.upstream_keys = Gauge(
            "grokgate_upstream_key_up",
            "1 while an xAI key is in rotation, 0 once refused or disabled",
            ["key", "status"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.upstream_submits = Counter(
            "grokgate_upstream_submits_total", "Submissions sent to xAI, by key and kind", ["key", "kind"], registry=r
        )
        self.upstream_waits = Histogram(
            "grokgate_upstream_pace_wait_seconds",
            "How long a submission waited for a key's pace",
            ["kind"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.db_statements = Counter("grokgate_db_statements_total", "SQL statements executed", registry=r)
        self._in_use = 0
        self._most = 0

    def watch(self, engine: AsyncEngine, direct: Hooks | None = None) -> None:
        """Count the engine pool's connections and statements, and those of direct transactions (`db/direct.py`)."""
        sync = engine.sync_engine

        def checkout(*_: Any) -> None:
            self._in_use += 1
            self.db_in_use.set(self._in_use)
            if self._in_use > self._most:
                self._most = self._in_use
                self.db_max.set(self._most)

        def checkin(*_: Any) -> None:
            self._in_use -= 1
            self.db_in_use.set(self._in_use)

        def statement(*_: Any) -> None:
            self.db_statements.inc()

        event.listen(sync.pool, "checkout", checkout)
        event.listen(sync.pool, "checkin", checkin)
        # A connection detached from the pool (kept for direct transactions) is checked in by no one: it leaves the
        # count here and is counted again for each direct transaction, by the hooks below.
        event.listen(sync.pool, "detach", checkin)
        event.listen(sync, "before_cursor_execute", statement)
        if direct is not None:
            direct.checkout, direct.checkin, direct.statement = checkout, checkin, statement

    def record_backlog(self, active: dict[str, int], due: dict[str, int]) -> None:
        for status, count in active.items():
            self.active_jobs.labels(status).set(count)
        for queue, count in due.items():
            self.queue_depth.labels(queue).set(count)

    def exposition(self) -> tuple[bytes, str]:
        if self.shared_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined, path=self.shared_dir)  # type: ignore[no-untyped-call]
        return generate_latest(combined), CONTENT_TYPE_LATEST

    def process_exited(self) -> None:
        """Drop this process's live gauges from the shared directory; its counters keep counting in the sums."""
        if self.shared_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.shared_dir)  # type: ignore[no-untyped-call]
