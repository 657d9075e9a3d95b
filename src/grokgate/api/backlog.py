"""The backlog gauges, read from the shared database when they are scraped.

They are counted in the database rather than in a process because any process may have queued the work and any
other may take it: only the tables know how much is waiting. One query a table, on indexes (`ix_jobs_due`,
`ix_webhook_deliveries_due`) and count only unfinished rows, so a scrape stays cheap however many jobs have ended.
"""

from __future__ import annotations

from sqlalchemy import and_, func, select

from grokgate.db.base import utcnow
from grokgate.db.engine import Database
from grokgate.jobs import states
from grokgate.jobs.models import Job
from grokgate.metrics import Metrics
from grokgate.webhooks.models import WebhookDelivery


async def record_backlog(db: Database, metrics: Metrics) -> None:
    now = utcnow()
    async with db.reader() as session:
        poll_due = and_(Job.external_job_id.is_not(None), Job.next_poll_at <= now)
        by_status = {
            status: (count, due)
            for status, count, due in (
                await session.execute(
                    select(Job.status, func.count(), func.count().filter(poll_due))
                    .where(Job.status.in_(states.ACTIVE))
                    .group_by(Job.status)
                )
            ).all()
        }
        pending, due = (
            await session.execute(
                select(func.count(), func.count().filter(WebhookDelivery.next_attempt_at <= now)).where(
                    WebhookDelivery.status == "pending"
                )
            )
        ).one()
    metrics.record_backlog(
        {status: int(by_status.get(status, (0, 0))[0]) for status in states.ACTIVE},
        {
            "video_polls_due": sum(int(due) for _, due in by_status.values()),
            "webhooks_due": int(due),
            "webhooks_waiting_retry": int(pending) - int(due),
        },
    )
