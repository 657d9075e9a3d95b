"""The background rounds that lease work (queued videos, webhook deliveries) run every tick in every process. When
nothing is there, which is most ticks, they must not open a writing transaction: on SQLite it would hold the one
writer slot across the pool's thread hops, and under load every request's charge waited behind it (about a second
an image with 1,000 clients). With work there they still lease it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from grokgate.billing import ledger
from grokgate.db.base import utcnow
from grokgate.db.engine import _READ_ONLY, Database
from grokgate.db.leases import LeaseKeeper
from grokgate.jobs import repository
from grokgate.jobs.models import Job
from grokgate.jobs.repository import Finishing
from grokgate.jobs.submitter import Submitter, SubmitterSettings
from grokgate.storage.links import MediaLinks
from grokgate.storage.store import MediaStore, open_store
from grokgate.upstream.xai import XaiUpstream
from grokgate.webhooks.outbox import enqueue
from grokgate.webhooks.schedule import parse_schedule
from grokgate.webhooks.sender import SenderSettings, WebhookSender
from tests.db.test_direct import _job_row
from tests.support import free_port, make_tenant


@contextmanager
def writing_transactions(db: Database) -> Iterator[list[str]]:
    """The writing transactions begun on `db`'s pool while the block runs (the rounds use no direct ones)."""
    begun: list[str] = []

    def on_begin(conn: Any) -> None:
        if not conn.get_execution_options().get(_READ_ONLY, False):
            begun.append("write")

    event.listen(db.engine.sync_engine, "begin", on_begin)
    try:
        yield begun
    finally:
        event.remove(db.engine.sync_engine, "begin", on_begin)


def _queued_video(org_id: str) -> dict[str, Any]:
    """A video no key had room for: pending, not sent, nobody's, with what to send."""
    return _job_row(org_id) | {
        "kind": "video",
        "model": "grok-imagine-video",
        "status": "pending",
        "input": {"prompt": "a tide coming in"},
        "credits_charged": 5,
        "lease_owner": None,
        "lease_expires_at": None,
        "next_poll_at": utcnow(),
        "upstream_request": {"model": "grok-imagine-video", "prompt": "a tide coming in"},
    }


async def test_an_empty_submitter_round_writes_nothing(db: Database, db_url: str, tmp_path: Path) -> None:
    tenant = await make_tenant(db_url, credits=10)
    submitter = Submitter(
        db,
        XaiUpstream(f"http://127.0.0.1:{free_port()}/v1", "k"),  # never called: only the claim runs here
        "test",
        leases=LeaseKeeper(db, Job, "test", 60),
        finishing=Finishing(MediaLinks("s" * 32, "http://gw.test", 3600), timedelta(days=1)),
        store=MediaStore(open_store(None, tmp_path)),
        settings=SubmitterSettings(),
    )
    with writing_transactions(db) as begun:
        assert await submitter.claim() is None
    assert begun == []

    row = _queued_video(tenant.org_id)
    async with db.direct() as tx:  # charged, as every job is
        await ledger.charge(tx, tenant.org_id, row["id"], row["credits_charged"])
        await tx.execute(repository.JOB_INSERT, row)
    with writing_transactions(db) as begun:
        claimed = await submitter.claim()
    assert claimed is not None
    assert (claimed.id, claimed.lease_owner) == (row["id"], "test")
    assert begun == ["write"]


async def test_an_empty_webhook_round_writes_nothing(db: Database, db_url: str) -> None:
    tenant = await make_tenant(db_url, credits=0)
    sender = WebhookSender(db, SenderSettings(schedule=parse_schedule("1h")), "test")
    try:
        with writing_transactions(db) as begun:
            assert await sender.round() == 0
        assert begun == []

        async with db.transaction() as session:  # a private address: the attempt is refused, all this test needs
            await enqueue(
                session, org_id=tenant.org_id, job_id="job_x", url="http://127.0.0.1:9/", event="job.x", data={}
            )
        with writing_transactions(db) as begun:
            assert await sender.round() == 1
        assert begun  # the claim, then the attempt's record
    finally:
        await sender.aclose()
