"""Admin routes across organisations: every job with filters, webhook deliveries that keep failing (and a retry),
and the business report (credits, xAI's cost, margin, per day and per sub-model)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.admin.auth import ADMIN_AUTHENTICATED, OperatorRead, OperatorWrite
from grokgate.admin.routing import NO_NUL, WRITE_ERRORS, PathId, answer_doc, id_header, run_write, write_doc
from grokgate.admin.schemas import AdminJobList, Delivery, DeliveryList, Report
from grokgate.admin.views import delivery_json, job_json, page_json, request_hash
from grokgate.admin.writes import client_id
from grokgate.api.paging import Limit, Offset
from grokgate.api.responses import errors
from grokgate.api.state import services_of
from grokgate.billing.report import business_report
from grokgate.errors import ApiError
from grokgate.jobs import repository as jobs
from grokgate.jobs.schemas import JobStatus
from grokgate.orgs import service as orgs
from grokgate.webhooks import failing

router = APIRouter(prefix="/admin/api/v1", tags=["admin"], responses=ADMIN_AUTHENTICATED)

Since = Annotated[datetime | None, Query(description="From this time (ISO 8601; without a zone: UTC)")]
Until = Annotated[datetime | None, Query(description="Before this time (ISO 8601; without a zone: UTC)")]
OrgId = Annotated[str | None, Query(max_length=40, pattern=NO_NUL, description="Only this organisation")]


def _utc(value: datetime | None, field: str) -> datetime | None:
    """A query's time in UTC (naive: taken as UTC); one that UTC cannot hold (year 1 east of Greenwich) is a 400."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ApiError(400, "INVALID_INPUT", f"{field}: is outside the range of dates", {"field": field}) from None


@router.get(
    "/jobs",
    summary="Every organisation's jobs, newest first, with filters; failed ones carry their reason",
    response_model=AdminJobList,
    responses=errors(400),
)
async def list_jobs(
    request: Request,
    operator: OperatorRead,
    status: JobStatus | None = None,
    subModel: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    orgId: OrgId = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> JSONResponse:
    where = jobs.JobFilter(
        org_id=orgId, status=status, model=subModel, since=_utc(since, "since"), until=_utc(until, "until")
    )
    async with services_of(request).db.reader() as session:
        rows, total = await jobs.search(session, where, limit=limit, offset=offset)
    return JSONResponse(page_json("jobs", [job_json(job) for job in rows], total, limit=limit, offset=offset))


@router.get(
    "/webhooks/deliveries",
    summary="Webhook deliveries that keep failing: `failed` (the schedule ran out) and `retrying`",
    response_model=DeliveryList,
    responses=errors(400),
)
async def list_failing(
    request: Request,
    operator: OperatorRead,
    state: Literal["failed", "retrying"] | None = None,
    orgId: OrgId = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> JSONResponse:
    async with services_of(request).db.reader() as session:
        rows, total = await failing.failing(session, state=state, org_id=orgId, limit=limit, offset=offset)
    return JSONResponse(
        page_json("deliveries", [delivery_json(row) for row in rows], total, limit=limit, offset=offset)
    )


@router.post(
    "/webhooks/deliveries/{deliveryId}/retry",
    summary="Try a delivery again now (same webhook-id); 409 DELIVERY_DELIVERED once it was delivered",
    responses={
        **answer_doc(Delivery, 200, "Due now"),
        **WRITE_ERRORS,
        **errors(409, says={409: "DELIVERY_DELIVERED or IDEMPOTENCY_IN_PROGRESS"}),
    },
    openapi_extra=write_doc(),
)
async def retry_delivery(deliveryId: PathId, request: Request, operator: OperatorWrite) -> JSONResponse:
    key = client_id(id_header(request), None, "Idempotency-Key", required=False)

    async def work(session: AsyncSession) -> tuple[int, dict[str, Any]]:
        return 200, delivery_json(await failing.retry_now(session, deliveryId))

    return await run_write(request, key, request_hash(request), work)


@router.get(
    "/report",
    summary="Credits sold and used, refunds, xAI's cost and the margin: in all, per UTC day and per sub-model",
    description="Default window: the last 30 days. Revenue is credits charged net of refunds at GROKGATE_CREDIT_USD.",
    response_model=Report,
    responses=errors(400, 404, says={404: "NOT_FOUND (orgId)"}),
)
async def report(
    request: Request, operator: OperatorRead, since: Since = None, until: Until = None, orgId: OrgId = None
) -> JSONResponse:
    services = services_of(request)
    start = _utc(since, "since") or datetime.now(UTC) - timedelta(days=30)
    async with services.db.reader() as session:
        if orgId is not None:
            await orgs.get_org(session, orgId)
        found = await business_report(
            session, since=start, until=_utc(until, "until"), org_id=orgId, credit_usd=services.settings.credit_usd
        )
    return JSONResponse(found)
