"""Leasing rows to one process at a time: the mechanism under the video poller and the webhook sender.

A lease is two columns, `lease_owner` and `lease_expires_at`. Claiming selects due rows whose lease is free (never
taken, or run out) and writes this process's name into them, in one transaction. On PostgreSQL the candidates are
locked `FOR UPDATE SKIP LOCKED`, so concurrent claimers take disjoint batches without waiting on each other; on
SQLite the writing transaction is exclusive (`BEGIN IMMEDIATE`), which gives the same guarantee. Every later write
by the claimer is conditioned on `lease_owner` still being its own, so a process that lost its lease (it stalled
past the expiry and somebody else took over) changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.db.base import utcnow

T = TypeVar("T")


def lease_is_free(model: Any) -> ColumnElement[bool]:
    now = utcnow()
    return or_(model.lease_expires_at.is_(None), model.lease_expires_at < now)


async def claim(
    session: AsyncSession,
    model: type[T],
    *,
    due: list[ColumnElement[bool]],
    order_by: Any,
    owner: str,
    lease_seconds: float,
    limit: int,
    is_postgres: bool,
    keep: dict[str, Any] | None = None,
) -> list[T]:
    """Lease up to `limit` rows of `model` matching `due`; `keep` names columns the claim must not touch."""
    table: Any = model
    free = lease_is_free(table)
    candidates = select(table.id).where(free, *due).order_by(order_by).limit(limit)
    if is_postgres:
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list((await session.scalars(candidates)).all())
    if not ids:
        return []
    claimed = await session.scalars(
        update(table)
        .where(table.id.in_(ids), free, *due)
        .values(lease_owner=owner, lease_expires_at=utcnow() + timedelta(seconds=lease_seconds), **(keep or {}))
        .returning(table)
        .execution_options(synchronize_session=False)
    )
    return list(claimed.all())
