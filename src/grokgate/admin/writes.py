"""Running an admin write once per client-chosen id (an `Idempotency-Key` header, or a body field like `grantId`).

Every admin write only touches the database, so the id's record, the write and its answer are one transaction:
either all of them are committed or none is. The record is inserted before the write runs, so a second request
with the same id (a payment webhook delivered twice, concurrently or a day later) either finds the answer, or
waits on the first one's insert (PostgreSQL's unique index; SQLite's single writer) and then finds it. A write that
is refused (400, 404...) leaves nothing behind, so the same id may be tried again with a corrected request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.admin.models import AdminWrite
from grokgate.db.base import utcnow
from grokgate.db.engine import Database
from grokgate.errors import ApiError

MAX_ID_LENGTH = 64
"""Short enough to name a ledger movement (`grant:id:<id>`)."""

Work = Callable[[AsyncSession], Awaitable[tuple[int, dict[str, Any]]]]


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def check_id(value: str, field: str) -> str:
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable() or value != value.strip():
        raise ApiError(
            400,
            "INVALID_INPUT",
            f"{field}: must be 1-{MAX_ID_LENGTH} printable characters without surrounding spaces",
            {"field": field},
        )
    return value


def client_id(header: str | None, body_id: str | None, body_field: str, *, required: bool) -> str | None:
    """The write's id, from the `Idempotency-Key` header or the body field naming it; the two must agree."""
    if header is not None:
        check_id(header, "Idempotency-Key")
    if body_id is not None:
        check_id(body_id, body_field)
    if header is not None and body_id is not None and header != body_id:
        raise ApiError(
            400,
            "INVALID_INPUT",
            f"{body_field}: differs from the Idempotency-Key header; send one, or the same in both",
            {"field": body_field},
        )
    chosen = header if header is not None else body_id
    if chosen is None and required:
        raise ApiError(
            400,
            "INVALID_INPUT",
            f"Idempotency-Key: a client-chosen id is required (the header, or {body_field} in the body)",
            {"field": "Idempotency-Key"},
        )
    return chosen


def _replay(record: AdminWrite, request_hash: str) -> Answer:
    if record.request_hash != request_hash:
        raise ApiError(
            422,
            "IDEMPOTENCY_KEY_REUSED",
            "Idempotency-Key: was already used with a different request",
            {"field": "Idempotency-Key"},
        )
    return Answer(record.status_code, dict(record.response_body), replayed=True)


async def run_once(
    db: Database,
    key: str | None,
    request_hash: str,
    work: Work,
    *,
    kept: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Answer:
    """Run `work` in a transaction, recording its answer under `key`; a repeat of `key` gets the answer again.
    `kept` chooses what of the answer is stored (a new API key's secret is not)."""
    if key is None:
        async with db.transaction() as session:
            status, body = await work(session)
        return Answer(status, body)
    for _ in range(3):
        try:
            async with db.transaction() as session:
                record = await session.get(AdminWrite, key)
                if record is not None:
                    return _replay(record, request_hash)
                record = AdminWrite(
                    key=key, request_hash=request_hash, status_code=0, response_body={}, created_at=utcnow()
                )
                session.add(record)
                await session.flush()  # claims the id: a concurrent repeat waits here until this one ends
                status, body = await work(session)
                record.status_code = status
                record.response_body = kept(body) if kept is not None else body
            return Answer(status, body)
        except IntegrityError:
            continue  # a concurrent request with this id committed first: read its answer
    raise ApiError(409, "IDEMPOTENCY_IN_PROGRESS", "Idempotency-Key: a request with this id is still running")
