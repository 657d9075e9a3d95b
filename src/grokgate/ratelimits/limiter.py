"""Counting requests per organisation in a plan's three windows, shared across processes when Redis is configured.

One request is one atomic step in the store: every window is checked and, if all have room, counted (the rule is
in `windows`). In memory that step is plain Python with no `await` inside, so nothing interleaves on the event
loop; in Redis it is one Lua script on one hash per organisation, so processes never interleave either, and a
request costs a single round trip. When the store fails, `fail_open` decides: let requests through (and say so in
the log) or refuse them with 503.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, replace
from typing import Protocol

import structlog
from redis.asyncio import Redis

from grokgate.errors import ApiError, limit_exceeded
from grokgate.ratelimits.plans import Plan
from grokgate.ratelimits.windows import Counts, Decision, Window, decide, use_now, windows_of

log = structlog.get_logger(__name__)

TIMEOUT = 2.0
"""Seconds a Redis call may take before the store counts as failed: the limiter sits on every request."""


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


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Store(Protocol):
    async def take(self, org_id: str, windows: tuple[Window, ...], now_ms: int) -> Decision:
        """Check and count one request in one atomic step."""
        ...

    async def read(self, org_id: str, windows: tuple[Window, ...], now_ms: int) -> Decision:
        """The windows' use now, counting nothing."""
        ...

    async def healthy(self) -> bool: ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """One process's counts. `take` never awaits, so requests on the event loop cannot interleave inside it."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], Counts] = {}

    def _stored(self, org_id: str, windows: tuple[Window, ...]) -> list[Counts]:
        return [self._counts.get((org_id, w.name), Counts()) for w in windows]

    async def take(self, org_id: str, windows: tuple[Window, ...], now_ms: int) -> Decision:
        decision, counts = decide(windows, self._stored(org_id, windows), now_ms)
        for window, count in zip(windows, counts, strict=True):
            self._counts[(org_id, window.name)] = count
        return decision

    async def read(self, org_id: str, windows: tuple[Window, ...], now_ms: int) -> Decision:
        return use_now(windows, self._stored(org_id, windows), now_ms)

    async def healthy(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


def _per_window(numbers: list[int], windows: tuple[Window, ...]) -> list[Counts]:
    """The script's and the hash's order: index, current, previous, window after window."""
    return [Counts(*numbers[3 * w : 3 * w + 3]) for w in range(len(windows))]


# The arithmetic of `windows.rolled`, `used` and `decide`, in the same order and the same doubles. The hash holds
# three fields per window (`<n>i` span index, `<n>c` current count, `<n>p` previous count); ARGV is now_ms, then
# span_ms and limit per window. Returns, per window, the rolled counts before this request, then whether it was let in.
_TAKE = """
local now = tonumber(ARGV[1])
local n = (#ARGV - 1) / 2
local fields = {}
for w = 1, n do
  fields[3 * w - 2] = w .. 'i'; fields[3 * w - 1] = w .. 'c'; fields[3 * w] = w .. 'p'
end
local stored = redis.call('HMGET', KEYS[1], unpack(fields))
local out = {}
local admitted = 1
local longest = 0
for w = 1, n do
  local span = tonumber(ARGV[2 * w]); local limit = tonumber(ARGV[2 * w + 1])
  if span > longest then longest = span end
  local index = math.floor(now / span)
  local i = tonumber(stored[3 * w - 2] or '-1')
  local c = tonumber(stored[3 * w - 1] or '0')
  local p = tonumber(stored[3 * w] or '0')
  if i < index then
    if i == index - 1 then p = c else p = 0 end
    c = 0; i = index
  end
  local into = now - index * span
  if math.floor(p * (span - into) / span) + c + 1 > limit then admitted = 0 end
  out[3 * w - 2] = i; out[3 * w - 1] = c; out[3 * w] = p
end
if admitted == 1 then
  local values = {}
  for w = 1, n do
    values[#values + 1] = w .. 'i'; values[#values + 1] = string.format('%d', out[3 * w - 2])
    values[#values + 1] = w .. 'c'; values[#values + 1] = string.format('%d', out[3 * w - 1] + 1)
    values[#values + 1] = w .. 'p'; values[#values + 1] = string.format('%d', out[3 * w])
  end
  redis.call('HSET', KEYS[1], unpack(values))
  redis.call('PEXPIRE', KEYS[1], 2 * longest)
end
out[#out + 1] = admitted
return out
"""


class RedisStore:
    """Every process's counts: a hash per organisation, checked and counted by one Lua script."""

    def __init__(self, url: str, prefix: str = "grokgate:rate") -> None:
        self.redis: Redis = Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        self.prefix = prefix
        self._take = self.redis.register_script(_TAKE)

    def _key(self, org_id: str) -> str:
        return f"{self.prefix}:{{{org_id}}}"

    async def take(self, org_id: str, windows: tuple[Window, ...], now_ms: int) -> Decision:
        args: list[int] = [now_ms]
        for window in windows:
            args += [window.span_ms, window.limit]
        answer = [int(value) for value in await self._take(keys=[self._key(org_id)], args=args)]
        decision, _ = decide(windows, _per_window(answer, windows), now_ms)
        counted = bool(answer[-1])
        if decision.admitted != counted:  # the two copies of the rule disagree: the one that counted is right
            log.error("ratelimit.rule_mismatch", org_id=org_id, redis_admitted=counted)
            refused_by = None if counted else decision.refused_by or windows[0]
            decision = replace(decision, admitted=counted, refused_by=refused_by)
        return decision

    async def read(self, org_id: str, windows: tuple[Window, ...], now_ms: int) -> Decision:
        fields = [f"{w}{part}" for w in range(1, len(windows) + 1) for part in "icp"]
        values = await self.redis.hmget(self._key(org_id), fields)
        defaults = [-1, 0, 0] * len(windows)
        numbers = [int(v) if v is not None else d for v, d in zip(values, defaults, strict=True)]
        return use_now(windows, _per_window(numbers, windows), now_ms)

    async def healthy(self) -> bool:
        try:
            answer = self.redis.ping()
            return bool(await answer if inspect.isawaitable(answer) else answer)
        except Exception:
            return False

    async def aclose(self) -> None:
        await self.redis.aclose()


class RateLimiter:
    def __init__(self, redis_url: str | None, *, fail_open: bool = True, prefix: str = "grokgate:rate") -> None:
        self.store: Store = RedisStore(redis_url, prefix) if redis_url else MemoryStore()
        self.fail_open = fail_open

    async def hit(self, org_id: str, plan: Plan) -> Verdict | None:
        """Count one request; 429 when a window is full (nothing counted then). None when the store is down and
        we fail open."""
        windows = windows_of(plan)
        try:
            decision = await self.store.take(org_id, windows, _now_ms())
        except Exception as exc:
            log.warning("ratelimit.store_unavailable", error=repr(exc), fail_open=self.fail_open)
            if self.fail_open:
                return None
            raise ApiError(503, "RATE_LIMITER_UNAVAILABLE", "Rate limiting is unavailable; retry shortly") from exc
        verdict = Verdict(
            limit=plan.rpm,
            remaining=max(0, plan.rpm - decision.used["minute"]),
            reset_in=math.ceil(decision.minute_reset_ms / 1000),
        )
        refused = decision.refused_by
        if refused is not None:
            raise limit_exceeded(
                refused.name,
                refused.limit,
                decision.used[refused.name],
                f"Rate limit exceeded: {refused.limit} requests per {refused.name} on this plan",
                retry_after=max(1, math.ceil(decision.retry_after_ms / 1000)),
                headers=verdict.headers(),
            )
        return verdict

    async def healthy(self) -> bool:
        return await self.store.healthy()

    async def usage(self, org_id: str, plan: Plan) -> dict[str, int]:
        windows = windows_of(plan)
        try:
            return (await self.store.read(org_id, windows, _now_ms())).used
        except Exception:
            return {w.name: 0 for w in windows}

    async def aclose(self) -> None:
        await self.store.aclose()
