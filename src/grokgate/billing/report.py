"""What an organisation did over a window, and what it earned: jobs, credits, xAI's cost, margin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.billing.models import LedgerEntry
from grokgate.jobs.models import Job

TICKS_PER_USD = 10**10


def _earned(jobs: int, credits: int, ticks: int, credit_usd: float) -> dict[str, Any]:
    """One sub-model's line: what its jobs earned net of refunds against what xAI charged for them, so an
    operator sees a price rule that loses money."""
    revenue = credits * credit_usd
    cost = ticks / TICKS_PER_USD
    return {
        "jobs": jobs,
        "creditsNet": credits,
        "revenueUsd": round(revenue, 4),
        "upstreamCostUsd": round(cost, 4),
        "marginUsd": round(revenue - cost, 4),
    }


async def org_report(session: AsyncSession, org_id: str, since: datetime, *, credit_usd: float) -> dict[str, Any]:
    recent = [Job.org_id == org_id, Job.created_at >= since]
    by_status = dict(
        (await session.execute(select(Job.status, func.count()).where(*recent).group_by(Job.status))).all()
    )
    ticks = await session.scalar(select(func.coalesce(func.sum(Job.cost_in_usd_ticks), 0)).where(*recent))
    moved = dict(
        (
            await session.execute(
                select(LedgerEntry.kind, func.coalesce(func.sum(LedgerEntry.amount), 0))
                .where(LedgerEntry.org_id == org_id, LedgerEntry.created_at >= since)
                .group_by(LedgerEntry.kind)
            )
        ).all()
    )
    charged = -int(moved.get("charge", 0))
    refunded = int(moved.get("refund", 0))
    net = charged - refunded
    upstream_usd = int(ticks or 0) / TICKS_PER_USD
    revenue_usd = net * credit_usd
    return {
        "orgId": org_id,
        "bySubModel": await _by_sub_model(session, recent, credit_usd),
        "jobs": {"total": sum(by_status.values()), **{str(k): int(v) for k, v in by_status.items()}},
        "credits": {"charged": charged, "refunded": refunded, "net": net, "granted": int(moved.get("grant", 0))},
        "upstreamCostUsd": round(upstream_usd, 4),
        "revenueUsd": round(revenue_usd, 4),
        "marginUsd": round(revenue_usd - upstream_usd, 4),
    }


async def daily_usage(session: AsyncSession, org_id: str, since: datetime) -> list[tuple[str, str, int]]:
    """Credits spent net of refunds per UTC day and sub-model since `since`: `(YYYY-MM-DD, sub-model, credits)`,
    oldest day first. The day is cut in SQL (UTC on both backends), so a busy month is a few dozen rows."""
    dialect = session.get_bind().dialect.name
    day = func.date(func.timezone("UTC", Job.created_at)) if dialect == "postgresql" else func.date(Job.created_at)
    rows = await session.execute(
        select(day, Job.model, func.coalesce(func.sum(Job.credits_charged - Job.credits_refunded), 0))
        .where(Job.org_id == org_id, Job.created_at >= since)
        .group_by(day, Job.model)
        .order_by(day, Job.model)
    )
    return [(str(when), str(model), int(credits or 0)) for when, model, credits in rows.all()]


def _day(column: Any, dialect: str) -> Any:
    """A UTC time column as its `YYYY-MM-DD` day, in SQL: SQLite keeps naive UTC text, PostgreSQL `timestamptz`."""
    if dialect == "sqlite":
        return func.substr(column, 1, 10)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")


async def business_report(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime | None = None,
    org_id: str | None = None,
    credit_usd: float,
) -> dict[str, Any]:
    """The whole business (or one organisation) over a window: credits sold and used, refunds, xAI's cost and the
    margin, in all, per UTC day and per sub-model. Revenue is credits charged net of refunds at `credit_usd`."""
    dialect = session.get_bind().dialect.name
    jobs_in = [Job.created_at >= since]
    moves_in = [LedgerEntry.created_at >= since]
    if until is not None:
        jobs_in.append(Job.created_at < until)
        moves_in.append(LedgerEntry.created_at < until)
    if org_id is not None:
        jobs_in.append(Job.org_id == org_id)
        moves_in.append(LedgerEntry.org_id == org_id)
    job_day, move_day = _day(Job.created_at, dialect), _day(LedgerEntry.created_at, dialect)
    days: dict[str, dict[str, int]] = {}
    for day, jobs, ticks in (
        await session.execute(
            select(job_day, func.count(), func.coalesce(func.sum(Job.cost_in_usd_ticks), 0))
            .where(*jobs_in)
            .group_by(job_day)
        )
    ).all():
        days.setdefault(str(day), {}).update(jobs=int(jobs), ticks=int(ticks or 0))
    for day, kind, amount in (
        await session.execute(
            select(move_day, LedgerEntry.kind, func.coalesce(func.sum(LedgerEntry.amount), 0))
            .where(*moves_in)
            .group_by(move_day, LedgerEntry.kind)
        )
    ).all():
        days.setdefault(str(day), {})[str(kind)] = int(amount or 0)
    by_day = [_day_line(day, days[day], credit_usd) for day in sorted(days)]
    totals = _day_line("", {key: sum(line.get(key, 0) for line in days.values()) for key in _KEYS}, credit_usd)
    totals.pop("day")
    return {
        "since": since.isoformat().replace("+00:00", "Z"),
        "until": until.isoformat().replace("+00:00", "Z") if until is not None else None,
        "orgId": org_id,
        "creditUsd": credit_usd,
        "totals": totals,
        "byDay": by_day,
        "bySubModel": await _by_sub_model(session, jobs_in, credit_usd),
    }


async def _by_sub_model(session: AsyncSession, conditions: list[Any], credit_usd: float) -> dict[str, Any]:
    """Jobs, credits earned (net of refunds) and xAI's cost per sub-model, over the jobs `conditions` select: the
    one place both reports read it, so a price rule that loses money shows the same way in each."""
    rows = await session.execute(
        select(
            Job.model,
            func.count(),
            func.coalesce(func.sum(Job.credits_charged - Job.credits_refunded), 0),
            func.coalesce(func.sum(Job.cost_in_usd_ticks), 0),
        )
        .where(*conditions)
        .group_by(Job.model)
        .order_by(Job.model)
    )
    return {
        str(model): _earned(int(jobs), int(credits or 0), int(ticks or 0), credit_usd)
        for model, jobs, credits, ticks in rows.all()
    }


_KEYS = ("jobs", "ticks", "grant", "removal", "charge", "refund")


def _day_line(day: str, sums: dict[str, int], credit_usd: float) -> dict[str, Any]:
    charged, refunded = -sums.get("charge", 0), sums.get("refund", 0)
    net = charged - refunded
    revenue, cost = net * credit_usd, sums.get("ticks", 0) / TICKS_PER_USD
    return {
        "day": day,
        "jobs": sums.get("jobs", 0),
        "credits": {
            "sold": sums.get("grant", 0),
            "removed": -sums.get("removal", 0),
            "charged": charged,
            "refunded": refunded,
            "used": net,
        },
        "revenueUsd": round(revenue, 4),
        "upstreamCostUsd": round(cost, 4),
        "marginUsd": round(revenue - cost, 4),
    }
