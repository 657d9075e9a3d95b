"""Held clients (`Prefer: wait`, `/events`) are woken by notifications: in the process that ended the job, in
another process over PostgreSQL's `LISTEN/NOTIFY` or Redis pub/sub, and by the batched recheck when a notification
was lost. While nothing changes, any number of them costs the database nothing.

The gateways here recheck once a minute (`wait_recheck=60`) unless the recheck is what is tested, and keep-alives
come after 15 s: a client answered within the tests' timeouts was woken by a notification."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from grokgate.db.engine import Database
from grokgate.jobs import repository, states
from grokgate.jobs.notifications import JobNotifier, payloads
from grokgate.jobs.repository import Finishing
from grokgate.ratelimits.plans import Plan
from grokgate.storage.links import MediaLinks
from tests.conftest import Gateway
from tests.support import BACKEND, Tenant

PLANS = {"default": Plan(rpm=6000, rph=100_000, rpd=1_000_000, concurrent=100, waiters=500)}
NEVER = {"prompt": "held [sandbox:never]", "duration": 1}
REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.timeout(60)


def notifier_of(gw: Gateway) -> JobNotifier:
    notifier: JobNotifier = gw.server.app.state.services.jobs.notices
    return notifier


def statements_of(gw: Gateway) -> float:
    value = gw.server.app.state.metrics.registry.get_sample_value("grokgate_db_statements_total")
    return float(value or 0.0)


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """An in-memory condition of the app, checked between event-loop turns (nothing to await on from outside)."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def stream_statuses(client: httpx.AsyncClient, tenant: Tenant, job_id: str) -> list[str]:
    """Follow `/events` until the job ends; the statuses it sent."""
    statuses: list[str] = []
    async with client.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=tenant.headers) as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                statuses.append(json.loads(line[6:])["status"])
    return statuses


async def video(gw: Gateway, tenant: Tenant, body: dict[str, Any] = NEVER) -> str:
    made = await gw.generate(tenant, body)
    assert made.status_code == 202, made.text
    job_id: str = made.json()["jobId"]
    return job_id


async def cancel_all(gw: Gateway, tenant: Tenant) -> list[str]:
    listed = (await gw.client.get("/api/v1/jobs?limit=100", headers=tenant.headers)).json()["jobs"]
    active = [job["id"] for job in listed if job["status"] in states.ACTIVE]
    for job_id in active:
        assert (await gw.client.delete(f"/api/v1/jobs/{job_id}", headers=tenant.headers)).status_code == 200
    return active


def test_payloads_split_under_the_notify_limit() -> None:
    ids = [f"job_{i:026d}" for i in range(1000)]
    messages = payloads("abc", ids)
    assert len(messages) > 1
    assert all(len(message) < 8000 and message.startswith("abc:") for message in messages)
    assert sorted(i for message in messages for i in message[4:].split(",")) == ids


async def test_waiters_are_woken_by_the_process_that_ends_the_job(gateway_factory: Any) -> None:
    async with gateway_factory(plans=PLANS, wait_recheck=60) as gw:
        tenant = await gw.tenant(credits=1000)
        # Ended by this process's poller: a `Prefer: wait` and a stream on it.
        quick = await video(gw, tenant, {"prompt": "quick [sandbox:delay=0.5]", "duration": 1})
        streamed = asyncio.create_task(stream_statuses(gw.client, tenant, quick))
        waited = await gw.generate(
            tenant, {"prompt": "waited [sandbox:delay=0.5]", "duration": 1}, {"Prefer": "wait=30"}
        )
        assert waited.status_code == 200, waited.text
        assert waited.json()["status"] == "completed"
        assert (await asyncio.wait_for(streamed, 20))[-1] == "completed"
        # Ended by a cancel on this process: the stream learns it from the commit, not from a timer.
        held = await video(gw, tenant)
        streamed = asyncio.create_task(stream_statuses(gw.client, tenant, held))
        await until(lambda: notifier_of(gw).watching == 1)
        assert (await gw.client.delete(f"/api/v1/jobs/{held}", headers=tenant.headers)).status_code == 200
        assert (await asyncio.wait_for(streamed, 10))[-1] == "cancelled"
        assert notifier_of(gw).watching == 0


