"""What every console page shares: the signed-in member, rendering with security headers, forms with their
CSRF check, the session cookie, signing in and out, and errors shown as pages. The operator console
(`web.operator.common`) builds on the same pieces with its own cookie, templates and error page.

A domain's `ApiError` raised under a page becomes that page's error page with the same status and message, so a
job of another organisation is a 404 here exactly as it is on the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from datetime import date, timedelta
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.accounts import csrf, sessions
from grokgate.accounts.service import MemberContext, context_of
from grokgate.api.state import services_of
from grokgate.errors import ApiError, invalid_input
from grokgate.web.console import SignInRequired, console_of

T = TypeVar("T")
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


def render_page(
    request: Request, template: str, *, status: int, csrf_token: str | None, **context: Any
) -> HTMLResponse:
    """A page of either console. `csrf_token` is the signed-in session's; without one (a form before sign-in) the
    token lives in a cookie of its own (double submit), set here when the browser does not hold it yet."""
    console = console_of(request)
    anonymous = None
    if csrf_token is None:
        anonymous = request.cookies.get(csrf.COOKIE) or csrf.new_token()
    body = console.templates.get_template(template).render(
        csrf_token=csrf_token if csrf_token is not None else anonymous, path=request.url.path, **context
    )
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    if anonymous is not None and request.cookies.get(csrf.COOKIE) != anonymous:
        response.set_cookie(
            csrf.COOKIE, anonymous, httponly=True, samesite="lax", secure=console.secure_cookies, path="/"
        )
    return response


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    member: MemberContext | None = getattr(request.state, "member", None)
    return render_page(
        request,
        template,
        status=status,
        csrf_token=member.csrf_token if member is not None else None,
        member=member,
        signup=console_of(request).settings.signup,
        **context,
    )


class PageRoute(APIRoute):
    """A route that answers with pages: a domain error is shown as the error page, with its status."""

    def error_page(self, request: Request, exc: ApiError) -> Response:
        return render(request, "error.html", status=exc.status, error=exc)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return self.error_page(request, exc)

        return handle


async def session_of(
    request: Request, cookie: str, lookup: Callable[[AsyncSession, str], Awaitable[T | None]]
) -> T | None:
    """The signed-in context behind a session cookie, or None without one (or with one that opens nothing)."""
    token = request.cookies.get(cookie)
    if not token:
        return None
    async with services_of(request).db.reader() as session:
        return await lookup(session, token)


def back_to(request: Request) -> str:
    """This page's path and query, quoted for a sign-in page's `next`."""
    return quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="")


async def _member(request: Request) -> MemberContext:
    member = await session_of(request, sessions.COOKIE, context_of)
    if member is None:
        raise SignInRequired(back_to(request))
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


async def checked_form(request: Request, expected: str | None) -> dict[str, str]:
    """A form refused (403 `CSRF_FAILED`, nothing done) unless its hidden token matches `expected`."""
    form = await read_form(request)
    if not csrf.valid(expected, form.get(csrf.FIELD)):
        raise ApiError(403, "CSRF_FAILED", "This form has expired or did not come from this site; reload the page")
    return form


async def member_form(request: Request, member: MemberContext) -> dict[str, str]:
    """A signed-in member's form, refused without the session's token."""
    return await checked_form(request, member.csrf_token)


async def anonymous_form(request: Request) -> dict[str, str]:
    """A form shown before sign-in (double submit: the hidden field must match the form's cookie)."""
    return await checked_form(request, request.cookies.get(csrf.COOKIE))


def form_day(value: str | None, field: str) -> date | None:
    """A filter's day (YYYY-MM-DD; empty: no filter); another text is a 400 naming the field."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid_input(f"{field}: a date as YYYY-MM-DD", field) from None


def set_cookie(
    request: Request, response: Response, name: str, token: str, *, samesite: Literal["lax", "strict"], path: str
) -> None:
    """A session cookie: HttpOnly, living as long as the session, Secure behind TLS."""
    console = console_of(request)
    response.set_cookie(
        name,
        token,
        max_age=int(console.settings.session_ttl),
        httponly=True,
        samesite=samesite,
        secure=console.secure_cookies,
        path=path,
    )


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    set_cookie(request, response, sessions.COOKIE, token, samesite="lax", path="/")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


SignIn = Callable[[AsyncSession, str, str, timedelta], Awaitable[str | None]]
"""Checks an email and password and opens a session (for that long): its cookie's token, or None when wrong."""


async def password_sign_in(
    request: Request,
    *,
    page: Callable[..., HTMLResponse],
    next_of: Callable[[str | None], str],
    throttled_as: str,
    sign_in: SignIn,
    keep_session: Callable[[Request, Response, str], None],
) -> Response:
    """The sign-in form of either console, in one place so both are throttled alike: per email (under the
    `throttled_as` prefix, so a member and an operator of one address count apart) and per client address, with
    one answer for an unknown email and a wrong password. Signed in: on to `next`, holding the session's cookie."""
    form = await anonymous_form(request)
    console, services = console_of(request), services_of(request)
    email, address = form.get("email", "").strip().lower(), client_address(request)
    going_to = next_of(form.get("next"))
    try:
        await console.throttle.attempt(throttled_as + email, address)
    except ApiError as exc:
        return page(request, "login.html", status=exc.status, error=exc.message, email=email, next=going_to)
    async with services.db.transaction() as session:
        token = await sign_in(session, email, form.get("password", ""), console.session_ttl)
    if token is None:
        return page(request, "login.html", status=400, error="Email or password is wrong", email=email, next=going_to)
    await console.throttle.succeeded(throttled_as + email)
    response = RedirectResponse(going_to, status_code=303)
    keep_session(request, response, token)
    return response


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (never `//evil.example`)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/playground"


async def sign_out(request: Request, cookie: str, *, path: str, to: str) -> Response:
    """Ends the session behind `cookie` (the form's CSRF token already checked) and forgets the cookie."""
    async with services_of(request).db.transaction() as session:
        await sessions.revoke(session, request.cookies.get(cookie))
    response = RedirectResponse(to, status_code=303)
    response.delete_cookie(cookie, path=path)
    return response
