"""Organisations on the operator console: the searchable list with balances, and one organisation's page (its
balance and ledger, members, keys with their caps and spend, recent jobs) with grant and removal of credits,
suspend and resume, and its plan.

Credits move through `admin.actions` under `writes.run_once`, exactly as the admin API's grants do: the form
carries a grant id made when the page was drawn, so a form sent twice (a double click, a reload) grants once."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from grokgate.accounts import repository as accounts
from grokgate.accounts.operators import OperatorContext
from grokgate.admin import actions
from grokgate.admin.routing import PathId
from grokgate.admin.schemas import CreditGrant, CreditRemoval
from grokgate.admin.writes import client_id, run_once
from grokgate.api.errors import from_validation_errors
from grokgate.api.state import services_of
from grokgate.billing import caps, ledger
from grokgate.db.base import utcnow
from grokgate.errors import ApiError, invalid_input
from grokgate.jobs import repository as jobs
from grokgate.orgs import service as orgs
from grokgate.web.operator.common import PATH, OperatorPageRoute, SignedInOperator, operator_form, render
from grokgate.web.paging import Paging

router = APIRouter(prefix=PATH, route_class=OperatorPageRoute, include_in_schema=False)

PAGE_SIZE = 25
MAX_QUERY = 200


def one_time_id(kind: str) -> str:
    """The id a credit form carries: made once per drawing of the page, so a second submit of it is a repeat."""
    return f"console-{kind}-{secrets.token_urlsafe(12)}"


@router.get("/orgs")
async def org_list(
    request: Request, operator: SignedInOperator, q: str = "", state: str = "", page: int = 1
) -> Response:
    query = q.strip()
    if len(query) > MAX_QUERY or "\x00" in query:
        raise invalid_input(f"q: at most {MAX_QUERY} characters", "q")
    if state not in ("", "active", "suspended"):
        raise invalid_input("state: active or suspended", "state")
    paging = Paging.asked(page, PAGE_SIZE)
    async with services_of(request).db.reader() as session:
        rows, total = await orgs.search_orgs(
            session,
            query=query or None,
            suspended={"": None, "active": False, "suspended": True}[state],
            limit=paging.size,
            offset=paging.offset,
        )
    kept = {k: v for k, v in {"q": query, "state": state}.items() if v}
    return render(
        request,
        "orgs.html",
        orgs=rows,
        q=query,
        state=state,
        **paging.shown(total, f"{PATH}/orgs", kept),
    )


async def _org_page(
    request: Request, org_id: str, *, status: int = 200, grant_id: str | None = None, **extra: Any
) -> Response:
    services = services_of(request)
    now = utcnow()
    async with services.db.reader() as session:
        org = await orgs.get_org(session, org_id)
        balance = await ledger.balance_of(session, org_id)
        members = await accounts.members_of(session, org_id)
        keys = [(row, await caps.spent_now(session, row.id, now)) for row in await orgs.keys_of(session, org_id)]
        recent, job_total = await jobs.search(session, jobs.JobFilter(org_id=org_id), limit=20, offset=0)
        movements, _ = await ledger.entries(session, org_id, limit=10, offset=0)
    return render(
        request,
        "org.html",
        status=status,
        org=org,
        balance=balance,
        members=members,
        keys=keys,
        jobs=recent,
        job_total=job_total,
        movements=movements,
        plans=sorted(services.settings.plans),
        now=now,
        grant_id=grant_id or one_time_id("grant"),
        removal_id=one_time_id("removal"),
        **extra,
    )


@router.get("/orgs/{org_id}")
async def org_page(request: Request, operator: SignedInOperator, org_id: PathId) -> Response:
    return await _org_page(request, org_id)


def _credits(form: dict[str, str]) -> int:
    text = form.get("credits", "").strip()
    if not text.isdigit() or len(text) > 12:
        raise invalid_input("credits: a whole number of credits", "credits")
    return int(text)


async def _move(
    request: Request, operator: OperatorContext, org_id: str, kind: str, model: type[CreditGrant | CreditRemoval]
) -> Response:
    form = await operator_form(request, operator)
    write_id = form.get(f"{kind}_id", "")
    try:
        client_id(None, write_id, f"{kind}_id", required=True)
        try:
            body = model.model_validate({"credits": _credits(form), "reason": form.get("reason", "").strip()})
        except ValidationError as exc:
            raise from_validation_errors(list(exc.errors())) from None
        work, digest = (
            (actions.grant, actions.grant_digest) if kind == "grant" else (actions.remove, actions.removal_digest)
        )
        answer = await run_once(
            services_of(request).db,
            write_id,
            digest(org_id, body.credits, body.reason),
            work(org_id, body.credits, body.reason, write_id),
        )
    except ApiError as exc:
        if exc.status == 404:
            raise
        keep = {"grant_id": write_id} if kind == "grant" else {}
        return await _org_page(request, org_id, status=exc.status, credit_error=exc.message, **keep)
    verb = "Granted" if kind == "grant" else "Removed"
    notice = f"{verb} {answer.body['credits']} credits ({answer.body['reason']})."
    if answer.replayed:
        notice = f"This form was sent before: the {kind} {write_id} was made once, nothing more was changed."
    return await _org_page(request, org_id, notice=notice)


@router.post("/orgs/{org_id}/grants")
async def grant(request: Request, operator: SignedInOperator, org_id: PathId) -> Response:
    return await _move(request, operator, org_id, "grant", CreditGrant)


@router.post("/orgs/{org_id}/removals")
async def remove(request: Request, operator: SignedInOperator, org_id: PathId) -> Response:
    return await _move(request, operator, org_id, "removal", CreditRemoval)


async def _suspension(request: Request, operator: OperatorContext, org_id: str, *, suspended: bool) -> Response:
    await operator_form(request, operator)
    async with services_of(request).db.transaction() as session:
        await orgs.set_suspended(session, org_id, suspended=suspended)
    return RedirectResponse(f"{PATH}/orgs/{org_id}", status_code=303)


@router.post("/orgs/{org_id}/suspend")
async def suspend(request: Request, operator: SignedInOperator, org_id: PathId) -> Response:
    return await _suspension(request, operator, org_id, suspended=True)


@router.post("/orgs/{org_id}/resume")
async def resume(request: Request, operator: SignedInOperator, org_id: PathId) -> Response:
    return await _suspension(request, operator, org_id, suspended=False)


@router.post("/orgs/{org_id}/plan")
async def set_plan(request: Request, operator: SignedInOperator, org_id: PathId) -> Response:
    form = await operator_form(request, operator)
    try:
        async with services_of(request).db.transaction() as session:
            await orgs.set_plan(session, org_id, form.get("plan", ""), services_of(request).settings.plans)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await _org_page(request, org_id, status=exc.status, plan_error=exc.message)
    return RedirectResponse(f"{PATH}/orgs/{org_id}", status_code=303)
