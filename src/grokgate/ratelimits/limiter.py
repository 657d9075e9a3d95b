"""Counting requests per organisation in three windows, shared across processes when Redis is configured.

`limits` does the counting (sliding-window counters; in memory, or in Redis so that every process sees one count).
When the store fails, `fail_open` decides: let requests through (and say so in the log) or refuse them with 503.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from grokgate.errors import ApiError, limit_exceeded
from grokgate.ratelimits.plans import Plan

log = structlog.get_logger(__name__)

WINDOWS = ("minute", "hour", "day")


def _items(plan: Plan) -> dict[str, RateLimitItem]:
    return {
        "minute": RateLimitItemPerMinute(plan.rpm),
        "hour": RateLimitItemPerHour(plan.rph),
        "day": RateLimitItemPerDay(plan.rpd),
    }


@dataclass(frozen=True)
class Verdict:
    """What the `X-RateLimit-*` headers say: the per-minute window, the one a client meets first."""

    limit: int
    remaining: int
    reset_in: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_in),
        }


class RateLimiter:
    def __init__(self, redis_url: str | None, *, fail_open: bool = True, prefix: str = "grokgate") -> None:
        if redis_url:
            uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
            storage = storage_from_string(uri, implementation="redispy", key_prefix=prefix)
        else:
            storage = storage_from_string("async+memory://")
        self._storage = storage
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self.fail_open = fail_open

    async def hit(self, org_id: str, plan: Plan) -> Verdict | None:
        """Count one request; 429 when a window is full (nothing counted then). None when the store is down and
        we fail open."""
        items = _items(plan)
        try:
            for name in WINDOWS:
                if not await self._limiter.test(items[name], org_id):
                    stats = await self._limiter.get_window_stats(items[name], org_id)
                    retry_after = max(1, int(stats.reset_time - time.time() + 0.999))
                    minute = await self._limiter.get_window_stats(items["minute"], org_id)
                    verdict = Verdict(plan.rpm, minute.remaining, max(0, int(minute.reset_time - time.time())))
                    raise limit_exceeded(
                        name,
                        items[name].amount,
                        items[name].amount,
                        f"Rate limit exceeded: {items[name].amount} requests per {name} on this plan",
                        retry_after=retry_after,
                        headers=verdict.headers(),
                    )
            for name in WINDOWS:
                await self._limiter.hit(items[name], org_id)
            stats = await self._limiter.get_window_stats(items["minute"], org_id)
        except ApiError:
            raise
        except Exception as exc:
            log.warning("ratelimit.store_unavailable", error=repr(exc), fail_open=self.fail_open)
            if self.fail_open:
                return None
            raise ApiError(503, "RATE_LIMITER_UNAVAILABLE", "Rate limiting is unavailable; retry shortly") from exc
        return Verdict(limit=plan.rpm, remaining=stats.remaining, reset_in=max(0, int(stats.reset_time - time.time())))

    async def healthy(self) -> bool:
        try:
            result = self._storage.check()
            return bool(await result if inspect.isawaitable(result) else result)
        except Exception:
            return False

    async def usage(self, org_id: str, plan: Plan) -> dict[str, int]:
        items = _items(plan)
        used: dict[str, int] = {}
        for name in WINDOWS:
            try:
                stats = await self._limiter.get_window_stats(items[name], org_id)
                used[name] = items[name].amount - stats.remaining
            except Exception:
                used[name] = 0
        return used
