"""`GET /api/v1/ledger`: the caller's credit movements, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from grokgate.api.state import services_of
from grokgate.billing.models import LedgerEntry
from grokgate.db.base import iso
from grokgate.orgs.auth import AccountRead

router = APIRouter(prefix="/api/v1", tags=["account"])


@router.get("/ledger", summary="Your credit movements (grants, charges, refunds), newest first")
async def ledger_entries(
    request: Request,
    caller: AccountRead,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    mine = LedgerEntry.org_id == caller.org_id
    async with services_of(request).db.reader() as session:
        total = await session.scalar(select(func.count()).select_from(LedgerEntry).where(mine))
        rows = (
            await session.scalars(
                select(LedgerEntry).where(mine).order_by(LedgerEntry.id.desc()).limit(limit).offset(offset)
            )
        ).all()
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
            "total": int(total or 0),
            "limit": limit,
            "offset": offset,
        }
    )
