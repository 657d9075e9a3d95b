"""Creating organisations and keys, and resolving a presented key to its organisation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.billing import ledger
from grokgate.db.base import new_id, utcnow
from grokgate.errors import ApiError
from grokgate.orgs import keys
from grokgate.orgs.models import ApiKey, Organization


@dataclass(frozen=True)
class Caller:
    """Who is calling: the organisation behind the key, and the key itself."""

    org_id: str
    key_id: str


async def create_org(session: AsyncSession, name: str, credits: int) -> Organization:
    if not name.strip():
        raise ApiError(400, "INVALID_INPUT", "name: must not be empty", {"field": "name"})
    if credits < 0:
        raise ApiError(400, "INVALID_INPUT", "credits: must not be negative", {"field": "credits"})
    org = Organization(id=new_id("org"), name=name.strip(), credits_remaining=0)
    session.add(org)
    await session.flush()
    if credits:
        org.credits_remaining = await ledger.grant(session, org.id, credits, note="initial credits")
    return org


async def get_org(session: AsyncSession, org_id: str) -> Organization:
    org = await session.get(Organization, org_id)
    if org is None:
        raise ApiError(404, "NOT_FOUND", f"Organization {org_id} not found", {"orgId": org_id})
    return org


async def any_org(session: AsyncSession) -> Organization | None:
    return (await session.scalars(select(Organization).limit(1))).first()


async def create_key(session: AsyncSession, org_id: str, expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """A new key for `org_id`; the clear secret is returned here once and never stored."""
    await get_org(session, org_id)
    new = keys.generate_key()
    row = ApiKey(id=new.key_id, org_id=org_id, secret_hash=new.secret_hash, expires_at=expires_at)
    session.add(row)
    return row, new.secret


async def revoke_key(session: AsyncSession, key_id: str) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"API key {key_id} not found", {"keyId": key_id})
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


async def authenticate(session: AsyncSession, authorization: str | None) -> Caller:
    token = keys.bearer_token(authorization)
    key_id = keys.key_id_of(token)
    row = await session.get(ApiKey, key_id) if key_id else None
    if row is None or not keys.matches(token, row.secret_hash):
        raise ApiError(401, "KEY_NOT_FOUND", "API key not found")
    if row.revoked_at is not None:
        raise ApiError(401, "KEY_REVOKED", "API key has been revoked")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise ApiError(401, "KEY_EXPIRED", "API key has expired")
    return Caller(org_id=row.org_id, key_id=row.id)
