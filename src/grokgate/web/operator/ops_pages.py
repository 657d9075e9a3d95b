"""The operator's view across organisations: every job with filters and failure reasons, webhook deliveries that
keep failing (retry now), and the upstream key pool with each key's health (disable, enable). Through
`jobs.repository.search`, `webhooks.failing` and `upstream.keys`, as the admin API and `grokgate admin` do."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from grokgate.accounts.operators import OperatorContext
from grokgate.admin.routing import PathId
from grokgate.api.state import services_of
from grokgate.errors import invalid_input
from grokgate.jobs import repository as jobs
from grokgate.upstream import keys as upstream_keys
from grokgate.web.operator.common import PATH, OperatorPageRoute, SignedInOperator, operator_form, render
from grokgate.web.pages import form_day
from grokgate.web.paging import Paging
from grokgate.webhooks import failing

router = APIRouter(prefix=PATH, route_class=OperatorPageRoute, include_in_schema=False)

PAGE_SIZE = 50
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")


def _start(day: date | None) -> datetime | None:
    return datetime.combine(day, datetime.min.time(), UTC) if day else None


def _checked_id(value: str, field: str) -> str | None:
    if not value:
        return None
    if len(value) > 64 or "\x00" in value:
        raise invalid_input(f"{field}: not an id", field)
    return value


@router.get("/jobs")
async def job_list(
    request: Request,
    operator: SignedInOperator,
    status: str = "",
    model: str = "",
    org: str = "",
    since: str = "",
    until: str = "",
    page: int = 1,
) -> Response:
    services = services_of(request)
    models = [entry["id"] for entry in services.settings.catalogue.listing()]
    if status and status not in STATUSES:
        raise invalid_input(f"status: one of {', '.join(STATUSES)}", "status")
    if model and model not in models:
        raise invalid_input("model: not a sub-model sold here", "model")
    first, last = form_day(since, "since"), form_day(until, "until")
    paging = Paging.asked(page, PAGE_SIZE)
    where = jobs.JobFilter(
        org_id=_checked_id(org.strip(), "org"),
        status=status or None,
        model=model or None,
        since=_start(first),
        until=_start(last + timedelta(days=1)) if last else None,
    )
    async with services.db.reader() as session:
        rows, total = await jobs.search(session, where, limit=paging.size, offset=paging.offset)
    asked = {"status": status, "model": model, "org": org, "since": since, "until": until}
    kept = {k: v for k, v in asked.items() if v}
    return render(
        request,
        "jobs.html",
        jobs=rows,
        statuses=STATUSES,
        models=models,
        chosen=kept,
        **paging.shown(total, f"{PATH}/jobs", kept),
    )


@router.get("/webhooks")
async def deliveries(request: Request, operator: SignedInOperator, state: str = "", page: int = 1) -> Response:
    if state and state not in failing.FAILING:
        raise invalid_input("state: failed or retrying", "state")
    paging = Paging.asked(page, PAGE_SIZE)
    async with services_of(request).db.reader() as session:
        rows, total = await failing.failing(
            session, state=state or None, org_id=None, limit=paging.size, offset=paging.offset
        )
    return render(
        request,
        "webhooks.html",
        deliveries=rows,
        state=state,
        **paging.shown(total, f"{PATH}/webhooks", {"state": state} if state else {}),
    )


@router.post("/webhooks/{delivery_id}/retry")
async def retry(request: Request, operator: SignedInOperator, delivery_id: PathId) -> Response:
    await operator_form(request, operator)
    async with services_of(request).db.transaction() as session:
        await failing.retry_now(session, delivery_id)
    return RedirectResponse(f"{PATH}/webhooks", status_code=303)


@router.get("/upstream")
async def upstream(request: Request, operator: SignedInOperator) -> Response:
    async with services_of(request).db.reader() as session:
        rows = await upstream_keys.all_keys(session)
    return render(request, "upstream.html", keys=rows)


async def _set_status(request: Request, operator: OperatorContext, key_id: str, status: str) -> Response:
    await operator_form(request, operator)
    reason = f"disabled by {operator.email}" if status == "disabled" else None
    services = services_of(request)
    async with services.db.transaction() as session:
        await upstream_keys.set_status(session, key_id, status, reason)
    await services.upstream.refresh(force=True)  # this process at once; the others within their refresh period
    return RedirectResponse(f"{PATH}/upstream", status_code=303)


@router.post("/upstream/{key_id}/disable")
async def disable(request: Request, operator: SignedInOperator, key_id: PathId) -> Response:
    return await _set_status(request, operator, key_id, "disabled")


@router.post("/upstream/{key_id}/enable")
async def enable(request: Request, operator: SignedInOperator, key_id: PathId) -> Response:
    return await _set_status(request, operator, key_id, "active")
