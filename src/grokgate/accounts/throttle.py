"""Login throttling: sign-in attempts counted per email address and per client address with `limits` (a moving
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

    async def attempt(self, email: str, address: str) -> None:
        """Count one sign-in attempt against the email and the client address before the password is looked at;
        429 `TOO_MANY_ATTEMPTS` (nothing more counted) when either is used up.

        Every attempt counts, right or wrong, and is counted before it is judged: `hit` checks and counts in one
        step, so a burst of guesses sent at once cannot all pass a check that the first failures have not yet
        reached. A sign-in that succeeds clears its email's count (`succeeded`)."""
        for scope, value in (("email", email), ("address", address)):
            try:
                allowed = await self._limiter.hit(self._items[scope], scope, value)
            except Exception as exc:  # the store being down must not lock everyone out, nor open the gate
                log.warning("login_throttle.unavailable", error=repr(exc))
                return
            if not allowed:
                raise ApiError(429, "TOO_MANY_ATTEMPTS", "Too many sign-in attempts; wait a few minutes and try again")

    async def succeeded(self, email: str) -> None:
        """The password was right: its owner's earlier attempts stop counting against them. The address keeps its
        count, or one account an attacker holds would reset the count of every guess sent from that address."""
        try:
            await self._limiter.clear(self._items["email"], "email", email)
        except Exception as exc:
            log.warning("login_throttle.unavailable", error=repr(exc))
