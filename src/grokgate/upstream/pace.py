"""The pace of each xAI key: at most `rps` submissions of a kind per second, counted where every process sees it.

xAI limits each team to 5 image and 1 video requests per second. A key's submissions are spaced: one may go when the
previous one of its kind went at least `spacing` seconds ago (`spacing` = a tenth more than 1/rps, so that a little
jitter on the way never packs `rps + 1` of them into one of xAI's seconds). Spacing, unlike a window that refills
all at once, never bursts, so what arrives at xAI is what was counted here.

`take` is the only question asked: "may one go on this key now?". It answers yes and counts it in one atomic step,
or says how long until the key is free. Counted in Redis when the gateway has one (a Lua script, on Redis's clock),
otherwise in the key's row of the database (one conditional UPDATE), so several processes never overrun a key.
"""

from __future__ import annotations

import time
from typing import Literal, Protocol

import structlog
from redis.asyncio import Redis
from sqlalchemy import select, update

from grokgate.db.engine import Database
from grokgate.upstream.models import UpstreamKey

log = structlog.get_logger(__name__)

Kind = Literal["image", "video"]
MARGIN = 1.1
"""Spacing is this much more than 1/rps."""


def spacing(rps: int) -> float:
    return MARGIN / rps


class Pace(Protocol):
    async def take(self, key_id: str, kind: Kind, gap: float) -> float:
        """0.0 if one submission of `kind` on the key was counted now; else seconds until it could be (nothing
        counted)."""
        ...

    async def hold_off(self, key_id: str, kind: Kind, seconds: float) -> None:
        """Let nothing of `kind` go on the key for `seconds` (xAI answered 429 or 503)."""
        ...

    async def aclose(self) -> None: ...


class DatabasePace:
    """The next free moment of each key and kind, in its `upstream_keys` row (Unix time of this host)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def take(self, key_id: str, kind: Kind, gap: float) -> float:
        column = UpstreamKey.image_next_at if kind == "image" else UpstreamKey.video_next_at
        async with self.db.transaction() as session:
            # The moment is read once the transaction holds the write lock: read before, a wait for the lock would
            # date the grant early, and the next one could follow it by less than `gap`.
            now = time.time()
            taken = await session.execute(
                update(UpstreamKey)
                .where(UpstreamKey.id == key_id, column <= now)
                .values({column: now + gap})
                .returning(UpstreamKey.id)
                .execution_options(synchronize_session=False)
            )
            if taken.scalar_one_or_none() is not None:
                return 0.0
            free_at = await session.scalar(select(column).where(UpstreamKey.id == key_id))
        return max(0.001, float(free_at or now) - now)

    async def hold_off(self, key_id: str, kind: Kind, seconds: float) -> None:
        column = UpstreamKey.image_next_at if kind == "image" else UpstreamKey.video_next_at
        until = time.time() + seconds
        async with self.db.transaction() as session:
            await session.execute(
                update(UpstreamKey)
                .where(UpstreamKey.id == key_id, column < until)
                .values({column: until})
                .execution_options(synchronize_session=False)
            )

    async def aclose(self) -> None:
        return None


_TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local free_at = tonumber(redis.call('GET', KEYS[1]) or '0')
if free_at > now then
  return tostring(free_at - now)
end
local gap = tonumber(ARGV[1])
redis.call('SET', KEYS[1], tostring(now + gap), 'PX', math.ceil(gap * 1000) + 1000)
return '0'
"""

_HOLD_OFF = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local until_at = now + tonumber(ARGV[1])
local free_at = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_at > free_at then
  redis.call('SET', KEYS[1], tostring(until_at), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
"""


class RedisPace:
    """The next free moment of each key and kind as a Redis value that expires once it has passed."""

    def __init__(self, url: str, prefix: str = "grokgate:pace") -> None:
        self.redis: Redis = Redis.from_url(url)
        self.prefix = prefix
        self._take = self.redis.register_script(_TAKE)
        self._hold_off = self.redis.register_script(_HOLD_OFF)

    def _key(self, key_id: str, kind: Kind) -> str:
        return f"{self.prefix}:{key_id}:{kind}"

    async def take(self, key_id: str, kind: Kind, gap: float) -> float:
        answer = await self._take(keys=[self._key(key_id, kind)], args=[repr(gap)])
        return float(answer)

    async def hold_off(self, key_id: str, kind: Kind, seconds: float) -> None:
        await self._hold_off(keys=[self._key(key_id, kind)], args=[repr(seconds)])

    async def aclose(self) -> None:
        await self.redis.aclose()


class SharedPace:
    """Redis first; the database while Redis is away, so that a Redis outage never unpaces the keys (the two
    counts are apart for that while, which a key's margin and xAI's 429, failed over, absorb)."""

    def __init__(self, redis: RedisPace, database: DatabasePace) -> None:
        self.redis = redis
        self.database = database

    async def take(self, key_id: str, kind: Kind, gap: float) -> float:
        try:
            return await self.redis.take(key_id, kind, gap)
        except Exception:
            log.warning("pace.redis_unavailable", exc_info=True)
            return await self.database.take(key_id, kind, gap)

    async def hold_off(self, key_id: str, kind: Kind, seconds: float) -> None:
        try:
            await self.redis.hold_off(key_id, kind, seconds)
        except Exception:
            await self.database.hold_off(key_id, kind, seconds)

    async def aclose(self) -> None:
        await self.redis.aclose()
