"""Queries on the upstream key pool's rows: register the environment's keys, load them all, mark a refused key,
and the operator's add / disable / enable / remove (`grokgate admin upstream-key ...`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.db.base import new_id, utcnow
from grokgate.db.engine import Database
from grokgate.errors import ApiError
from grokgate.upstream.models import UpstreamKey

STATUSES = ("active", "refused", "disabled")


@dataclass(frozen=True)
class EnvKey:
    id: str
    name: str
    secret: str


async def register(db: Database, keys: Sequence[EnvKey]) -> None:
    """Give each environment key a row (once; a refused key stays refused across restarts)."""
    for key in keys:
        try:
            async with db.transaction() as session:
                if await session.get(UpstreamKey, key.id) is None:
                    session.add(UpstreamKey(id=key.id, name=key.name, source="env", hint=key.secret[-4:]))
        except IntegrityError:
            continue  # another process registered it at the same moment


async def all_keys(session: AsyncSession) -> list[UpstreamKey]:
    return list((await session.scalars(select(UpstreamKey).order_by(UpstreamKey.created_at, UpstreamKey.id))).all())


async def refuse(db: Database, key_id: str, reason: str) -> None:
    """Take a key out of rotation for every process: xAI refused it."""
    async with db.transaction() as session:
        await session.execute(
            update(UpstreamKey)
            .where(UpstreamKey.id == key_id, UpstreamKey.status == "active")
            .values(status="refused", status_reason=reason[:1000], status_at=utcnow())
        )


def _rps(name: str, value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 1000:
        raise ApiError(400, "INVALID_INPUT", f"{name}: must be between 1 and 1000 requests per second")
    return value


async def add(
    session: AsyncSession, name: str, secret: str, *, image_rps: int | None = None, video_rps: int | None = None
) -> UpstreamKey:
    secret = secret.strip()
    if len(secret) < 8:
        raise ApiError(400, "INVALID_INPUT", "key: is not an xAI API key (too short)")
    row = UpstreamKey(
        id=new_id("upk"),
        name=name[:100],
        source="db",
        secret=secret,
        hint=secret[-4:],
        status="active",
        image_rps=_rps("image_rps", image_rps),
        video_rps=_rps("video_rps", video_rps),
        created_at=utcnow(),
    )
    session.add(row)
    return row


async def _get(session: AsyncSession, key_id: str) -> UpstreamKey:
    row = await session.get(UpstreamKey, key_id)
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"Upstream key {key_id} not found")
    return row


async def set_status(session: AsyncSession, key_id: str, status: str, reason: str | None = None) -> UpstreamKey:
    """Disable a key, or put a refused or disabled key back in rotation (`active`)."""
    row = await _get(session, key_id)
    row.status, row.status_reason, row.status_at = status, reason, utcnow()
    return row


async def remove(session: AsyncSession, key_id: str) -> None:
    """Forget an operator's key. Videos it created can no longer be polled: they fail and are refunded."""
    row = await _get(session, key_id)
    if row.source == "env":
        raise ApiError(400, "INVALID_INPUT", f"{key_id} comes from the environment: remove it there, or disable it")
    await session.execute(delete(UpstreamKey).where(UpstreamKey.id == key_id))
