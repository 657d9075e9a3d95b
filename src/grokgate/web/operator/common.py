"""What every operator page shares: the signed-in operator, rendering, forms with their CSRF check, the session
cookie, and domain errors shown as the operator's error page.

The operator's cookie has a name of its own and is sent only under `/admin` (its path), `SameSite=Strict`: a
customer's session cookie is never read here, and a customer's token put in this cookie opens nothing, since the
session's kind must be `operator`."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from grokgate.accounts import csrf
from grokgate.accounts.operators import OperatorContext, context_of
from grokgate.api.state import services_of
from grokgate.errors import ApiError
from grokgate.web.console import console_of
from grokgate.web.pages import SECURITY_HEADERS, read_form

COOKIE = "grokgate_operator"
PATH = "/admin"


class OperatorSignInRequired(Exception):
    """A page needs a signed-in operator; answered with a redirect to the operator sign-in page."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


async def sign_in_first(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, OperatorSignInRequired)
    return RedirectResponse(f"{PATH}/login?next={exc.back_to}", status_code=303)


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    console = console_of(request)
    operator: OperatorContext | None = getattr(request.state, "operator", None)
    anonymous = None
    if operator is None:  # the sign-in form: its CSRF token lives in a cookie of its own (double submit)
        anonymous = request.cookies.get(csrf.COOKIE) or csrf.new_token()
    body = console.templates.get_template(f"admin/{template}").render(
        operator=operator,
        csrf_token=operator.csrf_token if operator is not None else anonymous,
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    if operator is None and request.cookies.get(csrf.COOKIE) != anonymous:
        assert anonymous is not None
        response.set_cookie(
            csrf.COOKIE, anonymous, httponly=True, samesite="lax", secure=console.secure_cookies, path="/"
        )
    return response


class OperatorPageRoute(APIRoute):
    """A route that answers with operator pages: a domain error is shown as the error page, with its status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return render(request, "error.html", status=exc.status, error=exc)

        return handle


async def _operator(request: Request) -> OperatorContext:
    token = request.cookies.get(COOKIE)
    operator = None
    if token:
        async with services_of(request).db.reader() as session:
            operator = await context_of(session, token)
    if operator is None:
        back_to = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise OperatorSignInRequired(quote(back_to, safe=""))
    request.state.operator = operator
    return operator


SignedInOperator = Annotated[OperatorContext, Depends(_operator)]


async def operator_form(request: Request, operator: OperatorContext) -> dict[str, str]:
    """A signed-in operator's form, refused (403 `CSRF_FAILED`, nothing done) without the session's token."""
    form = await read_form(request)
    if not csrf.valid(operator.csrf_token, form.get(csrf.FIELD)):
        raise ApiError(403, "CSRF_FAILED", "This form has expired or did not come from this site; reload the page")
    return form


def set_operator_cookie(request: Request, response: Response, token: str) -> None:
    console = console_of(request)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(console.settings.session_ttl),
        httponly=True,
        samesite="strict",
        secure=console.secure_cookies,
        path=PATH,
    )


def safe_next(value: str | None) -> str:
    """Where to go after signing in: an operator page of this site only."""
    if value and (value == PATH or value.startswith(PATH + "/")) and "\\" not in value and "//" not in value:
        return value
    return f"{PATH}/orgs"
