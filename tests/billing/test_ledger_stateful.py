"""A Hypothesis state machine over the ledger and the job state machine, on the real database.

Grants, charges (jobs opened), completions, failures, cancellations, crashes (leases that run out and are reaped)
and duplicate endings arrive in any order. After every step: the balance equals the ledger sum and never goes
negative, it equals what a plain model of the account expects, every job was charged once, and every job that ended
without a result was refunded exactly once; the organisation's number of jobs in flight matches a count of them.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from grokgate.billing import ledger
from grokgate.billing.models import LedgerEntry
from grokgate.db.base import new_id, utcnow
from grokgate.db.engine import Database
from grokgate.errors import ApiError
from grokgate.jobs import states
from grokgate.jobs.models import Job
from grokgate.jobs.repository import Finishing, finish_in
from grokgate.orgs import service as orgs
from grokgate.storage.links import MediaLinks
from grokgate.storage.stored import StoredMedia
from tests.support import jobs_in_flight

FINISHING = Finishing(MediaLinks("k", "http://gateway.test", 60), timedelta(days=1))
PRICES = {"image": 8, "video": 150}
MEDIA = StoredMedia("image", "ab/ab.png", "image/png", 10, "ab" * 32)


class Ledger(RuleBasedStateMachine):
    jobs = Bundle("jobs")

    def __init__(self, db_url: str) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.db = Database(db_url)
        self.expected = 0
        self.ended: dict[str, str] = {}

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()

    @initialize(credits=st.integers(0, 400))
    def open_account(self, credits: int) -> None:
        async def make() -> str:
            async with self.db.transaction() as session:
                return (await orgs.create_org(session, "model", credits)).id

        self.org_id = self.run(make())
        self.expected = credits

    @rule(amount=st.integers(1, 300))
    def grant(self, amount: int) -> None:
        async def go() -> None:
            async with self.db.transaction() as session:
                await ledger.grant(session, self.org_id, amount)

        self.run(go())
        self.expected += amount

    @rule(target=jobs, kind=st.sampled_from(["image", "video"]))
    def open_job(self, kind: str) -> str:
        job_id = new_id("job")
        price = PRICES[kind]

        async def go() -> bool:
            now = utcnow()
            try:
                async with self.db.transaction() as session:
                    await ledger.charge(session, self.org_id, job_id, price)
                    session.add(
                        Job(
                            id=job_id, org_id=self.org_id, kind=kind, model="m", status="pending", input={},
                            credits_charged=price, credits_refunded=0, lease_owner="me",
                            lease_expires_at=now + timedelta(minutes=5), deadline_at=now + timedelta(hours=1),
                        )
                    )  # fmt: skip
            except ApiError as exc:
                if exc.code != "INSUFFICIENT_CREDITS":
                    raise
                return False
            return True

        if self.run(go()):
            self.expected -= price
        else:
            assert self.expected < price
        return job_id

    def _end(self, job_id: str, decision: states.Ending, owner: str | None) -> None:
        async def go() -> bool:
            async with self.db.transaction() as session:
                return await finish_in(session, job_id, decision, owner=owner, finishing=FINISHING) is not None

        ended = self.run(go())
        exists = self.run(self._status(job_id)) is not None
        if job_id in self.ended or not exists:
            assert not ended, f"{job_id} ended twice"
            return
        assert ended
        status = (
            "completed"
            if isinstance(decision, states.Complete)
            else "cancelled"
            if isinstance(decision, states.Cancel)
            else "failed"
        )
        self.ended[job_id] = status
        if status != "completed":
            self.expected += self.run(self._price(job_id))

    async def _status(self, job_id: str) -> str | None:
        async with self.db.reader() as session:
            return await session.scalar(select(Job.status).where(Job.id == job_id))

    async def _price(self, job_id: str) -> int:
        async with self.db.reader() as session:
            return int(await session.scalar(select(Job.credits_charged).where(Job.id == job_id)) or 0)

    @rule(job_id=jobs)
    def complete(self, job_id: str) -> None:
        self._end(job_id, states.Complete((MEDIA,)), owner="me")

    @rule(job_id=jobs, code=st.sampled_from(["UPSTREAM_ERROR", "UPSTREAM_EXPIRED", "CONTENT_MODERATED"]))
    def fail(self, job_id: str, code: str) -> None:
        self._end(job_id, states.Fail(code, "failed"), owner="me")

    @rule(job_id=jobs)
    def cancel(self, job_id: str) -> None:
        self._end(job_id, states.Cancel(upstream_started=True), owner=None)

    @rule(job_id=jobs)
    def crash_then_reap(self, job_id: str) -> None:
        """The process died; its lease ran out and a poller ends the job as lost."""
        self._end(job_id, states.lost_request("video"), owner=None)

    @rule(job_id=jobs)
    def late_writer_without_the_lease(self, job_id: str) -> None:
        async def go() -> bool:
            async with self.db.transaction() as session:
                decision = states.Fail("LATE", "late")
                return await finish_in(session, job_id, decision, owner="someone-else", finishing=FINISHING) is not None

        assert not self.run(go())

    @invariant()
    def money_is_exact(self) -> None:
        if not hasattr(self, "org_id"):
            return

        async def check() -> None:
            async with self.db.reader() as session:
                balance = await ledger.balance_of(session, self.org_id)
                assert balance is not None
                assert balance.credits_remaining == balance.ledger_sum == self.expected
                assert balance.credits_remaining >= 0
                rows = (
                    await session.execute(
                        select(LedgerEntry.job_id, LedgerEntry.kind).where(LedgerEntry.org_id == self.org_id)
                    )
                ).all()
            for job_id, status in self.ended.items():
                refunds = sum(1 for row in rows if row == (job_id, "refund"))
                assert refunds == (0 if status == "completed" else 1)

        self.run(check())

    @invariant()
    def jobs_in_flight_are_counted(self) -> None:
        """The organisation's number of active jobs (kept by triggers) is what a count of its jobs says."""
        if not hasattr(self, "org_id"):
            return

        async def check() -> None:
            async with self.db.reader() as session:
                kept, counted = await jobs_in_flight(session, self.org_id)
            assert kept == counted

        self.run(check())


def test_ledger_and_jobs_hold_their_invariants_in_any_order(db_url: str) -> None:
    run_state_machine_as_test(
        lambda: Ledger(db_url),
        settings=settings(
            max_examples=20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
