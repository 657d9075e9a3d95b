"""Login throttling: failed sign-ins counted per email address and per client address with `limits` (a moving
window; in memory, or in Redis so every process shares the count), so passwords cannot be guessed at speed."""

from __future__ import annotations

import structlog
from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from grokgate.errors import ApiError

log = structlog.get_logger(__name__)


class LoginThrottle:
    def __init__(self, redis_url: str | None, *, per_email: str, per_address: str) -> None:
        if redis_url:
            uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
            storage = storage_from_string(uri, implementation="redispy", key_prefix="grokgate-login")
        else:
            storage = storage_from_string("async+memory://")
        self._limiter = MovingWindowRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {"email": parse(per_email), "address": parse(per_address)}

    async def check(self, email: str, address: str) -> None:
        """429 `TOO_MANY_ATTEMPTS` while either count is used up; checked before the password is looked at."""
        for scope, value in (("email", email), ("address", address)):
            try:
                allowed = await self._limiter.test(self._items[scope], scope, value)
            except Exception as exc:  # the store being down must not lock everyone out, nor open the gate
                log.warning("login_throttle.unavailable", error=repr(exc))
                return
            if not allowed:
                raise ApiError(429, "TOO_MANY_ATTEMPTS", "Too many sign-in attempts; wait a few minutes and try again")

    async def failed(self, email: str, address: str) -> None:
        for scope, value in (("email", email), ("address", address)):
            try:
                await self._limiter.hit(self._items[scope], scope, value)
            except Exception as exc:
                log.warning("login_throttle.unavailable", error=repr(exc))
