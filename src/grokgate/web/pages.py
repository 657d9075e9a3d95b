"""What every console page shares: the signed-in member, rendering with security headers, forms with their
CSRF check, the session cookie, and errors shown as pages.

A domain's `ApiError` raised under a page becomes that page's error page with the same status and message, so a
job of another organisation is a 404 here exactly as it is on the API."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute

from grokgate.accounts import csrf, sessions
from grokgate.accounts.service import MemberContext, context_of
from grokgate.api.state import services_of
from grokgate.errors import ApiError
from grokgate.web.console import SignInRequired, console_of

MAX_FORM_BYTES = 64 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob: https:; media-src 'self' blob: https:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    console = console_of(request)
    member: MemberContext | None = getattr(request.state, "member", None)
    anonymous = None
    if member is None:  # a form before sign-in: its CSRF token lives in a cookie of its own (double submit)
        anonymous = request.cookies.get(csrf.COOKIE) or csrf.new_token()
    body = console.templates.get_template(template).render(
        member=member,
        csrf_token=member.csrf_token if member is not None else anonymous,
        signup=console.settings.signup,
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    if member is None and request.cookies.get(csrf.COOKIE) != anonymous:
        assert anonymous is not None
        response.set_cookie(
            csrf.COOKIE, anonymous, httponly=True, samesite="lax", secure=console.secure_cookies, path="/"
        )
    return response


class PageRoute(APIRoute):
    """A route that answers with pages: a domain error is shown as the error page, with its status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return render(request, "error.html", status=exc.status, error=exc)

        return handle


async def _member(request: Request) -> MemberContext:
    token = request.cookies.get(sessions.COOKIE)
    member = None
    if token:
        async with services_of(request).db.reader() as session:
            member = await context_of(session, token)
    if member is None:
        back_to = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(quote(back_to, safe=""))
    request.state.member = member
    return member


async def optional_member(request: Request) -> MemberContext | None:
    try:
        return await _member(request)
    except SignInRequired:
        return None


SignedIn = Annotated[MemberContext, Depends(_member)]


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form as a dict (a repeated name keeps every value, comma-joined: the scope checkboxes)."""
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", "Form too large")
    values: dict[str, str] = {}
    for name, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        values[name] = f"{values[name]},{value}" if name in values else value
    return values


async def member_form(request: Request, member: MemberContext) -> dict[str, str]:
    """A signed-in member's form, refused (403 `CSRF_FAILED`, nothing done) without the session's token."""
    form = await read_form(request)
    if not csrf.valid(member.csrf_token, form.get(csrf.FIELD)):
        raise ApiError(403, "CSRF_FAILED", "This form has expired or did not come from this site; reload the page")
    return form


async def anonymous_form(request: Request) -> dict[str, str]:
    """A form shown before sign-in (double submit: the hidden field must match the form's cookie)."""
    form = await read_form(request)
    if not csrf.valid(request.cookies.get(csrf.COOKIE), form.get(csrf.FIELD)):
        raise ApiError(403, "CSRF_FAILED", "This form has expired or did not come from this site; reload the page")
    return form


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    console = console_of(request)
    response.set_cookie(
        sessions.COOKIE,
        token,
        max_age=int(console.settings.session_ttl),
        httponly=True,
        samesite="lax",
        secure=console.secure_cookies,
        path="/",
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (never `//evil.example`)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/playground"
