"""The poller's claims: the jobs that need attention now, leased in one prebuilt statement and read as plain data.

Two kinds of job are due, and each is found through an index in time proportional to what is found, not to the
jobs in flight: videos with an xAI request id whose next poll time has come (`ix_jobs_due`: status, next poll),
claimed every time the poller has room; and jobs whose lease ran out with nobody holding it any more, because their
process died mid-request or mid-poll (`ix_jobs_leased`, of the few rows holding a lease), looked for once a tick.
One condition with OR for both made every claim read every active job: 6 ms of the database server's time per
claim at 10,000 videos in flight on PostgreSQL, and as much of the serving process's own on SQLite.

Each claim is one UPDATE ... RETURNING of the columns the poller reads, on the direct path (`Database.single`: on
PostgreSQL one round trip outside any transaction), not a SELECT and an UPDATE through an ORM session that builds a
full `Job` for each row. If PostgreSQL's connection is cut after the UPDATE ran, the statement is sent again on a
new one: the rows leased by the lost answer are nobody's work until their lease runs out, then claimed again.
See `db/leases.py` for how leases work.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import bindparam

from grokgate.db.base import table_of, utcnow
from grokgate.db.direct import DirectTx
from grokgate.db.engine import Database
from grokgate.db.leases import claim_statement
from grokgate.db.prepared import Result
from grokgate.jobs import states
from grokgate.jobs.models import Job


@dataclass(frozen=True, slots=True)
class DueJob:
    """What the poller reads of a job it leased (the columns of `Job` of the same names)."""

    id: str
    request_id: str | None
    kind: str
    model: str
    status: str
    progress: int | None
    input: dict[str, Any]
    external_job_id: str | None
    upstream_key_id: str | None
    deadline_at: datetime
    submitted_at: datetime | None
    polled_at: datetime | None
    poll_failures: int
    next_poll_at: datetime | None
    lease_expires_at: datetime | None


def _statement(*, orphaned: bool, is_postgres: bool) -> Any:
    jobs = table_of(Job)
    now = bindparam("now", type_=jobs.c.lease_expires_at.type)
    if orphaned:  # `claim_statement`'s free-lease test then reads as "ran out", on the leased rows' index
        due, order_by = [jobs.c.lease_expires_at < now], jobs.c.lease_expires_at
    else:
        due, order_by = [jobs.c.external_job_id.is_not(None), jobs.c.next_poll_at <= now], jobs.c.next_poll_at
    return claim_statement(
        jobs,
        due=[jobs.c.status.in_(states.ACTIVE), *due],
        order_by=order_by,
        returning=[jobs.c[field.name] for field in fields(DueJob)],
        is_postgres=is_postgres,
        keep={"updated_at": jobs.c.updated_at},  # a lease is bookkeeping, not news for the customer
    )


_CLAIMS = {
    (orphaned, is_postgres): _statement(orphaned=orphaned, is_postgres=is_postgres)
    for orphaned in (False, True)
    for is_postgres in (False, True)
}


async def _run(statement: Any, params: dict[str, Any], tx: DirectTx) -> Result:
    return await tx.execute(statement, params)


async def claim_due(
    db: Database, *, owner: str, lease_seconds: float, limit: int, orphaned: bool = True
) -> list[DueJob]:
    """Lease up to `limit` due jobs to `owner` for `lease_seconds`: those whose lease ran out first (unless
    `orphaned` is False), then the videos whose poll is due."""
    now = utcnow()
    params = {"now": now, "owner": owner, "until": now + timedelta(seconds=lease_seconds), "limit": limit}
    kinds = (True, False) if orphaned else (False,)
    claimed: list[DueJob] = []
    for kind in kinds:
        if len(claimed) >= limit:
            break
        statement, room = _CLAIMS[kind, not db.is_sqlite], params | {"limit": limit - len(claimed)}
        rows = await db.single(partial(_run, statement, room))
        claimed += [DueJob(*row) for row in rows.all()]
    return claimed
