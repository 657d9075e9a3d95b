"""Creating organisations and keys, and resolving a presented key to its organisation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.billing import ledger
from grokgate.billing.amounts import checked
from grokgate.billing.caps import NO_CAPS, Caps, check_cap
from grokgate.db.base import detached, new_id, table_of, utcnow
from grokgate.db.direct import Tx
from grokgate.db.engine import Database
from grokgate.errors import ApiError
from grokgate.orgs import keys
from grokgate.orgs.authcache import AuthCache
from grokgate.orgs.models import ApiKey, Organization
from grokgate.orgs.scopes import ALL_SCOPES
from grokgate.ratelimits.plans import DEFAULT_PLAN
from grokgate.webhooks.outbox import new_secret


@dataclass(frozen=True)
class Caller:
    """Who is calling: the organisation behind the key, the key itself, what it may do, and the plan it is on."""

    org_id: str
    key_id: str
    scopes: frozenset[str] = frozenset(ALL_SCOPES)
    plan: str = DEFAULT_PLAN
    caps: Caps = NO_CAPS
    """The key's spend caps, counted with the charge (`billing/caps.py`)."""


async def create_org(session: AsyncSession, name: str, credits: int) -> Organization:
    if not name.strip():
        raise ApiError(400, "INVALID_INPUT", "name: must not be empty", {"field": "name"})
    checked(credits, allow_zero=True)
    org = Organization(
        id=new_id("org"), name=name.strip(), credits_remaining=0, plan=DEFAULT_PLAN, webhook_secret=new_secret()
    )
    session.add(org)
    await session.flush()
    if credits:
        org.credits_remaining = await ledger.grant(session, org.id, credits, note="initial credits")
    return org


def _org_not_found(org_id: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"Organization {org_id} not found", {"orgId": org_id})


async def get_org(session: AsyncSession, org_id: str) -> Organization:
    """The organisation, held by `session` (what it changes is written at the commit)."""
    org = await session.get(Organization, org_id)
    if org is None:
        raise _org_not_found(org_id)
    return org


_ORGS = table_of(Organization)
_READ_ORG = select(*_ORGS.c).where(_ORGS.c.id == bindparam("org_id"))


async def read_org(tx: Tx, org_id: str) -> Organization:
    """The organisation as it is, to answer with (a copy no session holds): a customer's balance reads it in a
    quick read (`Database.quick_read`)."""
    row = (await tx.execute(_READ_ORG, {"org_id": org_id})).one_or_none()
    if row is None:
        raise _org_not_found(org_id)
    return detached(Organization, row._mapping)


async def any_org(session: AsyncSession) -> Organization | None:
    return (await session.scalars(select(Organization).limit(1))).first()


async def create_key(
    session: AsyncSession,
    org_id: str,
    expires_at: datetime | None = None,
    scopes: frozenset[str] = frozenset(ALL_SCOPES),
    name: str | None = None,
    caps: Caps = NO_CAPS,
) -> tuple[ApiKey, str]:
    """A new key for `org_id`; the clear secret is returned here once and never stored."""
    await get_org(session, org_id)
    if name is not None and len(name.strip()) > 100:
        raise ApiError(400, "INVALID_INPUT", "name: at most 100 characters", {"field": "name"})
    daily, monthly = check_cap(caps.daily, "dailyCap"), check_cap(caps.monthly, "monthlyCap")
    new = keys.generate_key()
    ordered = " ".join(scope for scope in ALL_SCOPES if scope in scopes)
    row = ApiKey(
        id=new.key_id,
        org_id=org_id,
        secret_hash=new.secret_hash,
        expires_at=expires_at,
        scopes=ordered,
        name=(name or "").strip() or None,
        daily_cap=daily,
        monthly_cap=monthly,
    )
    session.add(row)
    return row, new.secret


async def list_keys(session: AsyncSession, org_id: str) -> list[ApiKey]:
    """The organisation's keys, newest first, revoked ones included (their history shows who used what)."""
    rows = await session.scalars(select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.created_at.desc()))
    return list(rows.all())


async def revoke_key(session: AsyncSession, key_id: str, org_id: str | None = None) -> ApiKey:
    """Revoke a key; with `org_id`, only one of that organisation's (another's is as unknown as a missing one)."""
    row = await session.get(ApiKey, key_id)
    if row is None or (org_id is not None and row.org_id != org_id):
        raise ApiError(404, "NOT_FOUND", f"API key {key_id} not found", {"keyId": key_id})
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


