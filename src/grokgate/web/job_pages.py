"""The playground (a form over the catalogue; the page's script quotes, submits and follows the job through the
API's own routes) and the history of the organisation's jobs: gallery, filters, paging, details, cancel, run
again. Jobs are read and cancelled through `JobService`, as the API does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from grokgate.api.state import services_of
from grokgate.errors import ApiError, invalid_input
from grokgate.jobs.repository import JobFilters
from grokgate.jobs.views import job_json, shown_input
from grokgate.web.pages import PageRoute, SignedIn, form_day, member_form, render
from grokgate.web.paging import Paging

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 24
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")


@router.get("/playground")
async def playground(request: Request, member: SignedIn, again: str | None = None) -> Response:
    """The form's controls are built by the page's script from `GET /api/v1/models`; `again` fills it with an
    earlier job's input (one of this organisation's: another's is a 404)."""
    services = services_of(request)
    prefill: dict[str, Any] = {}
    if again:
        job = await services.jobs.get(member.caller, again)
        prefill = {**shown_input(job.input, services.jobs.finishing.links), "model": job.model}
    return render(request, "playground.html", prefill=json.dumps(prefill))


@router.get("/history")
async def history(
    request: Request,
    member: SignedIn,
    status: str | None = None,
    model: str | None = None,
    since: str | None = None,
    until: str | None = None,
    page: int = 1,
) -> Response:
    services = services_of(request)
    models = [entry["id"] for entry in services.settings.catalogue.listing()]
    status = status or None
    model = model or None
    if status is not None and status not in STATUSES:
        raise invalid_input(f"status: one of {', '.join(STATUSES)}", "status")
    if model is not None and model not in models:
        raise invalid_input("model: not a sub-model sold here", "model")
    first, last = form_day(since, "since"), form_day(until, "until")
    paging = Paging.asked(page, PAGE_SIZE)
    filters = JobFilters(
        model=model,
        since=datetime.combine(first, datetime.min.time(), UTC) if first else None,
        until=datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC) if last else None,
    )
    jobs, total = await services.jobs.list(
        member.caller, limit=paging.size, offset=paging.offset, status=status, filters=filters
    )
    links = services.jobs.finishing.links
    shown = [(job, job_json(job, links)) for job in jobs]
    kept = {k: v for k, v in {"status": status, "model": model, "since": since, "until": until}.items() if v}
    return render(
        request,
        "history.html",
        jobs=shown,
        statuses=STATUSES,
        models=models,
        chosen=kept,
        **paging.shown(total, "/history", kept),
    )


@router.get("/history/{job_id}")
async def job_page(request: Request, member: SignedIn, job_id: str) -> Response:
    services = services_of(request)
    job = await services.jobs.get(member.caller, job_id)
    links = services.jobs.finishing.links
    view = job_json(job, links)
    return render(
        request,
        "job.html",
        job=job,
        view=view,
        input=json.dumps(shown_input(job.input, links), indent=2),
        active=job.status in ("pending", "processing"),
    )


@router.post("/history/{job_id}/cancel")
async def cancel(request: Request, member: SignedIn, job_id: str) -> Response:
    await member_form(request, member)
    try:
        await services_of(request).jobs.cancel(member.caller, job_id)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return render(request, "error.html", status=exc.status, error=exc, back=f"/history/{job_id}")
    return RedirectResponse(f"/history/{job_id}", status_code=303)
