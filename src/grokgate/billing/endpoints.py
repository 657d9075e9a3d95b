"""`GET /api/v1/ledger`: the caller's credit movements, newest first."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from grokgate.api.paging import Limit, Offset
from grokgate.api.responses import AUTHENTICATED, errors
from grokgate.api.state import services_of
from grokgate.billing import ledger
from grokgate.db.base import iso
from grokgate.orgs.auth import AccountRead

router = APIRouter(prefix="/api/v1", tags=["account"], responses=AUTHENTICATED)


@router.get("/ledger", summary="Your credit movements (grants, charges, refunds), newest first", responses=errors(400))
async def ledger_entries(
    request: Request,
    caller: AccountRead,
    limit: Limit = 20,
    offset: Offset = 0,
) -> JSONResponse:
    async with services_of(request).db.reader() as session:
        rows, total = await ledger.entries(session, caller.org_id, limit=limit, offset=offset)
    return JSONResponse(
        {
            "entries": [
                {
                    "id": row.id,
                    "kind": row.kind,
                    "amount": row.amount,
                    "jobId": row.job_id,
                    "note": row.note,
                    "createdAt": iso(row.created_at),
                }
                for row in rows
            ],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )
