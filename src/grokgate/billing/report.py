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
    per_model = (
        await session.execute(
            select(
                Job.model,
                func.count(),
                func.coalesce(func.sum(Job.credits_charged - Job.credits_refunded), 0),
                func.coalesce(func.sum(Job.cost_in_usd_ticks), 0),
            )
            .where(*recent)
            .group_by(Job.model)
            .order_by(Job.model)
        )
    ).all()
    return {
        "orgId": org_id,
        "bySubModel": {
            str(model): _earned(int(jobs), int(credits or 0), int(model_ticks or 0), credit_usd)
            for model, jobs, credits, model_ticks in per_model
        },
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
