"""Rows as the admin API shows them, and reading a write's body. Plain functions."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from grokgate.api.errors import from_validation_errors
from grokgate.db.base import iso
from grokgate.idempotency.service import fingerprint
from grokgate.jobs.models import Job
from grokgate.orgs.models import ApiKey, Organization
from grokgate.webhooks.models import WebhookDelivery

M = TypeVar("M", bound=BaseModel)


def _time(value: Any) -> str | None:
    return iso(value) if value is not None else None


async def read_body(request: Request, model: type[M], *, id_field: str | None = None) -> tuple[M, str]:
    """The body validated strictly as `model` (400 naming the field), and the request's fingerprint for its id
    (without `id_field`, so the id may come in the body or the header alike)."""
    raw = await request.body() or b"{}"
    try:
        parsed = model.model_validate_json(raw)
    except ValidationError as exc:
        raise from_validation_errors(list(exc.errors())) from None
    shown = parsed.model_dump(mode="json", exclude_unset=True, exclude={id_field} if id_field else None)
    return parsed, fingerprint(request.method, request.url.path, shown)


def request_hash(request: Request) -> str:
    """The fingerprint of a write that has no body."""
    return fingerprint(request.method, request.url.path, None)


def page_json(name: str, items: list[dict[str, Any]], total: int, *, limit: int, offset: int) -> dict[str, Any]:
    """One page of a listing, under the name of what it lists, with where the page stands in the whole."""
    return {name: items, "total": total, "limit": limit, "offset": offset}


def org_json(org: Organization) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "plan": org.plan,
        "creditsRemaining": org.credits_remaining,
        "suspended": org.suspended_at is not None,
        "suspendedAt": _time(org.suspended_at),
        "createdAt": iso(org.created_at),
        "updatedAt": iso(org.updated_at),
    }


def key_json(row: ApiKey, spent: dict[str, int]) -> dict[str, Any]:
    return {
        "id": row.id,
        "orgId": row.org_id,
        "scopes": row.scopes.split(),
        "dailyCap": row.daily_cap,
        "monthlyCap": row.monthly_cap,
        "spent": spent,
        "createdAt": iso(row.created_at),
        "expiresAt": _time(row.expires_at),
        "revokedAt": _time(row.revoked_at),
        "lastUsedAt": _time(row.last_used_at),
    }


def job_json(job: Job) -> dict[str, Any]:
    failed = job.error_code is not None
    return {
        "id": job.id,
        "orgId": job.org_id,
        "keyId": job.key_id,
        "subModel": job.model,
        "kind": job.kind,
        "workflow": job.workflow,
        "status": job.status,
        "creditsCharged": job.credits_charged,
        "creditsRefunded": job.credits_refunded,
        "costInUsdTicks": job.cost_in_usd_ticks,
        "error": {"code": job.error_code or "", "message": job.error_message or ""} if failed else None,
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
        "finishedAt": _time(job.finished_at),
    }


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "orgId": row.org_id,
        "jobId": row.job_id,
        "event": row.event,
        "url": row.url,
        "status": row.status,
        "attempts": row.attempts,
        "lastStatusCode": row.last_status_code,
        "lastError": row.last_error,
        "nextAttemptAt": _time(row.next_attempt_at),
        "createdAt": iso(row.created_at),
    }
