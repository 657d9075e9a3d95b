"""Money at a glance: per UTC day, credits sold (grants) and used (charged net of refunds), refunds, and what the
used credits earned against what xAI charged for them (the margin), over the last 7, 30 or 90 days. The numbers
are `billing.report.business_report`'s, the admin API's `GET /report`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from grokgate.api.state import services_of
from grokgate.billing.report import business_report
from grokgate.db.base import utcnow
from grokgate.errors import invalid_input
from grokgate.web.operator.charts import grouped_bars
from grokgate.web.operator.common import PATH, OperatorPageRoute, SignedInOperator, render

router = APIRouter(prefix=PATH, route_class=OperatorPageRoute, include_in_schema=False)

WINDOWS = (7, 30, 90)


@router.get("/money")
async def money(request: Request, operator: SignedInOperator, days: int = 30) -> Response:
    if days not in WINDOWS:
        raise invalid_input(f"days: one of {', '.join(map(str, WINDOWS))}", "days")
    services = services_of(request)
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    since = today - timedelta(days=days - 1)
    async with services.db.reader() as session:
        found = await business_report(session, since=since, credit_usd=services.settings.credit_usd)
    shown = [(since + timedelta(days=n)).date().isoformat() for n in range(days)]
    lines: dict[str, dict[str, Any]] = {line["day"]: line for line in found["byDay"]}

    def credits(name: str) -> list[float]:
        return [float(lines[day]["credits"][name]) if day in lines else 0.0 for day in shown]

    def usd(name: str) -> list[float]:
        return [float(lines[day][name]) if day in lines else 0.0 for day in shown]

    credit_chart = grouped_bars(
        shown,
        [("sold", credits("sold")), ("used", credits("used")), ("refunded", credits("refunded"))],
        label="Credits sold, used and refunded per day",
        unit="credits",
    )
    usd_chart = grouped_bars(
        shown,
        [("revenue", usd("revenueUsd")), ("xAI cost", usd("upstreamCostUsd")), ("margin", usd("marginUsd"))],
        label="Revenue, xAI's cost and the margin per day, in USD",
        unit="USD",
    )
    return render(
        request,
        "money.html",
        report=found,
        days=days,
        windows=WINDOWS,
        credit_chart=credit_chart,
        usd_chart=usd_chart,
        by_day=list(reversed(found["byDay"])),
    )
