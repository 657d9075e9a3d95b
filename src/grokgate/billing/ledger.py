"""Every credit movement, and the cached balance moved with it in one transaction.

The shape follows two-phase transfers: a job's charge is taken before any upstream call; the job's end decides
whether it stands (a result was delivered) or is voided by a refund. Each movement carries a unique
`movement_key`, so the database refuses to apply any movement twice, and the balance never goes negative because
the charge is one conditional UPDATE (`credits_remaining >= price`) that concurrent requests cannot both pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.billing.models import LedgerEntry
from grokgate.db.base import new_id, utcnow
from grokgate.errors import ApiError, insufficient_credits
from grokgate.orgs.models import Organization


@dataclass(frozen=True)
class Balance:
    credits_remaining: int
    ledger_sum: int


async def _move(session: AsyncSession, org_id: str, amount: int) -> int | None:
    """Add `amount` (signed) to the cached balance unless that would take it below zero; None if refused."""
    stmt = (
        update(Organization)
        .where(Organization.id == org_id, Organization.credits_remaining + amount >= 0)
        .values(credits_remaining=Organization.credits_remaining + amount, updated_at=utcnow())
        .returning(Organization.credits_remaining)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def grant(session: AsyncSession, org_id: str, amount: int, note: str | None = None) -> int:
    """Add credits bought or given; returns the new balance."""
    if amount <= 0:
        raise ApiError(400, "INVALID_INPUT", "credits: must be a positive integer", {"field": "credits"})
    balance = await _move(session, org_id, amount)
    if balance is None:
        raise ApiError(404, "NOT_FOUND", f"Organization {org_id} not found")
    session.add(
        LedgerEntry(org_id=org_id, kind="grant", amount=amount, movement_key=f"grant:{new_id('grt')}", note=note)
    )
    return balance


async def charge(session: AsyncSession, org_id: str, job_id: str, amount: int) -> int:
    """Take a job's price; raises 402 when the balance cannot cover it. Returns the new balance."""
    balance = await _move(session, org_id, -amount)
    if balance is None:
        remaining = await session.scalar(select(Organization.credits_remaining).where(Organization.id == org_id))
        raise insufficient_credits(amount, remaining or 0)
    session.add(
        LedgerEntry(org_id=org_id, kind="charge", amount=-amount, movement_key=f"charge:{job_id}", job_id=job_id)
    )
    return balance


async def refund(session: AsyncSession, org_id: str, job_id: str, amount: int, note: str | None = None) -> None:
    """Give a job's charge back. The unique movement key makes a second refund of one job fail the transaction."""
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