@pytest.mark.parametrize("channel", ["postgresql", "redis"])
async def test_a_job_ended_by_one_process_wakes_waiters_on_another(gateway_factory: Any, channel: str) -> None:
    if channel == "postgresql" and BACKEND != "postgresql":
        pytest.skip("LISTEN/NOTIFY needs PostgreSQL; SQLite shares notifications only through Redis")
    shared = {"redis_url": REDIS_URL} if channel == "redis" else {}
    async with (
        gateway_factory(plans=PLANS, wait_recheck=60, run_poller=False, **shared) as waiting,
        gateway_factory(plans=PLANS, wait_recheck=60, **shared) as ending,
    ):
        assert notifier_of(waiting).channel is not None
        assert notifier_of(waiting).channel.name == channel  # type: ignore[union-attr]
        await asyncio.wait_for(notifier_of(waiting).listening.wait(), 10)
        await asyncio.wait_for(notifier_of(ending).listening.wait(), 10)
        tenant = await waiting.tenant(credits=1000)
        held = await video(waiting, tenant)
        streamed = asyncio.create_task(stream_statuses(waiting.client, tenant, held))
        waited = asyncio.create_task(waiting.generate(tenant, NEVER, {"Prefer": "wait=30"}))
        await until(lambda: notifier_of(waiting).watching == 2)
        assert len(await cancel_all(ending, tenant)) == 2  # the other process ends both jobs
        answer = await asyncio.wait_for(waited, 10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "cancelled"
        assert (await asyncio.wait_for(streamed, 10))[-1] == "cancelled"


async def test_a_lost_notification_ends_the_wait_at_the_recheck(gateway_factory: Any, db_url: str) -> None:
    async with gateway_factory(plans=PLANS, wait_recheck=0.5, run_poller=False) as gw:
        tenant = await gw.tenant(credits=1000)
        held = await video(gw, tenant)
        streamed = asyncio.create_task(stream_statuses(gw.client, tenant, held))
        waited = asyncio.create_task(gw.generate(tenant, NEVER, {"Prefer": "wait=30"}))
        await until(lambda: notifier_of(gw).watching == 2)
        # Another program ends the jobs on the database and tells nobody (a `Database` with no notifier).
        other = Database(db_url)
        finishing = Finishing(MediaLinks("secret", "http://elsewhere", 60), timedelta(days=1))
        try:
            listed = (await gw.client.get("/api/v1/jobs", headers=tenant.headers)).json()["jobs"]
            for job in listed:
                async with other.transaction() as session:
                    ended = await repository.finish_in(
                        session, job["id"], states.Cancel(True, None), owner=None, finishing=finishing
                    )
                assert ended is not None
        finally:
            await other.dispose()
        answer = await asyncio.wait_for(waited, 10)
        assert answer.json()["status"] == "cancelled"
        assert (await asyncio.wait_for(streamed, 10))[-1] == "cancelled"


async def test_held_clients_cost_no_statements_while_their_jobs_run(gateway_factory: Any) -> None:
    async with gateway_factory(plans=PLANS, wait_recheck=60, run_poller=False) as gw:
        tenant = await gw.tenant(credits=150 * 20)
        notifier = notifier_of(gw)
        jobs = [await video(gw, tenant) for _ in range(3)]
        streams = [asyncio.create_task(stream_statuses(gw.client, tenant, jobs[i % 3])) for i in range(30)]
        waits = [asyncio.create_task(gw.generate(tenant, NEVER, {"Prefer": "wait=30"})) for _ in range(10)]
        await until(lambda: notifier.watching == 40)
        before = statements_of(gw)
        await asyncio.sleep(1.0)  # what is measured is the absence of statements over a while
        assert statements_of(gw) - before == 0  # a client polling every 250 ms would have cost ~160
        # The safety recheck reads every watched job (13 of them) in one statement, however many clients wait.
        before = statements_of(gw)
        assert await notifier.recheck_watched() == 0
        assert statements_of(gw) - before <= 3  # BEGIN on SQLite, a pre-ping on PostgreSQL, the SELECT
        ended = await cancel_all(gw, tenant)
        assert len(ended) == 13
        for stream in streams:
            assert (await asyncio.wait_for(stream, 20))[-1] == "cancelled"
        for waited in waits:
            assert (await asyncio.wait_for(waited, 20)).json()["status"] == "cancelled"
        assert notifier.watching == 0


async def test_streams_woken_by_one_change_share_one_read(gateway_factory: Any) -> None:
    async with gateway_factory(plans=PLANS, wait_recheck=60, run_poller=False) as gw:
        tenant = await gw.tenant(credits=1000)
        cost = {}
        for many in (1, 20):
            job_id = await video(gw, tenant)
            streams = [asyncio.create_task(stream_statuses(gw.client, tenant, job_id)) for _ in range(many)]
            await until(lambda: notifier_of(gw).watching == many)  # noqa: B023 - awaited within the iteration
            before = statements_of(gw)
            assert (await gw.client.delete(f"/api/v1/jobs/{job_id}", headers=tenant.headers)).status_code == 200
            for stream in streams:
                assert (await asyncio.wait_for(stream, 10))[-1] == "cancelled"
            cost[many] = statements_of(gw) - before
        assert cost[20] <= cost[1] + 2, cost  # one read per stream would have cost 19 more (38 on SQLite)


async def test_streams_woken_by_an_ending_in_their_process_are_handed_the_ended_job(gateway_factory: Any) -> None:
    """The ending's transaction hands the ended job to the clients held on it here: they answer with no read."""
    async with gateway_factory(plans=PLANS, wait_recheck=60, run_poller=False) as gw:
        tenant = await gw.tenant(credits=1000)
        job_id = await video(gw, tenant)
        streams = [asyncio.create_task(stream_statuses(gw.client, tenant, job_id)) for _ in range(5)]
        await until(lambda: notifier_of(gw).watching == 5)
        cancelled = await gw.client.delete(f"/api/v1/jobs/{job_id}", headers=tenant.headers)
        assert cancelled.status_code == 200
        before = statements_of(gw)
        for stream in streams:
            assert await asyncio.wait_for(stream, 10) == ["pending", "cancelled"]
        # No read; on PostgreSQL the one statement is the NOTIFY that tells other processes.
        assert statements_of(gw) - before <= (1 if BACKEND == "postgresql" else 0)
        ended = notifier_of(gw).ended(job_id)
        assert ended is not None
        assert ended.status == "cancelled"
        # Another organisation guessing the id is not handed it: its stream is refused before any wait.
        other = await gw.tenant(name="other")
        refused = await gw.client.get(f"/api/v1/jobs/{job_id}/events", headers=other.headers)
        assert refused.status_code == 404


async def test_a_wait_woken_by_an_ending_in_its_process_answers_with_no_read(gateway_factory: Any) -> None:
    """`Prefer: wait` shows the job's input: the wait's first read lends it to the ended job it is handed, so
    cancelling a job with a wait held on it costs no statement more than cancelling one nobody waits on."""
    async with gateway_factory(plans=PLANS, wait_recheck=60, run_poller=False) as gw:
        tenant = await gw.tenant(credits=1000)
        for _ in range(2):  # the second: once whatever a first cancel sets up is in place
            alone = await video(gw, tenant)
            before = statements_of(gw)
            assert (await gw.client.delete(f"/api/v1/jobs/{alone}", headers=tenant.headers)).status_code == 200
            unwatched = statements_of(gw) - before
        waited = asyncio.create_task(gw.generate(tenant, NEVER, {"Prefer": "wait=30"}))
        await until(lambda: notifier_of(gw).watching == 1)
        listed = (await gw.client.get("/api/v1/jobs", headers=tenant.headers)).json()["jobs"]
        [held] = [job["id"] for job in listed if job["status"] == "pending"]
        before = statements_of(gw)
        assert (await gw.client.delete(f"/api/v1/jobs/{held}", headers=tenant.headers)).status_code == 200
        answer = (await asyncio.wait_for(waited, 10)).json()
        assert statements_of(gw) - before <= unwatched  # a read would be 2 more (BEGIN or a pre-ping, SELECT)
        assert answer["status"] == "cancelled"
        assert answer["input"]["prompt"] == NEVER["prompt"]
