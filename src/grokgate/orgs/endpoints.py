"""`GET /api/v1/organization`: the caller's organisation and its balance."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from grokgate.api.responses import AUTHENTICATED
from grokgate.api.state import services_of
from grokgate.db.base import iso
from grokgate.orgs.auth import AccountRead
from grokgate.orgs.service import read_org

router = APIRouter(prefix="/api/v1", tags=["account"], responses=AUTHENTICATED)


@router.get("/organization", summary="Your organisation, plan and balance")
async def organization(request: Request, caller: AccountRead) -> JSONResponse:
    org = await services_of(request).db.quick_read(lambda tx: read_org(tx, caller.org_id))
    return JSONResponse(
        {
            "id": org.id,
            "name": org.name,
            "plan": org.plan,
            "creditsRemaining": org.credits_remaining,
            "createdAt": iso(org.created_at),
            "updatedAt": iso(org.updated_at),
        }
    )
