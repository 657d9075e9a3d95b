"""What every operator page shares: the signed-in operator, rendering, forms with their CSRF check, the session
cookie, and domain errors shown as the operator's error page.

The operator's cookie has a name of its own and is sent only under `/admin` (its path), `SameSite=Strict`: a
customer's session cookie is never read here, and a customer's token put in this cookie opens nothing, since the
session's kind must be `operator`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from grokgate.accounts.operators import OperatorContext, context_of
from grokgate.errors import ApiError
from grokgate.web.pages import PageRoute, back_to, checked_form, render_page, session_of, set_cookie

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
    operator: OperatorContext | None = getattr(request.state, "operator", None)
    return render_page(
        request,
        f"admin/{template}",
        status=status,
        csrf_token=operator.csrf_token if operator is not None else None,
        operator=operator,
        **context,
    )


class OperatorPageRoute(PageRoute):
    """A route that answers with operator pages: a domain error is shown as the operator's error page."""

    def error_page(self, request: Request, exc: ApiError) -> Response:
        return render(request, "error.html", status=exc.status, error=exc)


async def _operator(request: Request) -> OperatorContext:
    operator = await session_of(request, COOKIE, context_of)
    if operator is None:
        raise OperatorSignInRequired(back_to(request))
    request.state.operator = operator
    return operator


SignedInOperator = Annotated[OperatorContext, Depends(_operator)]


async def operator_form(request: Request, operator: OperatorContext) -> dict[str, str]:
    """A signed-in operator's form, refused (403 `CSRF_FAILED`, nothing done) without the session's token."""
    return await checked_form(request, operator.csrf_token)


def set_operator_cookie(request: Request, response: Response, token: str) -> None:
    set_cookie(request, response, COOKIE, token, samesite="strict", path=PATH)


def safe_next(value: str | None) -> str:
    """Where to go after signing in: an operator page of this site only."""
    if value and (value == PATH or value.startswith(PATH + "/")) and "\\" not in value and "//" not in value:
        return value
    return f"{PATH}/orgs"
