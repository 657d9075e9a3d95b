"""Admin routes of organisations, their credits and their keys. Each write runs once per client-chosen id
(`writes.run_once`); the rules are the domains' (`orgs/service.py`, `billing/ledger.py`, `billing/caps.py`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.admin import actions
from grokgate.admin.auth import ADMIN_AUTHENTICATED, OperatorRead, OperatorWrite
from grokgate.admin.routing import NO_NUL, WRITE_ERRORS, PathId, answer_doc, id_header, run_write, write_doc
from grokgate.admin.schemas import (
    CreditGrant,
    CreditMovement,
    CreditRemoval,
    Key,
    KeyCreate,
    KeyCreated,
    KeyList,
    Org,
    OrgCreate,
    OrgDetail,
    OrgList,
    PlanChange,
    drop_secret,
)
from grokgate.admin.views import key_json, org_json, page_json, read_body, request_hash
from grokgate.admin.writes import client_id
from grokgate.api.paging import Limit, Offset
from grokgate.api.responses import errors
from grokgate.api.state import services_of
from grokgate.billing import caps, ledger
from grokgate.db.base import utcnow
from grokgate.jobs import repository as jobs
from grokgate.orgs import service as orgs
from grokgate.orgs.models import ApiKey
from grokgate.orgs.scopes import ALL_SCOPES

router = APIRouter(prefix="/admin/api/v1", tags=["admin"], responses=ADMIN_AUTHENTICATED)


@router.get(
    "/orgs",
    summary="Organisations, newest first; `q` searches id and name",
    response_model=OrgList,
    responses=errors(400),
)
async def list_orgs(
    request: Request,
    operator: OperatorRead,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="Part of the id or name, any case")
    ] = None,
    suspended: bool | None = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> JSONResponse:
    async with services_of(request).db.reader() as session:
        rows, total = await orgs.search_orgs(session, query=q, suspended=suspended, limit=limit, offset=offset)
    return JSONResponse(page_json("organizations", [org_json(org) for org in rows], total, limit=limit, offset=offset))


@router.post(
    "/orgs",
    summary="Create an organisation (initial credits are a ledger grant)",
    status_code=201,
    responses={**answer_doc(Org, 201, "Created"), **WRITE_ERRORS},
    openapi_extra=write_doc(OrgCreate),
)
async def create_org(request: Request, operator: OperatorWrite) -> JSONResponse:
    body, digest = await read_body(request, OrgCreate)
    key = client_id(id_header(request), None, "Idempotency-Key", required=True)

    async def work(session: AsyncSession) -> tuple[int, dict[str, Any]]:
        org = await orgs.create_org(session, body.name, body.credits)
        return 201, org_json(org)

    return await run_write(request, key, digest, work)


@router.get(
    "/orgs/{orgId}",
    summary="One organisation: balance, ledger sum, keys, jobs in flight",
    responses=errors(400, 404, says={404: "NOT_FOUND"}),
    response_model=OrgDetail,
)
async def show_org(orgId: PathId, request: Request, operator: OperatorRead) -> JSONResponse:
    async with services_of(request).db.reader() as session:
        org = await orgs.get_org(session, orgId)
        balance = await ledger.balance_of(session, orgId)
        keys = await session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.org_id == orgId))
        active = await jobs.count_active(session, orgId)
    assert balance is not None
    return JSONResponse(
        {**org_json(org), "ledgerSum": balance.ledger_sum, "keys": int(keys or 0), "activeJobs": active}
    )


def _suspension(suspended: bool) -> Any:
    async def route(orgId: PathId, request: Request, operator: OperatorWrite) -> JSONResponse:
        key = client_id(id_header(request), None, "Idempotency-Key", required=False)

        async def work(session: AsyncSession) -> tuple[int, dict[str, Any]]:
            return 200, org_json(await orgs.set_suspended(session, orgId, suspended=suspended))

        return await run_write(request, key, request_hash(request), work)

    return route


router.add_api_route(
    "/orgs/{orgId}/suspend",
    _suspension(True),
    methods=["POST"],
    summary="Suspend: generations answer 403 ORG_SUSPENDED and charge nothing; reads still work",
    responses={**answer_doc(Org, 200, "Suspended"), **WRITE_ERRORS},
    openapi_extra=write_doc(),
    name="suspend_org",
)
router.add_api_route(
    "/orgs/{orgId}/resume",
    _suspension(False),
    methods=["POST"],
    summary="Resume a suspended organisation",
    responses={**answer_doc(Org, 200, "Resumed"), **WRITE_ERRORS},
    openapi_extra=write_doc(),
    name="resume_org",
)


@router.put(
    "/orgs/{orgId}/plan",
    summary="Move an organisation to another plan (its rate limits)",
    responses={**answer_doc(Org, 200, "Moved"), **WRITE_ERRORS},
    openapi_extra=write_doc(PlanChange),
)
async def set_plan(orgId: PathId, request: Request, operator: OperatorWrite) -> JSONResponse:
    body, digest = await read_body(request, PlanChange)
    key = client_id(id_header(request), None, "Idempotency-Key", required=False)
    plans = services_of(request).settings.plans

    async def work(session: AsyncSession) -> tuple[int, dict[str, Any]]:
        return 200, org_json(await orgs.set_plan(session, orgId, body.plan, plans))

    return await run_write(request, key, digest, work)


@router.post(
    "/orgs/{orgId}/credits/grants",
    summary="Grant credits (a ledger row); `grantId` or Idempotency-Key makes a payment grant once",
    status_code=201,
    responses={**answer_doc(CreditMovement, 201, "Granted"), **WRITE_ERRORS},
    openapi_extra=write_doc(CreditGrant),
)
async def grant_credits(orgId: PathId, request: Request, operator: OperatorWrite) -> JSONResponse:
    body, digest = await read_body(request, CreditGrant, id_field="grantId")
    key = client_id(id_header(request), body.grantId, "grantId", required=True)

    return await run_write(request, key, digest, actions.grant(orgId, body.credits, body.reason, key))


@router.post(
    "/orgs/{orgId}/credits/removals",
    summary="Remove credits (a negative ledger row); refused when the balance does not hold them",
    status_code=201,
    responses={**answer_doc(CreditMovement, 201, "Removed"), **WRITE_ERRORS},
    openapi_extra=write_doc(CreditRemoval),
)
async def remove_credits(orgId: PathId, request: Request, operator: OperatorWrite) -> JSONResponse:
    body, digest = await read_body(request, CreditRemoval, id_field="removalId")
    key = client_id(id_header(request), body.removalId, "removalId", required=True)

    return await run_write(request, key, digest, actions.remove(orgId, body.credits, body.reason, key))


async def _shown_key(session: AsyncSession, row: ApiKey) -> dict[str, Any]:
    return key_json(row, await caps.spent_now(session, row.id, utcnow()))


@router.get(
    "/orgs/{orgId}/keys",
    summary="An organisation's API keys, with their caps and what each spent this UTC day and month",
    response_model=KeyList,
    responses=errors(400, 404, says={404: "NOT_FOUND"}),
)
async def list_keys(orgId: PathId, request: Request, operator: OperatorRead) -> JSONResponse:
    async with services_of(request).db.reader() as session:
        rows = await orgs.keys_of(session, orgId)
        return JSONResponse({"keys": [await _shown_key(session, row) for row in rows]})


@router.post(
    "/orgs/{orgId}/keys",
    summary="Create an API key, with optional spend caps; the secret is shown once",
    description="A repeat of the request (same Idempotency-Key) answers the same key with `key: null`: the secret "
    "is never stored.",
    status_code=201,
    responses={**answer_doc(KeyCreated, 201, "Created"), **WRITE_ERRORS},
    openapi_extra=write_doc(KeyCreate),
)
async def create_key(orgId: PathId, request: Request, operator: OperatorWrite) -> JSONResponse:
    body, digest = await read_body(request, KeyCreate)
    key = client_id(id_header(request), None, "Idempotency-Key", required=True)
    scopes = frozenset(body.scopes) if body.scopes else frozenset(ALL_SCOPES)

    async def work(session: AsyncSession) -> tuple[int, dict[str, Any]]:
        expires = utcnow() + timedelta(seconds=body.expiresInSeconds) if body.expiresInSeconds else None
        limits = caps.Caps(daily=body.dailyCap, monthly=body.monthlyCap)
        row, secret = await orgs.create_key(session, orgId, expires, scopes, caps=limits)
        await session.flush()
        return 201, {**key_json(row, {"day": 0, "month": 0}), "key": secret}

    return await run_write(request, key, digest, work, kept=drop_secret)


@router.post(
    "/keys/{keyId}/revoke",
    summary="Revoke an API key at once",
    responses={**answer_doc(Key, 200, "Revoked"), **WRITE_ERRORS},
    openapi_extra=write_doc(),
)
async def revoke_key(keyId: PathId, request: Request, operator: OperatorWrite) -> JSONResponse:
    key = client_id(id_header(request), None, "Idempotency-Key", required=False)

    async def work(session: AsyncSession) -> tuple[int, dict[str, Any]]:
        return 200, await _shown_key(session, await orgs.revoke_key(session, keyId))

    return await run_write(request, key, request_hash(request), work)
