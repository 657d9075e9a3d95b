"""Operators signing in and out of the console. The login throttle is the customer console's, counted under the
operator's email apart from a member's of the same address, and per client address across both."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from grokgate.accounts import operators, sessions
from grokgate.api.state import services_of
from grokgate.errors import ApiError
from grokgate.web.console import console_of
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
from grokgate.web.pages import anonymous_form, client_address

router = APIRouter(prefix=PATH, route_class=OperatorPageRoute, include_in_schema=False)


@router.get("")
async def home(operator: SignedInOperator) -> Response:
    return RedirectResponse(f"{PATH}/orgs", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", next=safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await anonymous_form(request)
    console, services = console_of(request), services_of(request)
    email, address = form.get("email", "").strip().lower(), client_address(request)
    throttled_as = f"operator:{email}"
    back_to = safe_next(form.get("next"))
    try:
        await console.throttle.check(throttled_as, address)
    except ApiError as exc:
        return render(request, "login.html", status=exc.status, error=exc.message, email=email, next=back_to)
    async with services.db.transaction() as session:
        operator = await operators.authenticate(session, email, form.get("password", ""))
        token = await operators.sign_in(session, operator, ttl=console.session_ttl) if operator else None
    if token is None:
        await console.throttle.failed(throttled_as, address)
        return render(request, "login.html", status=400, error="Email or password is wrong", email=email, next=back_to)
    response = RedirectResponse(back_to, status_code=303)
    set_operator_cookie(request, response, token)
    return response


@router.post("/logout")
async def logout(request: Request, operator: SignedInOperator) -> Response:
    await operator_form(request, operator)
    async with services_of(request).db.transaction() as session:
        await sessions.revoke(session, request.cookies.get(COOKIE))
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PATH)
    return response
