"""API keys on the console: the organisation's keys with their last use, caps and spend, creating one (shown once,
optionally capped per UTC day and month), revoking. Through `orgs.service` and `billing.caps`, as the admin API
does."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from grokgate.accounts.service import MemberContext
from grokgate.api.state import services_of
from grokgate.billing.caps import Caps, check_cap, spent_now
from grokgate.db.base import utcnow
from grokgate.errors import ApiError, invalid_input
from grokgate.orgs import service as orgs
from grokgate.orgs.scopes import ALL_SCOPES, parse_scopes
from grokgate.web.pages import PageRoute, SignedIn, member_form, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

EXPIRIES = {"": None, "1": 1, "7": 7, "30": 30, "90": 90, "365": 365}
"""The expiry choices the form offers, in days ("" never expires)."""


async def _keys(request: Request, member: MemberContext, *, status: int = 200, **extra: object) -> Response:
    now = utcnow()
    async with services_of(request).db.reader() as session:
        keys = await orgs.list_keys(session, member.org_id)
        spent = {key.id: await spent_now(session, key.id, now) for key in keys if key.daily_cap or key.monthly_cap}
    return render(request, "keys.html", status=status, keys=keys, spent=spent, now=now, scopes=ALL_SCOPES, **extra)


def _cap(form: dict[str, str], field: str) -> int | None:
    """An optional cap field: empty is no cap; otherwise a whole number of credits (400 naming the field)."""
    text = form.get(field, "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 12:
        raise invalid_input(f"{field}: a whole number of credits, or empty for no cap", field)
    return check_cap(int(text), field)


@router.get("/keys")
async def keys_page(request: Request, member: SignedIn) -> Response:
    return await _keys(request, member)


@router.post("/keys")
async def create_key(request: Request, member: SignedIn) -> Response:
    form = await member_form(request, member)
    try:
        scopes = parse_scopes(form.get("scopes", ""))
        if form.get("expires_in", "") not in EXPIRIES:
            raise invalid_input("expires_in: choose one of the offered expiries", "expires_in")
        days = EXPIRIES[form.get("expires_in", "")]
        limits = Caps(daily=_cap(form, "daily_cap"), monthly=_cap(form, "monthly_cap"))
        async with services_of(request).db.transaction() as session:
            row, secret = await orgs.create_key(
                session,
                member.org_id,
                expires_at=utcnow() + timedelta(days=days) if days else None,
                scopes=scopes,
                name=form.get("name") or None,
                caps=limits,
            )
    except ApiError as exc:
        return await _keys(request, member, status=exc.status, error=exc.message)
    return await _keys(request, member, created={"id": row.id, "secret": secret, "name": row.name})


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, member: SignedIn, key_id: str) -> Response:
    await member_form(request, member)
    async with services_of(request).db.transaction() as session:
        await orgs.revoke_key(session, key_id, org_id=member.org_id)
    return RedirectResponse("/keys", status_code=303)
