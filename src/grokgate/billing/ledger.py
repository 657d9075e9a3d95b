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
from typing import Any

from sqlalchemy import Integer, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.billing.amounts import MAX_CREDITS, MAX_PRICE, checked
from grokgate.billing.models import LedgerEntry
from grokgate.db.base import new_id, table_of, utcnow
from grokgate.db.direct import Tx
from grokgate.errors import ApiError, insufficient_credits, org_suspended
from grokgate.orgs.models import Organization


@dataclass(frozen=True)
class Balance:
    credits_remaining: int
    ledger_sum: int


def _move_statement(*, capped: bool, active: bool) -> Any:
    """The balance's conditional UPDATE, built once: a statement built per call costs more CPU than its execution
    (expression building, ORM bulk-update bookkeeping, the cache key), and this one runs on every request."""
    amount = bindparam("amount", type_=Integer)
    within = [_ORGS.c.credits_remaining + amount >= 0]
    if capped:
        within.append(_ORGS.c.credits_remaining <= MAX_CREDITS - amount)
    if active:
        within.append(_ORGS.c.suspended_at.is_(None))
    return (
        update(_ORGS)
        .where(_ORGS.c.id == bindparam("org_id"), *within)
        .values(credits_remaining=_ORGS.c.credits_remaining + amount, updated_at=bindparam("now"))
        .returning(_ORGS.c.credits_remaining)
    )


_ORGS = table_of(Organization)
_MOVES = {(c, a): _move_statement(capped=c, active=a) for c in (False, True) for a in (False, True)}
_ENTRY = insert(table_of(LedgerEntry))


async def _move(session: Tx, org_id: str, amount: int, *, capped: bool = False, active: bool = False) -> int | None:
    """Add `amount` (signed) to the cached balance unless that would take it below zero (or, `capped`, above
    `MAX_CREDITS`; or, `active`, the organisation is suspended); None if refused."""
    params = {"org_id": org_id, "amount": amount, "now": utcnow()}
    return (await session.execute(_MOVES[capped, active], params)).scalar_one_or_none()


async def _enter(
    session: Tx, org_id: str, kind: str, amount: int, movement_key: str, job_id: str, note: str | None = None
) -> None:
    """A job's ledger row, by a prebuilt Core INSERT (no unit-of-work bookkeeping on the hot path)."""
    row = {
        "org_id": org_id,
        "kind": kind,
        "amount": amount,
        "movement_key": movement_key,
        "job_id": job_id,
        "note": note,
        "created_at": utcnow(),
    }
    await session.execute(_ENTRY, row)


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


async def charge(session: Tx, org_id: str, job_id: str, amount: int) -> int:
    """Take a job's price; raises 402 when the balance cannot cover it, 403 `ORG_SUSPENDED` when the organisation
    is suspended (checked in the same UPDATE, so a suspension is never raced past). Returns the new balance."""
    checked(amount, most=MAX_PRICE)
    balance = await _move(session, org_id, -amount, active=True)
    if balance is None:
        raise await refusal(session, org_id, amount)
    await _enter(session, org_id, "charge", -amount, f"charge:{job_id}", job_id)
    return balance


async def refusal(session: Tx | AsyncSession, org_id: str, amount: int) -> ApiError:
    """Why a charge of `amount` was refused: 403 `ORG_SUSPENDED`, or 402 with the balance there is."""
    found = (
        await session.execute(
            select(Organization.credits_remaining, Organization.suspended_at).where(Organization.id == org_id)
        )
    ).one_or_none()
    if found is not None and found.suspended_at is not None:
        return org_suspended(org_id)
    return insufficient_credits(amount, found.credits_remaining if found is not None else 0)


async def refund(session: Tx, org_id: str, job_id: str, amount: int, note: str | None = None) -> None:
    """Give a job's charge back. The unique movement key makes a second refund of one job fail the transaction."""
    checked(amount, most=MAX_PRICE)
    await _enter(session, org_id, "refund", amount, f"refund:{job_id}", job_id, note)
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
