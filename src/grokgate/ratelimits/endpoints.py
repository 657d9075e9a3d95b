"""`GET /api/v1/account/rate-limits`: the caller's plan, its limits, and what has been used of them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from grokgate.api.responses import AUTHENTICATED
from grokgate.api.state import services_of
from grokgate.db.base import iso, utcnow
from grokgate.orgs.auth import AccountRead

router = APIRouter(prefix="/api/v1", tags=["account"], responses=AUTHENTICATED)


@router.get("/account/rate-limits", summary="Your plan's limits and current usage")
async def rate_limits(request: Request, caller: AccountRead) -> JSONResponse:
    services = services_of(request)
    plan = services.settings.plans.get(caller.plan) or services.settings.plans["default"]
    usage = await services.limiter.usage(caller.org_id, plan)
    return JSONResponse(
        {
            "plan": caller.plan,
            "limits": plan.model_dump(),
            "usage": usage,
            "timestamp": iso(utcnow()),
        }
    )
