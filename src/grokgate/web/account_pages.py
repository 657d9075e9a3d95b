"""Sign-up, sign-in, sign-out, the account page (password, organisations, members, invitations) and accepting
an invitation. Every rule is in `accounts.service`; these routes read forms and choose the page."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.accounts import repository, service, sessions
from grokgate.api.state import services_of
from grokgate.errors import ApiError
from grokgate.web.console import console_of
from grokgate.web.pages import (
    PageRoute,
    SignedIn,
    anonymous_form,
    member_form,
    optional_member,
    password_sign_in,
    render,
    safe_next,
    set_session_cookie,
    sign_out,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/")
async def home(request: Request) -> Response:
    member = await optional_member(request)
    return RedirectResponse("/playground" if member is not None else "/login", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", next=safe_next(next))


async def _sign_in(session: AsyncSession, email: str, password: str, ttl: timedelta) -> str | None:
    member = await service.authenticate(session, email, password)
    return await service.sign_in(session, member, ttl=ttl) if member is not None else None


@router.post("/login")
async def login(request: Request) -> Response:
    return await password_sign_in(
        request, page=render, next_of=safe_next, throttled_as="", sign_in=_sign_in, keep_session=set_session_cookie
    )


@router.get("/signup")
async def signup_page(request: Request) -> Response:
    return render(request, "signup.html", status=200 if console_of(request).settings.signup == "open" else 403)


@router.post("/signup")
async def signup(request: Request) -> Response:
    form = await anonymous_form(request)
    console, services = console_of(request), services_of(request)
    if console.settings.signup != "open":
        raise ApiError(
            403,
            "SIGNUP_CLOSED",
            "Sign-up is by invitation only here" if console.settings.signup == "invite" else "Sign-up is closed here",
        )
    try:
        async with services.db.transaction() as session:
            member, org_id = await service.sign_up(
                session,
                form.get("email", ""),
                form.get("password", ""),
                form.get("organization", ""),
                credits=console.settings.signup_credits,
            )
            token = await service.open_session_for(session, member, org_id, ttl=console.session_ttl)
    except ApiError as exc:
        return render(
            request,
            "signup.html",
            status=exc.status,
            error=exc.message,
            email=form.get("email", ""),
            organization=form.get("organization", ""),
        )
    response = RedirectResponse("/playground", status_code=303)
    set_session_cookie(request, response, token)
    return response


@router.post("/logout")
async def logout(request: Request, member: SignedIn) -> Response:
    await member_form(request, member)
    return await sign_out(request, sessions.COOKIE, path="/", to="/login")


async def _account(request: Request, member: service.MemberContext, *, status: int = 200, **extra: object) -> Response:
    async with services_of(request).db.reader() as session:
        organisations = await repository.organisations_of(session, member.member_id)
        members = await repository.members_of(session, member.org_id)
        invitations = await repository.open_invitations(session, member.org_id)
    return render(
        request,
        "account.html",
        status=status,
        organisations=organisations,
        members=members,
        invitations=invitations,
        **extra,
    )


@router.get("/account")
async def account_page(request: Request, member: SignedIn) -> Response:
    return await _account(request, member)


@router.post("/account/password")
async def change_password(request: Request, member: SignedIn) -> Response:
    form = await member_form(request, member)
    try:
        async with services_of(request).db.transaction() as session:
            await service.change_password(
                session,
                member.member_id,
                form.get("current_password", ""),
                form.get("new_password", ""),
                token=request.cookies.get(sessions.COOKIE, ""),
            )
    except ApiError as exc:
        return await _account(request, member, status=exc.status, password_error=exc.message)
    return await _account(request, member, notice="Password changed; your other sign-ins were ended.")


@router.post("/account/switch")
async def switch_organisation(request: Request, member: SignedIn) -> Response:
    form = await member_form(request, member)
    async with services_of(request).db.transaction() as session:
        await service.switch(session, request.cookies.get(sessions.COOKIE, ""), form.get("org_id", ""))
    return RedirectResponse("/playground", status_code=303)


@router.post("/account/invitations")
async def invite(request: Request, member: SignedIn) -> Response:
    form = await member_form(request, member)
    try:
        async with services_of(request).db.transaction() as session:
            row, token = await service.invite(session, member.org_id, member.member_id, form.get("email", ""))
    except ApiError as exc:
        return await _account(request, member, status=exc.status, invite_error=exc.message)
    link = f"{console_of(request).settings.base_url}/invite/{token}"
    return await _account(request, member, invited={"email": row.email, "link": link})


@router.get("/invite/{token}")
async def invitation_page(request: Request, token: str) -> Response:
    member = await optional_member(request)
    async with services_of(request).db.reader() as session:
        row = await service.invitation(session, token)
        has_account = row is not None and await repository.member_by_email(session, row.email) is not None
    if row is None:
        raise ApiError(404, "INVITATION_NOT_FOUND", "This invitation is unknown, used or expired")
    return render(request, "invite.html", invitation=row, token=token, has_account=has_account, signed_in=member)


@router.post("/invite/{token}")
async def accept_invitation(request: Request, token: str) -> Response:
    member = await optional_member(request)
    form = await (member_form(request, member) if member is not None else anonymous_form(request))
    console = console_of(request)
    password = form.get("password") or None
    if member is None and password is not None and console.settings.signup == "off":
        raise ApiError(403, "SIGNUP_CLOSED", "Sign-up is closed here: only existing accounts can accept")
    async with services_of(request).db.transaction() as session:
        row = await service.invitation(session, token)
        joined = await service.accept(session, token, member_id=member.member_id if member else None, password=password)
        assert row is not None
        new_token = await service.open_session_for(session, joined, row.org_id, ttl=console.session_ttl)
    if member is not None:
        async with services_of(request).db.transaction() as session:
            await sessions.revoke(session, request.cookies.get(sessions.COOKIE))
    response = RedirectResponse("/playground", status_code=303)
    set_session_cookie(request, response, new_token)
    return response
