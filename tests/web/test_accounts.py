"""Accounts over real HTTP: sign-up in each mode (open, invite, off), what a bad sign-up changes (nothing), the
Secure cookie behind TLS, login throttling, a password change ending the other sessions, and sign-in never
redirecting off the site."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from grokgate.accounts import service as accounts
from grokgate.db.engine import Database
from tests.support import counts
from tests.web.conftest import PASSWORD


def _token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found[1]


async def _post(client: httpx.AsyncClient, form_page: str, action: str, data: dict[str, str]) -> httpx.Response:
    """Load the page with the form (which sets the CSRF token), then post the form with that token."""
    token = _token(await client.get(form_page))
    return await client.post(action, data={**data, "csrf_token": token})


async def _member(db_url: str, email: str, org: str) -> str:
    db = Database(db_url)
    try:
        async with db.transaction() as session:
            _, org_id = await accounts.sign_up(session, email, PASSWORD, org, credits=100)
        return org_id
    finally:
        await db.dispose()


async def _signed_in(base_url: str, email: str, password: str = PASSWORD) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=30)
    answer = await _post(client, "/login", "/login", {"email": email, "password": password})
    assert answer.status_code == 303, answer.text[:300]
    assert answer.headers["location"] == "/playground"
    return client


async def test_open_sign_up_refuses_bad_input_and_changes_nothing(gateway_factory: Callable[..., Any]) -> None:
    async with gateway_factory(signup="open") as gw:
        client = gw.client
        before = await counts(gw.db_url)
        for data, field in (
            ({"email": "not-an-email", "password": PASSWORD, "organization": "X"}, "email"),
            ({"email": "a@example.com", "password": "short", "organization": "X"}, "at least 10"),
            ({"email": "a@example.com", "password": PASSWORD, "organization": " "}, "organization"),
        ):
            answer = await _post(client, "/signup", "/signup", data)
            assert answer.status_code == 400
            assert field in answer.text
        assert await counts(gw.db_url) == before
        made = await _post(
            client, "/signup", "/signup", {"email": "A@Example.com ", "password": PASSWORD, "organization": "Acme"}
        )
        assert made.status_code == 303
        cookie = made.headers["set-cookie"]
        assert "grokgate_session=" in cookie
        assert "HttpOnly" in cookie
        assert "samesite=lax" in cookie.lower()
        assert "Secure" not in cookie  # plain http here: a Secure cookie would never come back
        async with httpx.AsyncClient(base_url=gw.server.url, timeout=30) as again:
            middle = await counts(gw.db_url)
            taken = {"email": "a@example.com", "password": PASSWORD, "organization": "Acme 2"}
            dup = await _post(again, "/signup", "/signup", taken)
            assert dup.status_code == 409
            assert "exists" in dup.text
            assert await counts(gw.db_url) == middle


async def test_cookies_are_secure_behind_tls(gateway_factory: Callable[..., Any]) -> None:
    async with gateway_factory(public_url="https://console.example") as gw:
        form = await gw.client.get("/signup")
        assert "Secure" in form.headers["set-cookie"]
        csrf = form.cookies["grokgate_csrf"]
        made = await gw.client.post(
            "/signup",
            data={"email": "tls@example.com", "password": PASSWORD, "organization": "T", "csrf_token": _token(form)},
            headers={"Cookie": f"grokgate_csrf={csrf}"},
        )
        assert made.status_code == 303
        session = made.headers["set-cookie"]
        assert "grokgate_session=" in session
        assert "Secure" in session
        assert "HttpOnly" in session


async def test_invite_only_sign_up_and_the_invitation_link(gateway_factory: Callable[..., Any]) -> None:
    async with gateway_factory(signup="invite") as gw:
        assert (await gw.client.get("/signup")).status_code == 403
        before = await counts(gw.db_url)
        refused = await _post(
            gw.client, "/login", "/signup", {"email": "x@example.com", "password": PASSWORD, "organization": "X"}
        )
        assert refused.status_code == 403
        assert "invitation" in refused.text
        assert await counts(gw.db_url) == before

        await _member(gw.db_url, "owner@example.com", "Owners")
        owner = await _signed_in(gw.server.url, "owner@example.com")
        try:
            shown = await _post(owner, "/account", "/account/invitations", {"email": "new@example.com"})
            link = re.search(r'id="invite-link" readonly value="([^"]+)"', shown.text)
            assert link, shown.text[:500]
            path = link[1].removeprefix(gw.server.url)
            guest = httpx.AsyncClient(base_url=gw.server.url, timeout=30)
            try:
                joined = await _post(guest, path, path, {"password": "another good password"})
                assert joined.status_code == 303
                page = await guest.get("/account")
                assert "Owners" in page.text
                assert "owner@example.com" in page.text
                assert (await guest.get(path)).status_code == 404  # used
            finally:
                await guest.aclose()
            newcomer = await _signed_in(gw.server.url, "new@example.com", "another good password")
            await newcomer.aclose()
        finally:
            await owner.aclose()


async def test_sign_up_off(gateway_factory: Callable[..., Any]) -> None:
    async with gateway_factory(signup="off") as gw:
        page = await gw.client.get("/signup")
        assert page.status_code == 403
        assert "closed" in page.text
        refused = await _post(
            gw.client, "/login", "/signup", {"email": "x@example.com", "password": PASSWORD, "organization": "X"}
        )
        assert refused.status_code == 403


async def test_login_throttle_password_change_and_safe_redirects(gateway_factory: Callable[..., Any]) -> None:
    async with gateway_factory(login_limit_email="3 per minute") as gw:
        await _member(gw.db_url, "carol@example.com", "Carol")
        await _member(gw.db_url, "dave@example.com", "Dave")
        for _ in range(3):
            wrong = await _post(gw.client, "/login", "/login", {"email": "carol@example.com", "password": "nope" * 3})
            assert wrong.status_code == 400
            assert "wrong" in wrong.text
        locked = await _post(gw.client, "/login", "/login", {"email": "carol@example.com", "password": PASSWORD})
        assert locked.status_code == 429
        assert "Too many" in locked.text
        assert "grokgate_session" not in locked.headers.get("set-cookie", "")

        away = await _post(
            gw.client, "/login", "/login", {"email": "dave@example.com", "password": PASSWORD, "next": "//evil.example"}
        )
        assert away.status_code == 303
        assert away.headers["location"] == "/playground"
        first = await _signed_in(gw.server.url, "dave@example.com")
        second = await _signed_in(gw.server.url, "dave@example.com")
        try:
            bad = await _post(
                first, "/account", "/account/password", {"current_password": "nope" * 3, "new_password": PASSWORD * 2}
            )
            assert bad.status_code == 400
            assert "does not match" in bad.text
            assert (await second.get("/keys")).status_code == 200
            changed = await _post(
                first, "/account", "/account/password", {"current_password": PASSWORD, "new_password": "a new long one"}
            )
            assert changed.status_code == 200
            assert "Password changed" in changed.text
            assert (await first.get("/keys")).status_code == 200  # this browser stays signed in
            assert (await second.get("/keys")).status_code == 303  # the other one is signed out
        finally:
            await first.aclose()
            await second.aclose()
        old = await _post(gw.client, "/login", "/login", {"email": "dave@example.com", "password": PASSWORD})
        assert old.status_code == 400
        await (await _signed_in(gw.server.url, "dave@example.com", "a new long one")).aclose()


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_guesses_sent_at_once_cannot_outrun_the_throttle(gateway_factory: Callable[..., Any], store: str) -> None:
    """Twelve wrong passwords for one email in parallel against 3 a minute: three are judged, nine refused unjudged,
    and then the right password is refused too."""
    redis_url = "redis://127.0.0.1:6379/0" if store == "redis" else None
    email = f"erin-{uuid.uuid4().hex[:8]}@example.com"
    async with gateway_factory(login_limit_email="3 per minute", redis_url=redis_url) as gw:
        await _member(gw.db_url, email, "Erin")
        token = _token(await gw.client.get("/login"))
        guesses = await asyncio.gather(
            *(
                gw.client.post("/login", data={"email": email, "password": f"guess {i}" * 2, "csrf_token": token})
                for i in range(12)
            )
        )
        assert sorted(guess.status_code for guess in guesses) == [400] * 3 + [429] * 9
        right = await gw.client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
        assert right.status_code == 429
