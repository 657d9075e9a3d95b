"""Operators signing in and out of the console. The login throttle is the customer console's, counted under the
operator's email apart from a member's of the same address, and per client address across both."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.accounts import operators
from grokgate.web.operator.common import (
    COOKIE,
    PATH,
    OperatorPageRoute,
    SignedInOperator,
    operator_form,
    render,
    safe_next,
    set_operator_cookie,
)
from grokgate.web.pages import password_sign_in, sign_out

router = APIRouter(prefix=PATH, route_class=OperatorPageRoute, include_in_schema=False)


@router.get("")
async def home(operator: SignedInOperator) -> Response:
    return RedirectResponse(f"{PATH}/orgs", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", next=safe_next(next))


async def _sign_in(session: AsyncSession, email: str, password: str, ttl: timedelta) -> str | None:
    operator = await operators.authenticate(session, email, password)
    return await operators.sign_in(session, operator, ttl=ttl) if operator else None


@router.post("/login")
async def login(request: Request) -> Response:
    return await password_sign_in(
        request,
        page=render,
        next_of=safe_next,
        throttled_as="operator:",
        sign_in=_sign_in,
        keep_session=set_operator_cookie,
    )


@router.post("/logout")
async def logout(request: Request, operator: SignedInOperator) -> Response:
    await operator_form(request, operator)
    return await sign_out(request, COOKIE, path=PATH, to=f"{PATH}/login")
