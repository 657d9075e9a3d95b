"""The poller's claim: the jobs that need attention now, leased in one prebuilt statement and read as plain data.

Due are videos with an xAI request id whose next poll time has come, and any job whose lease ran out with nobody
holding it any more: its process died mid-request or mid-poll (see `db/leases.py` for how leases work).

The poller claims many times a second under load, and each claimed job is handled from a few of its columns. So
the claim is one UPDATE ... RETURNING of those columns on the direct path (`Database.single`: on PostgreSQL one
round trip outside any transaction), not a SELECT and an UPDATE through an ORM session that builds a full `Job`
for each row. If PostgreSQL's connection is cut after the UPDATE ran, the statement is sent again on a new one:
the rows leased by the lost answer are nobody's work until their lease runs out, then claimed again.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_

from grokgate.db.base import table_of, utcnow
from grokgate.db.engine import Database
from grokgate.db.leases import claim_statement
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


def _statement(is_postgres: bool) -> Any:
    jobs = table_of(Job)
    now = bindparam("now", type_=jobs.c.lease_expires_at.type)
    due = or_(
        and_(jobs.c.external_job_id.is_not(None), jobs.c.next_poll_at <= now),
        and_(jobs.c.lease_expires_at.is_not(None), jobs.c.lease_expires_at < now),
    )
    return claim_statement(
        jobs,
        due=[jobs.c.status.in_(states.ACTIVE), due],
        order_by=jobs.c.next_poll_at,
        returning=[jobs.c[field.name] for field in fields(DueJob)],
        is_postgres=is_postgres,
        keep={"updated_at": jobs.c.updated_at},  # a lease is bookkeeping, not news for the customer
    )


_CLAIMS = {is_postgres: _statement(is_postgres) for is_postgres in (False, True)}


async def claim_due(db: Database, *, owner: str, lease_seconds: float, limit: int) -> list[DueJob]:
    """Lease up to `limit` due jobs to `owner` for `lease_seconds`."""
    now = utcnow()
    params = {"now": now, "owner": owner, "until": now + timedelta(seconds=lease_seconds), "limit": limit}
    statement = _CLAIMS[not db.is_sqlite]
    rows = await db.single(lambda tx: tx.execute(statement, params))
    return [DueJob(*row) for row in rows.all()]