async def set_plan(session: AsyncSession, org_id: str, plan: str, known: Iterable[str]) -> Organization:
    if plan not in set(known):
        raise ApiError(400, "INVALID_INPUT", f"plan: unknown plan {plan!r}", {"field": "plan"})
    org = await get_org(session, org_id)
    org.plan = plan
    return org


async def webhook_secret(session: AsyncSession, org_id: str, *, rotate: bool) -> str:
    org = await get_org(session, org_id)
    if rotate or org.webhook_secret is None:
        org.webhook_secret = new_secret()
    return org.webhook_secret


async def touch_key(session: AsyncSession, key_id: str, *, not_since: datetime) -> None:
    """Record use of a key, unless it was recorded after `not_since` already (so at most one write a minute)."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < not_since))
        .values(last_used_at=utcnow())
    )


async def authenticate(session: AsyncSession, authorization: str | None) -> Caller:
    return (await _authenticate(session, keys.bearer_token(authorization)))[0]


async def _authenticate(session: AsyncSession, token: str) -> tuple[Caller, datetime | None]:
    """The caller a presented key stands for, and when the key expires; one statement."""
    key_id = keys.key_id_of(token)
    row = (
        (
            await session.execute(
                select(
                    ApiKey.id,
                    ApiKey.org_id,
                    ApiKey.secret_hash,
                    ApiKey.revoked_at,
                    ApiKey.expires_at,
                    ApiKey.scopes,
                    ApiKey.daily_cap,
                    ApiKey.monthly_cap,
                    Organization.plan,
                )
                .outerjoin(Organization, Organization.id == ApiKey.org_id)
                .where(ApiKey.id == key_id)
            )
        ).one_or_none()
        if key_id
        else None
    )
    if row is None or not keys.matches(token, row.secret_hash):
        raise ApiError(401, "KEY_NOT_FOUND", "API key not found")
    if row.revoked_at is not None:
        raise ApiError(401, "KEY_REVOKED", "API key has been revoked")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise ApiError(401, "KEY_EXPIRED", "API key has expired")
    caller = Caller(
        org_id=row.org_id,
        key_id=row.id,
        scopes=frozenset(row.scopes.split()),
        plan=row.plan or DEFAULT_PLAN,
        caps=Caps(daily=row.daily_cap, monthly=row.monthly_cap),
    )
    return caller, row.expires_at


async def authenticate_cached(db: Database, cache: AuthCache, authorization: str | None) -> Caller:
    """`authenticate`, answered from `cache` when this key was looked up within its TTL (`orgs/authcache.py`
    says when a change to a key is seen)."""
    token = keys.bearer_token(authorization)
    digest = cache.token_digest(token)
    found: Caller | None = cache.get(digest)
    if found is not None:
        return found
    generation = cache.generation
    async with db.reader() as session:
        caller, expires_at = await _authenticate(session, token)
    cache.put(digest, caller, expires_at, generation)
    return caller


async def search_orgs(
    session: AsyncSession, *, query: str | None, suspended: bool | None, limit: int, offset: int
) -> tuple[list[Organization], int]:
    """Organisations whose id or name contains `query` (any case), newest first, and how many match in all."""
    conditions = []
    if query:
        pattern = f"%{query.lower()}%"
        conditions.append(or_(func.lower(Organization.name).like(pattern), func.lower(Organization.id).like(pattern)))
    if suspended is not None:
        conditions.append(Organization.suspended_at.is_not(None) if suspended else Organization.suspended_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(Organization).where(*conditions))
    rows = await session.scalars(
        select(Organization)
        .where(*conditions)
        .order_by(Organization.created_at.desc(), Organization.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), int(total or 0)


async def set_suspended(session: AsyncSession, org_id: str, *, suspended: bool) -> Organization:
    """Suspend (its generations answer 403 `ORG_SUSPENDED` and charge nothing) or resume an organisation.
    Suspending twice keeps the first time."""
    org = await get_org(session, org_id)
    if suspended and org.suspended_at is None:
        org.suspended_at = utcnow()
    elif not suspended:
        org.suspended_at = None
    return org


async def keys_of(session: AsyncSession, org_id: str) -> list[ApiKey]:
    await get_org(session, org_id)
    return list(
        (await session.scalars(select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.created_at))).all()
    )


async def find_key(session: AsyncSession, key_id: str) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"API key {key_id} not found", {"keyId": key_id})
    return row
