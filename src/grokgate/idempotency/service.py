"""Running a credit-costing POST once per `Idempotency-Key`.

The first request with a key claims it (a row with no answer yet) before doing anything, and stores its answer when
done. A repeat with the same request gets that answer back, status and body, and nothing runs or is charged again;
a repeat that arrives while the first is still running waits for it. The claim is a primary-key insert, so two
racing requests cannot both win it, on either database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.db.base import utcnow
from grokgate.db.engine import Database
from grokgate.errors import ApiError
from grokgate.idempotency.models import IdempotencyRecord

KEY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    replayed: bool = False
    headers: dict[str, str] | None = None
    """Headers of an error answered now (`Retry-After`); a replay has none (the body carries the same facts)."""


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            400,
            "INVALID_INPUT",
            f"Idempotency-Key: must be 1-{MAX_KEY_LENGTH} printable characters",
            {"field": "Idempotency-Key"},
        )
    return key


def _reused() -> ApiError:
    return ApiError(
        422,
        "IDEMPOTENCY_KEY_REUSED",
        "Idempotency-Key: was already used with a different request body",
        {"field": "Idempotency-Key"},
    )


def _answer_of(record: IdempotencyRecord, request_hash: str) -> Answer:
    """What a live claim says to a request with its key: the stored answer, or 'wait' (status 0) while it runs."""
    if record.request_hash != request_hash:
        raise _reused()
    if record.status_code is None:
        return Answer(status=0, body=None)
    return Answer(status=record.status_code, body=record.response_body, replayed=True)


class Idempotency:
    def __init__(self, db: Database, *, stale_after: float, wait_step: float = 0.05) -> None:
        self.db = db
        self.stale_after = timedelta(seconds=stale_after)
        self.wait_step = wait_step

    async def _claim_or_read(self, org_id: str, key: str, request_hash: str) -> Answer | None:
        """None when this request now owns the key; the stored answer, or a 'wait' marker, otherwise."""
        now = utcnow()
        try:
            async with self.db.transaction() as session:
                record = await session.get(IdempotencyRecord, (org_id, key))
                if record is not None and self._stale(record, now):
                    # Expired, or claimed by a request whose process died: start afresh.
                    await session.delete(record)
                    await session.flush()
                    record = None
                if record is None:
                    session.add(
                        IdempotencyRecord(
                            org_id=org_id, key=key, request_hash=request_hash, created_at=now, expires_at=now + KEY_TTL
                        )
                    )
                    return None
                return _answer_of(record, request_hash)
        except IntegrityError:
            return Answer(status=0, body=None)  # a racing request claimed it first: wait for its answer

    def _stale(self, record: IdempotencyRecord, now: datetime) -> bool:
        """Expired, or claimed by a request that should have answered long ago (its process died)."""
        return record.expires_at <= now or (record.status_code is None and record.created_at < now - self.stale_after)

    async def _peek(self, org_id: str, key: str, request_hash: str) -> Answer | None:
        """Read-only look at a claimed key: its answer once there is one, a 'wait' marker while it runs, None when
        it is free to claim again. Waiting costs reads, never the write lock (on SQLite, the process's only one)."""
        async with self.db.reader() as session:
            record = await session.get(IdempotencyRecord, (org_id, key))
            if record is None or self._stale(record, utcnow()):
                return None
            return _answer_of(record, request_hash)

    async def run(
        self, org_id: str, key: str, request_hash: str, work: Callable[[], Awaitable[Answer]], *, wait: float
    ) -> Answer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        pause = self.wait_step
        found = await self._peek(org_id, key, request_hash)
        if found is None:
            found = await self._claim_or_read(org_id, key, request_hash)
        while found is not None:
            if found.status:
                return found
            if loop.time() > deadline:
                raise ApiError(
                    409,
                    "IDEMPOTENCY_IN_PROGRESS",
                    "Idempotency-Key: a request with this key is still being processed; retry later",
                    {"field": "Idempotency-Key"},
                )
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            pause = min(pause * 1.5, 1.0)
            found = await self._peek(org_id, key, request_hash)
            if found is None:  # released or stale: try to claim it ourselves
                found = await self._claim_or_read(org_id, key, request_hash)
        try:
            answer = await work()
        except ApiError as exc:
            answer = Answer(status=exc.status, body=exc.body(), headers=exc.headers)
        except BaseException:
            # Nothing was charged (the job was never opened), or the job was ended and refunded before this was
            # raised (`JobService.start`): a retry with this key may run afresh.
            with contextlib.suppress(Exception):
                async with self.db.transaction() as session:
                    await session.execute(
                        delete(IdempotencyRecord).where(
                            IdempotencyRecord.org_id == org_id, IdempotencyRecord.key == key
                        )
                    )
            raise
        if answer.status == 503 and _code(answer.body) == "SERVICE_UNAVAILABLE":
            # The database went away mid-request: whether the job's end was written is unknown, so the claim stays
            # unanswered (a retry waits, then gets 409) until it goes stale, by which time the job's lease has run
            # out and the poller has refunded it. Releasing it now could charge a retry beside a held charge.
            return answer
        async with self.db.transaction() as session:
            record = await session.get(IdempotencyRecord, (org_id, key))
            if record is not None and not kept(answer.status):
                await session.delete(record)  # nothing stands: a later retry with this key may run it
            elif record is not None:
                record.status_code = answer.status
                record.response_body = answer.body
        return answer


async def purge_expired(session: AsyncSession, now: datetime, *, limit: int) -> int:
    """Delete up to `limit` records whose 24 h are over (a key may be reused then, so nothing reads them again);
    without this the table, answers and all, grows by one row per keyed request forever."""
    doomed = (
        select(IdempotencyRecord.org_id, IdempotencyRecord.key).where(IdempotencyRecord.expires_at < now).limit(limit)
    )
    result = await session.execute(
        delete(IdempotencyRecord)
        .where(tuple_(IdempotencyRecord.org_id, IdempotencyRecord.key).in_(doomed))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def kept(status: int) -> bool:
    """Whether an answer is kept for replay under its key. Not kept: answers that leave nothing standing and ask
    the client to come back: 429 and 503 (try later, `Retry-After`; a job opened for it was ended and refunded before
    the answer), 402 and 403 (no credits, a spend cap, a suspension: refused before anything ran). Replaying those
    would refuse the same request after a top-up, or for a day after xAI had room again. Everything else is kept,
    refusals by xAI included: the same request would be refused (and billed by xAI) again."""
    return status not in (402, 403, 429, 503)


def _code(body: Any) -> object:
    return body.get("code") if isinstance(body, dict) else None
