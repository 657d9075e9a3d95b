"""What the app factory builds once and every route reaches through `request.app.state`: no module globals."""

from __future__ import annotations

from dataclasses import dataclass
from time import monotonic

from fastapi import Request

from grokgate.config import Settings
from grokgate.db.engine import Database
from grokgate.idempotency.service import Idempotency
from grokgate.jobs.service import JobService
from grokgate.jobs.waiters import Waiters
from grokgate.metrics import Metrics
from grokgate.orgs.authcache import AuthCache
from grokgate.ratelimits.limiter import RateLimiter
from grokgate.storage.store import MediaStore
from grokgate.upstream.pool import UpstreamPool


class KeyUsage:
    """Remembers when this process last wrote a key's `last_used_at`, so a busy key costs one write a minute."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._written: dict[str, float] = {}

    def due(self, key_id: str) -> bool:
        now = monotonic()
        if now - self._written.get(key_id, -self.every) < self.every:
            return False
        self._written[key_id] = now
        return True


@dataclass
class Services:
    settings: Settings
    db: Database
    upstream: UpstreamPool
    jobs: JobService
    limiter: RateLimiter
    idempotency: Idempotency
    key_usage: KeyUsage
    media_store: MediaStore
    metrics: Metrics
    waiters: Waiters
    auth_cache: AuthCache


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
