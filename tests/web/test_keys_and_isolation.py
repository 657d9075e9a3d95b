"""Keys, cancelling, CSRF and isolation in Chromium: a key made on the page works with an HTTP client and stops
when revoked; a running video is cancelled from its page and refunded; a form or API call without the session's
CSRF token is refused and changes nothing; a member of one organisation never reaches another's jobs, keys or
members, however the URL is guessed, until invited in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import PASSWORD, Console, api_client, log_in, session_cookies, sign_up

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]


async def _new_key(page: Any, name: str, scopes: tuple[str, ...] | None = None) -> str:
    await page.goto("/keys")
    await page.get_by_label("Name").fill(name)
    if scopes is not None:
        for box in await page.locator('input[name="scopes"]').all():
            if await box.get_attribute("value") not in scopes:
                await box.uncheck()
    await page.get_by_label("Expires").select_option("30")
    await page.get_by_role("button", name="Create key").click()
    secret = await page.locator("#new-key").input_value()
    assert secret.startswith("gg_")
    return secret


async def test_key_made_on_the_page_works_with_httpx_until_revoked(
    context: Any, console: Console, artefacts: Path
) -> None:
    page = await context.new_page()
    email = console.email("keeper")
    await sign_up(page, email, "Keepers")
    cookies = {cookie["name"]: cookie for cookie in await context.cookies()}
    session = cookies["grokgate_session"]
    assert session["httpOnly"]
    assert session["sameSite"] == "Lax"
    assert not session["secure"]

    # Sign out ends the session on the server: the old cookie no longer opens anything.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/login")
    async with api_client(console, {"grokgate_session": session["value"]}) as client:
        assert (await client.get("/keys")).status_code == 303
        assert (await client.get("/api/v1/organization")).json()["code"] == "MISSING_AUTH"
    await log_in(page, email, "wrong password!!")
    assert "wrong" in await page.locator(".error").inner_text()
    await log_in(page, email)
    await page.wait_for_url("**/playground")

    secret = await _new_key(page, "ci", scopes=("generate", "jobs:read"))
    await page.screenshot(path=artefacts / "keys-created.png", full_page=True)
    row = page.locator("#keys tbody tr", has_text="ci")
    assert "generate jobs:read" in await row.inner_text()
    assert await row.locator(".last-used").inner_text() == "never"
    async with api_client(console) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        made = await client.post(
            "/api/v1/models/grok-imagine", json={"prompt": "A kite", "model": "text-to-image"}, headers=headers
        )
        assert made.status_code == 200, made.text
        assert (await client.get("/api/v1/organization", headers=headers)).json()["code"] == "INSUFFICIENT_SCOPE"
        await page.goto("/keys")
        assert await page.locator("#new-key").count() == 0  # shown once: the keys page never shows it again
        assert await row.locator(".last-used").inner_text() != "never"
        await row.get_by_role("button", name="Revoke ci").click()
        await page.wait_for_url("**/keys")
        assert await row.locator(".state").inner_text() == "revoked"
        refused = await client.get("/api/v1/jobs", headers=headers)
        assert refused.json()["code"] == "KEY_REVOKED"
    await page.screenshot(path=artefacts / "keys.png", full_page=True)


async def test_cancel_a_running_video_from_its_page(context: Any, console: Console) -> None:
    page = await context.new_page()
    await sign_up(page, console.email("canceller"), "Cancellers")
    secret = await _new_key(page, "script")
    async with api_client(console) as client:
        made = await client.post(
            "/api/v1/models/grok-imagine",
            json={"prompt": "A long shot [sandbox:delay=60]", "model": "text-to-video"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert made.status_code == 202, made.text
    job_id = made.json()["jobId"]
    await page.goto(f"/history/{job_id}")
    await page.get_by_role("button", name="Cancel job").click()
    await page.wait_for_url(f"**/history/{job_id}")
    assert await page.locator("#job-status").inner_text() == "cancelled"
    assert await page.locator("#refunded").inner_text() == "150"
    assert await page.get_by_role("button", name="Cancel job").count() == 0
    await page.goto("/billing")
    assert await page.locator("#balance").inner_text() == "1000"


async def test_forms_and_api_calls_without_the_csrf_token_are_refused(context: Any, console: Console) -> None:
    page = await context.new_page()
    await sign_up(page, console.email("guarded"), "Guarded")
    await page.goto("/keys")
    token = await page.evaluate("document.body.dataset.csrf")
    # The page's own session, as a forged cross-site form or script would carry it (but without the token).
    forged = await page.request.post("/keys", form={"name": "forged", "scopes": "generate"})
    assert forged.status == 403
    wrong = await page.request.post("/keys", form={"name": "forged", "scopes": "generate", "csrf_token": "x" * 43})
    assert wrong.status == 403
    api = await page.request.post("/api/v1/models/grok-imagine", data={"prompt": "A kite", "model": "text-to-image"})
    assert api.status == 403
    assert (await api.json())["code"] == "CSRF_FAILED"
    await page.goto("/keys")
    assert await page.locator("#keys tbody tr", has_text="forged").count() == 0
    await page.goto("/billing")
    assert await page.locator("#balance").inner_text() == "1000"  # nothing was charged
    # With the token, the same session is let through.
    allowed = await page.request.post(
        "/api/v1/quote", data={"prompt": "A kite", "model": "text-to-image"}, headers={"X-CSRF-Token": token}
    )
    assert allowed.status == 200
    assert (await allowed.json())["creditsCharged"] == 8
    # Before anyone signs in, the sign-in form is guarded too (its token lives in its own cookie).
    cookies = await session_cookies(context)
    async with api_client(console, {"grokgate_csrf": cookies.get("grokgate_csrf", "")}) as client:
        refused = await client.post("/login", data={"email": "a@example.com", "password": PASSWORD})
        assert refused.status_code == 403


async def test_one_organisation_never_reaches_another_until_invited(
    browser: Any, context: Any, console: Console, artefacts: Path
) -> None:
    alice = await context.new_page()
    await sign_up(alice, console.email("alice"), "Alice Co")
    secret = await _new_key(alice, "alice-key")
    key_id = await alice.locator("#keys tbody tr", has_text="alice-key").get_attribute("data-key")
    async with api_client(console) as client:
        made = await client.post(
            "/api/v1/models/grok-imagine",
            json={"prompt": "Alice's secret", "model": "text-to-image"},
            headers={"Authorization": f"Bearer {secret}"},
        )
    job_id = made.json()["jobId"]

    other = await browser.new_context(base_url=console.url)
    try:
        bob = await other.new_page()
        bob_email = console.email("bob")
        await sign_up(bob, bob_email, "Bob Ltd")
        for path in (f"/history/{job_id}", f"/playground?again={job_id}"):
            answer = await bob.goto(path)
            assert answer is not None
            assert answer.status == 404, path
        assert "Alice" not in await bob.content()
        await bob.goto("/history")
        assert await bob.locator("#gallery li.card").count() == 0
        token = await bob.evaluate("document.body.dataset.csrf")
        for path in (f"/history/{job_id}/cancel", f"/keys/{key_id}/revoke"):
            answer = await bob.request.post(path, form={"csrf_token": token})
            assert answer.status == 404, path
        for method, path in (("GET", f"/api/v1/jobs/{job_id}"), ("DELETE", f"/api/v1/jobs/{job_id}")):
            answer = await bob.request.fetch(path, method=method, headers={"X-CSRF-Token": token})
            assert answer.status == 404, path
            assert (await answer.json())["code"] == "JOB_NOT_FOUND"
        await bob.goto("/keys")
        assert await bob.locator("#keys tbody tr", has_text="alice-key").count() == 0
        await bob.goto("/account")
        assert "alice" not in (await bob.locator("#members").inner_text()).lower()
        # Alice's key still works: Bob's attempt to revoke it changed nothing.
        async with api_client(console) as client:
            assert (await client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {secret}"})).status_code == 200

        # Alice invites Bob; the link is shown to her; once Bob accepts, he sees Alice Co's job as well as his own.
        await alice.goto("/account")
        await alice.get_by_label("Email", exact=True).fill(bob_email)
        await alice.get_by_role("button", name="Create invitation link").click()
        link = await alice.locator("#invite-link").input_value()
        await alice.screenshot(path=artefacts / "account.png", full_page=True)
        await bob.goto(link)
        await bob.get_by_role("button", name="Accept and join").click()
        await bob.wait_for_url("**/playground")
        assert "Alice Co" in await bob.locator(".who").inner_text()
        assert (await bob.goto(f"/history/{job_id}")).status == 200  # type: ignore[union-attr]
        await bob.goto("/account")
        members = await bob.locator("#members").inner_text()
        assert "alice" in members
        assert "bob" in members
        await bob.get_by_label("Working in").select_option(label="Bob Ltd (owner)")
        await bob.get_by_role("button", name="Switch").click()
        await bob.wait_for_url("**/playground")
        assert (await bob.goto(f"/history/{job_id}")).status == 404  # type: ignore[union-attr]
        assert (await bob.goto(link)).status == 404  # type: ignore[union-attr]  # an invitation works once
    finally:
        await other.close()
