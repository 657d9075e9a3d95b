"""The billing page: balance, the ledger (paged), usage per day by sub-model, and the plan's limits with what is
used of them now. Read through `orgs.service`, `billing.ledger`, `billing.report` and the rate limiter."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from grokgate.api.state import services_of
from grokgate.billing import ledger, report
from grokgate.db.base import utcnow
from grokgate.jobs.repository import count_active
from grokgate.orgs.service import get_org
from grokgate.web.charts import usage_chart
from grokgate.web.pages import PageRoute, SignedIn, render
from grokgate.web.paging import Paging

router = APIRouter(route_class=PageRoute, include_in_schema=False)

CHART_DAYS = 30
LEDGER_PAGE = 25


@router.get("/billing")
async def billing(request: Request, member: SignedIn, page: int = 1) -> Response:
    services = services_of(request)
    paging = Paging.asked(page, LEDGER_PAGE)
    today = utcnow().date()
    since = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=CHART_DAYS - 1)
    async with services.db.reader() as session:
        org = await get_org(session, member.org_id)
        entries, total = await ledger.entries(session, member.org_id, limit=paging.size, offset=paging.offset)
        usage = await report.daily_usage(session, member.org_id, since)
        active = await count_active(session, member.org_id)
    plan = services.settings.plans.get(org.plan) or services.settings.plans["default"]
    used = await services.limiter.usage(member.org_id, plan)
    by_model: dict[str, int] = {}
    for _, model, credits in usage:
        by_model[model] = by_model.get(model, 0) + credits
    return render(
        request,
        "billing.html",
        org=org,
        entries=entries,
        **paging.shown(total),
        chart=usage_chart(usage, days=CHART_DAYS, today=today),
        by_model=sorted(by_model.items()),
        plan=plan,
        used=used,
        active=active,
    )
