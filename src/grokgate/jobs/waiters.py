"""Clients held open on a job (a `/events` stream, a `Prefer: wait`), counted per organisation and per process.

A held client costs a connection slot, memory and a read of its job each time it changes (`jobs/notifications.py`)
for as long as it likes, for the price of one request against the rate limit. Without a bound one organisation
could hold enough of them to slow every other organisation down; so each plan says how many one organisation may
hold (`waiters`, 429 beyond it) and the process has a ceiling of its own (`GROKGATE_MAX_WAITERS`, 503 beyond it).
The counts are this process's: with several API processes an organisation may hold up to `waiters` in each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from grokgate.errors import ApiError, limit_exceeded


class Hold:
    """One held client; `release` may be called more than once (a stream ends one way or another)."""

    def __init__(self, waiters: Waiters, org_id: str) -> None:
        self._waiters = waiters
        self._org_id = org_id
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._waiters._release(self._org_id)


class Waiters:
    def __init__(self, most: int) -> None:
        self.most = most
        self.total = 0
        self.by_org: Counter[str] = Counter()

    def acquire(self, org_id: str, plan_most: int) -> Hold:
        """Count one more held client of `org_id`, or refuse it (nothing else has happened yet)."""
        if self.total >= self.most:
            raise ApiError(
                503,
                "SERVER_BUSY",
                f"This server holds {self.most} waiting clients already; poll GET /api/v1/jobs/{{jobId}} instead",
                {"retryAfter": 5},
                headers={"Retry-After": "5"},
            )
        used = self.by_org[org_id]
        if used >= plan_most:
            raise limit_exceeded(
                "waiters",
                plan_most,
                used,
                f"Too many open event streams and waiting requests: {plan_most} at once on this plan",
            )
        self.by_org[org_id] += 1
        self.total += 1
        return Hold(self, org_id)

    @contextmanager
    def holding(self, org_id: str, plan_most: int) -> Iterator[None]:
        hold = self.acquire(org_id, plan_most)
        try:
            yield
        finally:
            hold.release()

    def _release(self, org_id: str) -> None:
        self.total -= 1
        self.by_org[org_id] -= 1
        if self.by_org[org_id] <= 0:
            del self.by_org[org_id]
