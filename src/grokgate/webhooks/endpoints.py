"""`GET /api/v1/jobs/{jobId}/deliveries`: what was sent about a job, every attempt, and where each stands."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from grokgate.api.responses import AUTHENTICATED, errors
from grokgate.api.state import services_of
from grokgate.db.base import iso
from grokgate.orgs.auth import JobsRead
from grokgate.webhooks.models import WebhookAttempt, WebhookDelivery

router = APIRouter(prefix="/api/v1", tags=["webhooks"], responses=AUTHENTICATED)


def _time(value: Any) -> str | None:
    return iso(value) if value is not None else None


@router.get(
    "/jobs/{jobId}/deliveries", summary="Webhook deliveries of a job, with every attempt", responses=errors(404)
)
async def deliveries(jobId: str, request: Request, caller: JobsRead) -> JSONResponse:
    services = services_of(request)
    await services.jobs.get(caller, jobId)  # 404 unless it is the caller's job
    async with services.db.reader() as session:
        rows = (
            await session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.job_id == jobId).order_by(WebhookDelivery.created_at)
            )
        ).all()
        attempts = (
            await session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id.in_([row.id for row in rows]))
                .order_by(WebhookAttempt.id)
            )
        ).all()
    history: dict[str, list[dict[str, Any]]] = {}
    for attempt in attempts:
        history.setdefault(attempt.delivery_id, []).append(
            {
                "attemptedAt": _time(attempt.attempted_at),
                "statusCode": attempt.status_code,
                "error": attempt.error,
                "durationMs": attempt.duration_ms,
            }
        )
    return JSONResponse(
        {
            "deliveries": [
                {
                    "id": row.id,
                    "event": row.event,
                    "url": row.url,
                    "status": row.status,
                    "attempts": row.attempts,
                    "lastStatusCode": row.last_status_code,
                    "lastError": row.last_error,
                    "nextAttemptAt": _time(row.next_attempt_at),
                    "deliveredAt": _time(row.delivered_at),
                    "createdAt": _time(row.created_at),
                    "history": history.get(row.id, []),
                }
                for row in rows
            ]
        }
    )
