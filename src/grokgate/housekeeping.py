"""Rows whose time is over, deleted a batch per sweeper round: idempotency records past their 24 h and web sessions
that expired or were revoked. Nothing reads them again, and each would otherwise grow with traffic forever
(media has its own retention, `storage/retention.py`). Every delete is conditional, so processes may sweep at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from grokgate.accounts.sessions import purge_ended
from grokgate.db.base import utcnow
from grokgate.db.engine import Database
from grokgate.idempotency.service import purge_expired

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Purged:
    idempotency_keys: int
    sessions: int


async def purge(db: Database, *, now: datetime | None = None, batch: int = 1000) -> Purged:
    """One round: up to `batch` rows of each kind, in one short transaction."""
    moment = now or utcnow()
    async with db.transaction() as session:
        purged = Purged(
            idempotency_keys=await purge_expired(session, moment, limit=batch),
            sessions=await purge_ended(session, moment, limit=batch),
        )
    if purged.idempotency_keys or purged.sessions:
        log.info("housekeeping.purged", idempotency_keys=purged.idempotency_keys, sessions=purged.sessions)
    return purged
