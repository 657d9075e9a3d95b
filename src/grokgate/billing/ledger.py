"""Every credit movement, and the cached balance moved with it in one transaction.

The shape follows two-phase transfers: a job's charge is taken before any upstream call; the job's end decides
whether it stands (a result was delivered) or is voided by a refund. Each movement carries a unique
`movement_key`, so the database refuses to apply any movement twice, and the balance never goes negative because
the charge is one conditional UPDATE (`credits_remaining >= price`) that concurrent requests cannot both pass.
Every amount is checked against `amounts.MAX_CREDITS`, and a grant's UPDATE is conditioned on the new balance
staying within it, so no grant can overflow a balance, however many run at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.billing.amounts import MAX_CREDITS, MAX_PRICE, checked
from grokgate.billing.models import LedgerEntry
from grokgate.db.base import new_id, utcnow
from grokgate.errors import ApiError, insufficient_credits, org_suspended
from grokgate.orgs.models import Organization


@dataclass(frozen=True)
class Balance:
    credits_remaining: int
    ledger_sum: int


async def _move(
    session: AsyncSession, org_id: str, amount: int, *, capped: bool = False, active: bool = False
) -> int | None:
    """Add `amount` (signed) to the cached balance unless that would take it below zero (or, `capped`, above
    `MAX_CREDITS`; or, `active`, the organisation is suspended); None if refused."""
    within = [Organization.credits_remaining + amount >= 0]
    if capped:
        within.append(Organization.credits_remaining <= MAX_CREDITS - amount)
    if active:
        within.append(Organization.suspended_at.is_(None))
    stmt = (
        update(Organization)
        .where(Organization.id == org_id, *within)
        .values(credits_remaining=Organization.credits_remaining + amount, updated_at=utcnow())
        .returning(Organization.credits_remaining)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def grant(
    session: AsyncSession, org_id: str, amount: int, note: str | None = None, *, reference: str | None = None
) -> int:
    """Add credits bought or given; returns the new balance. Refused (400) when it would pass `MAX_CREDITS`.

    `reference` is a client-chosen id (a payment's): its movement key `grant:<reference>` is unique, so the
    database refuses a second grant of one payment however it arrives."""
    checked(amount)
    balance = await _move(session, org_id, amount, capped=True)
    if balance is None:
        remaining = await session.scalar(select(Organization.credits_remaining).where(Organization.id == org_id))
        if remaining is None:
            raise ApiError(404, "NOT_FOUND", f"Organization {org_id} not found")
        raise ApiError(
            400,
            "INVALID_INPUT",
            f"credits: a balance may hold at most {MAX_CREDITS}; {remaining} + {amount} is more",
            {"field": "credits", "creditsRemaining": remaining, "maxCredits": MAX_CREDITS},
        )
    session.add(
        LedgerEntry(
            org_id=org_id,
            kind="grant",
            amount=amount,
            movement_key=f"grant:{reference or new_id('grt')}",
            note=note,
        )
    )
    return balance


async def remove(session: AsyncSession, org_id: str, amount: int, note: str, *, reference: str | None = None) -> int:
    """Take credits away (a chargeback, a mistaken grant): a negative `removal` row. Refused (400) when the balance
    does not hold them; returns the new balance."""
    checked(amount)
    balance = await _move(session, org_id, -amount)
    if balance is None:
        remaining = await session.scalar(select(Organization.credits_remaining).where(Organization.id == org_id))
        if remaining is None:
            raise ApiError(404, "NOT_FOUND", f"Organization {org_id} not found", {"orgId": org_id})
        raise ApiError(
            400,
            "INVALID_INPUT",
            f"credits: the balance holds {remaining}, fewer than {amount}",
            {"field": "credits", "creditsRemaining": remaining},
        )
    session.add(
        LedgerEntry(
            org_id=org_id,
            kind="removal",
            amount=-amount,
            movement_key=f"removal:{reference or new_id('rmv')}",
            note=note,
        )
    )
    return balance


async def charge(session: AsyncSession, org_id: str, job_id: str, amount: int) -> int:
    """Take a job's price; raises 402 when the balance cannot cover it, 403 `ORG_SUSPENDED` when the organisation
    is suspended (checked in the same UPDATE, so a suspension is never raced past). Returns the new balance."""
    checked(amount, most=MAX_PRICE)
    balance = await _move(session, org_id, -amount, active=True)
    if balance is None:
        found = (
            await session.execute(
                select(Organization.credits_remaining, Organization.suspended_at).where(Organization.id == org_id)
            )
        ).one_or_none()
        if found is not None and found.suspended_at is not None:
            raise org_suspended(org_id)
        raise insufficient_credits(amount, found.credits_remaining if found is not None else 0)
    # A Core INSERT: the hot path's ledger row without the unit of work's bookkeeping.
    await session.execute(
        insert(LedgerEntry).values(
            org_id=org_id,
            kind="charge",
            amount=-amount,
            movement_key=f"charge:{job_id}",
            job_id=job_id,
            created_at=utcnow(),
        )
    )
    return balance


async def refund(session: AsyncSession, org_id: str, job_id: str, amount: int, note: str | None = None) -> None:
    """Give a job's charge back. The unique movement key makes a second refund of one job fail the transaction."""
    checked(amount, most=MAX_PRICE)
    session.add(
        LedgerEntry(
            org_id=org_id,
            kind="refund",
            amount=amount,
            movement_key=f"refund:{job_id}",
            job_id=job_id,
            note=note,
        )
    )
    await session.flush()
    await _move(session, org_id, amount)


async def balance_of(session: AsyncSession, org_id: str) -> Balance | None:
    """The cached balance and the ledger sum, read independently so that a drift between them shows."""
    cached = await session.scalar(select(Organization.credits_remaining).where(Organization.id == org_id))
    if cached is None:
        return None
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.org_id == org_id)
    )
    return Balance(credits_remaining=cached, ledger_sum=int(total or 0))


async def entries(session: AsyncSession, org_id: str, *, limit: int, offset: int) -> tuple[list[LedgerEntry], int]:
    """A page of the organisation's movements, newest first, and how many there are in all."""
    mine = LedgerEntry.org_id == org_id
    total = await session.scalar(select(func.count()).select_from(LedgerEntry).where(mine))
    rows = await session.scalars(
        select(LedgerEntry).where(mine).order_by(LedgerEntry.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total or 0)
