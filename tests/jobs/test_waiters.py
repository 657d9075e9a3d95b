"""One organisation cannot hold the server: open event streams and `Prefer: wait` requests are capped per plan
(429 beyond it) and per process (503), and another organisation keeps being served meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from grokgate.ratelimits.plans import Plan
from tests.jobs.test_generate_errors import assert_error
from tests.support import counts

PLANS = {"default": Plan(rpm=6000, rph=100_000, rpd=1_000_000, concurrent=100, waiters=3)}


async def test_open_streams_are_capped_per_organisation(gateway_factory: Any) -> None:
    async with gateway_factory(plans=PLANS) as gw:
        greedy = await gw.tenant(credits=150, name="greedy")
        other = await gw.tenant(credits=80, name="other")
        job_id = (await gw.generate(greedy, {"prompt": "forever [sandbox:never]", "duration": 1})).json()["jobId"]
        url = f"/api/v1/jobs/{job_id}/events"
        async with contextlib.AsyncExitStack() as streams:
            for _ in range(3):
                stream = await streams.enter_async_context(gw.client.stream("GET", url, headers=greedy.headers))
                assert stream.status_code == 200
            refused = await gw.client.get(url, headers=greedy.headers)
            body = assert_error(refused, 429, "RATE_LIMIT_EXCEEDED")
            assert body["details"]["limits"] == {"type": "waiters", "limit": 3, "used": 3}
            assert refused.headers["Retry-After"]
            # Waiting on a POST counts too, and is refused before anything is charged.
            before = await counts(gw.db_url)
            waited = await gw.generate(greedy, {"prompt": "v", "duration": 1}, {"Prefer": "wait=5"})
            assert_error(waited, 429, "RATE_LIMIT_EXCEEDED")
            assert await counts(gw.db_url) == before
            # Another organisation is not affected.
            started = time.perf_counter()
            for i in range(10):
                served = await gw.generate(other, {"prompt": f"meanwhile {i}", "model": "text-to-image"})
                assert served.status_code == 200, served.text
            print(f"other organisation: {(time.perf_counter() - started) / 10 * 1000:.1f} ms per image while held")

        # Closed streams give their places back.
        async def reopened() -> int:
            async with gw.client.stream("GET", url, headers=greedy.headers) as again:
                return again.status_code

        for _ in range(50):
            if await reopened() == 200:
                break
            await asyncio.sleep(0.05)
        assert await reopened() == 200
        assert (await gw.client.delete(f"/api/v1/jobs/{job_id}", headers=greedy.headers)).status_code == 200


async def test_the_process_has_a_ceiling_of_its_own(gateway_factory: Any) -> None:
    async with gateway_factory(plans=PLANS, max_waiters=2) as gw:
        first = await gw.tenant(credits=150, name="first")
        second = await gw.tenant(credits=150, name="second")
        jobs = {}
        for tenant in (first, second):
            made = await gw.generate(tenant, {"prompt": "forever [sandbox:never]", "duration": 1})
            jobs[tenant.org_id] = made.json()["jobId"]
        async with contextlib.AsyncExitStack() as streams:
            for tenant in (first, second):
                url = f"/api/v1/jobs/{jobs[tenant.org_id]}/events"
                stream = await streams.enter_async_context(gw.client.stream("GET", url, headers=tenant.headers))
                assert stream.status_code == 200
            url = f"/api/v1/jobs/{jobs[first.org_id]}/events"
            assert_error(await gw.client.get(url, headers=first.headers), 503, "SERVER_BUSY")
        for tenant in (first, second):
            await gw.client.delete(f"/api/v1/jobs/{jobs[tenant.org_id]}", headers=tenant.headers)
