"""The sliding-window rule, and its two stores (memory, Redis's Lua) giving the same answers step for step."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from grokgate.ratelimits.limiter import MemoryStore, RedisStore, Store
from grokgate.ratelimits.windows import Counts, Window, decide, retry_after_ms, used

MINUTE = Window("minute", 60_000, 10)
START = 1_800_000_000_000 // 60_000 * 60_000  # a span boundary


def test_the_previous_span_fades_as_the_current_one_goes_on() -> None:
    counts = Counts(index=START // 60_000, current=2, previous=10)
    assert used(MINUTE, counts, START) == 12
    assert used(MINUTE, counts, START + 30_000) == 7
    assert used(MINUTE, counts, START + 59_999) == 2


def test_a_refused_request_is_counted_in_no_window() -> None:
    windows = (Window("minute", 60_000, 5), Window("hour", 3_600_000, 2))
    decision, counts = decide(windows, [Counts(), Counts()], START)
    decision, counts = decide(windows, counts, START + 1)
    assert decision.admitted
    assert [c.current for c in counts] == [2, 2]
    refused, after = decide(windows, counts, START + 2)
    assert refused.refused_by == windows[1]
    assert not refused.admitted
    assert after == counts
    assert refused.used == {"minute": 2, "hour": 2}


@pytest.mark.parametrize(("current", "previous"), [(10, 0), (10, 10), (3, 10), (9, 2), (25, 40)])
def test_retry_after_is_the_first_moment_with_room(current: int, previous: int) -> None:
    now = START + 12_345
    counts = Counts(START // 60_000, current, previous)
    wait = retry_after_ms(MINUTE, counts, now)
    assert wait > 0

    def admitted_at(moment: int) -> bool:
        decision, _ = decide((MINUTE,), [counts], moment)
        return decision.admitted

    assert admitted_at(now + wait)
    assert not admitted_at(now + wait - 2)


@pytest.fixture
async def stores() -> AsyncIterator[tuple[Store, Store]]:
    redis = RedisStore("redis://127.0.0.1:6379/0", prefix=f"grokgate-test:{uuid.uuid4().hex}")
    yield MemoryStore(), redis
    await redis.aclose()


async def test_memory_and_redis_answer_alike(stores: tuple[Store, Store]) -> None:
    """Random bursts and pauses over ten hours, each request put to both stores at the same instant; every window
    refuses some of them (400 let in, 22 refused by the minute, 84 by the hour, 94 by the day)."""
    memory, redis = stores
    refusals: Counter[str] = Counter()
    windows = (Window("minute", 60_000, 5), Window("hour", 3_600_000, 30), Window("day", 86_400_000, 200))
    chance = random.Random(14)
    now = START + 17
    for _ in range(600):
        now += chance.choice([1, 1, 1, 50, 900, 4_000, 20_000, 61_000, 400_000])
        org = chance.choice(["a", "b"])
        here = await memory.take(org, windows, now)
        there = await redis.take(org, windows, now)
        assert here == there
        refusals[here.refused_by.name if here.refused_by else "admitted"] += 1
        assert await memory.read(org, windows, now) == await redis.read(org, windows, now)
    assert set(refusals) == {"admitted", "minute", "hour", "day"}
