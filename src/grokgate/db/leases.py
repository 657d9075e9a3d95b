"""Leasing rows to one process at a time: the mechanism under the video poller and the webhook sender.

A lease is two columns, `lease_owner` and `lease_expires_at`. Claiming selects due rows whose lease is free (never
taken, or run out) and writes this process's name into them, in one transaction. On PostgreSQL the candidates are
locked `FOR UPDATE SKIP LOCKED`, so concurrent claimers take disjoint batches without waiting on each other; on
SQLite the writing transaction is exclusive (`BEGIN IMMEDIATE`), which gives the same guarantee. Every later write
by the claimer is conditioned on `lease_owner` still being its own, so a process that lost its lease (it stalled
past the expiry and somebody else took over) changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy import ColumnElement, Integer, Select, Table, Update, any_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.db.base import utcnow
from grokgate.db.engine import Database

log = structlog.get_logger(__name__)

T = TypeVar("T")


def lease_is_free(model: Any, now: Any = None) -> ColumnElement[bool]:
    """Never leased, or the lease ran out before `now` (this moment, or a bound parameter of a prebuilt statement).
    `model` is a mapped class or a table's columns."""
    return or_(model.lease_expires_at.is_(None), model.lease_expires_at < (utcnow() if now is None else now))


def claim_statement(
    table: Table,
    *,
    due: list[ColumnElement[bool]],
    order_by: Any,
    returning: list[Any],
    is_postgres: bool,
    keep: dict[str, Any] | None = None,
) -> Update:
    """`claim` as one prebuilt statement, for a caller that runs it many times a second (the video poller): an
    UPDATE of the rows its inner SELECT picks, so one round trip leases them and returns what `returning` names.
    Its parameters are `now` (which `due` may use too), `owner`, `until` (the lease's end) and `limit`.

    The outer WHERE only names the rows: on PostgreSQL the inner SELECT's `FOR UPDATE` checks each row again in
    its latest version as it locks it (a row claimed meanwhile by another process is skipped) and holds the lock
    to the UPDATE; on SQLite the writing transaction is exclusive. Repeating the conditions there would only make
    the planner scan the table for them."""
    now = bindparam("now", type_=table.c.lease_expires_at.type)
    free = lease_is_free(table.c, now)
    candidates = select(table.c.id).where(free, *due).order_by(order_by).limit(bindparam("limit", type_=Integer()))
    chosen: ColumnElement[bool]
    if is_postgres:
        # `= ANY(ARRAY(...))`: the locking SELECT runs once, first, and the UPDATE finds its rows by primary key
        # (with `IN (SELECT ...)` the planner joins them to a scan of the whole table)
        locked = candidates.with_for_update(skip_locked=True).scalar_subquery()
        chosen = table.c.id == any_(func.array(locked))
    else:
        chosen = table.c.id.in_(candidates.scalar_subquery())
    values = {"lease_owner": bindparam("owner"), "lease_expires_at": bindparam("until", type_=now.type)}
    return update(table).where(chosen).values(**values, **(keep or {})).returning(*returning)


def _candidates(model: Any, due: list[ColumnElement[bool]]) -> Select[Any]:
    """The ids of `model`'s rows that are due and whose lease is free: what `claim` may take."""
    return select(model.id).where(lease_is_free(model), *due)


async def anything_due(session: AsyncSession, model: Any, *, due: list[ColumnElement[bool]]) -> bool:
    """Whether `claim` would find a row. A round reads this before it opens a writing transaction: an empty round
    (most of them) then costs a read, where on SQLite the transaction would hold the one writer slot across the
    pool's thread hops, which every request's charge waits behind (`db/slots.py`)."""
    return await session.scalar(_candidates(model, due).limit(1)) is not None


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
    candidates = _candidates(table, due).order_by(order_by).limit(limit)
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


class LeaseKeeper:
    """Keeps this process's leases alive while it works on the leased rows: a heartbeat, as arq's worker has.

    A lease can then be short (a dead process's work is taken over within one lease) and still cover work of any
    length: a poll with its retries, a long video download, an image request that waits on xAI for minutes. Every
    third of a lease, one UPDATE per few hundred rows moves the expiry of every row still `held` forward; a row
    whose work ended (or whose lease another process took) is not renewed. The work registers with `holding`.
    """

    def __init__(self, db: Database, model: Any, owner: str, lease_seconds: float) -> None:
        self.db = db
        self.model = model
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.held: set[str] = set()

    @property
    def beat(self) -> float:
        return self.lease_seconds / 3

    @contextlib.contextmanager
    def holding(self, row_id: str) -> Iterator[None]:
        self.held.add(row_id)
        try:
            yield
        finally:
            self.held.discard(row_id)

    async def renew(self) -> int:
        """Move the expiry of every held lease forward; returns how many rows were renewed."""
        ids = sorted(self.held)
        renewed = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            async with self.db.transaction() as session:
                result = await session.execute(
                    update(self.model)
                    .where(self.model.id.in_(chunk), self.model.lease_owner == self.owner)
                    .values(lease_expires_at=utcnow() + timedelta(seconds=self.lease_seconds))
                    .execution_options(synchronize_session=False)
                )
                renewed += int(getattr(result, "rowcount", 0) or 0)
        return renewed

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.beat)
            if self.held and not stop.is_set():
                try:
                    await self.renew()
                except Exception:  # the database is away: the leases may run out, and then others take over
                    log.warning("leases.renew_failed", held=len(self.held), exc_info=True)
