"""Server-side sessions behind a cookie, for any kind of account (`member`, `operator`).

The cookie holds a random token; the table keeps only its SHA-256, the kind and id of who signed in, the CSRF
token, and when it expires or was revoked. Logging out revokes the row, so a copied cookie stops working at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.accounts import csrf
from grokgate.accounts.models import AuthSession
from grokgate.db.base import utcnow

COOKIE = "grokgate_session"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(
    session: AsyncSession, kind: str, subject_id: str, *, ttl: timedelta, org_id: str | None = None
) -> tuple[AuthSession, str]:
    """A new session row and the clear token for the cookie (returned once, never stored)."""
    token = secrets.token_urlsafe(32)
    row = AuthSession(
        id=token_hash(token),
        kind=kind,
        subject_id=subject_id,
        org_id=org_id,
        csrf_token=csrf.new_token(),
        expires_at=utcnow() + ttl,
    )
    session.add(row)
    await session.flush()
    return row, token


async def find(session: AsyncSession, token: str | None, kind: str) -> AuthSession | None:
    """The live session of that kind the token opens, or None (unknown, revoked, expired, another kind)."""
    if not token or len(token) > 128:
        return None
    row = await session.get(AuthSession, token_hash(token))
    if row is None or row.kind != kind or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    return row


async def revoke(session: AsyncSession, token: str | None) -> None:
    if token and len(token) <= 128:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.id == token_hash(token), AuthSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


async def revoke_all(session: AsyncSession, kind: str, subject_id: str, *, keep: str | None = None) -> None:
    """End every session of one person (a password change), except the one `keep` (the token in use)."""
    conditions = [AuthSession.kind == kind, AuthSession.subject_id == subject_id, AuthSession.revoked_at.is_(None)]
    if keep is not None:
        conditions.append(AuthSession.id != token_hash(keep))
    await session.execute(update(AuthSession).where(*conditions).values(revoked_at=utcnow()))


async def purge_ended(session: AsyncSession, now: datetime, *, limit: int) -> int:
    """Delete up to `limit` sessions that can never sign anyone in again (expired or revoked): `find` refuses
    them already, and the table would otherwise keep one row per sign-in forever."""
    doomed = (
        select(AuthSession.id)
        .where(or_(AuthSession.expires_at < now, AuthSession.revoked_at.is_not(None)))
        .limit(limit)
    )
    result = await session.execute(
        delete(AuthSession).where(AuthSession.id.in_(doomed)).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
