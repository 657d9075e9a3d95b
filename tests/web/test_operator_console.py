"""The operator console in Chromium: an operator signs in, finds a customer's organisation, grants it credits that
the customer (signed in on the customer console in another browser) sees at once, a grant form sent twice grants
once, suspending the organisation stops its generations with 403 ORG_SUSPENDED and charges nothing; forms without
the session's CSRF token are refused; a customer's session never opens /admin, nor an operator's the customer
console. Over plain HTTP: `grokgate admin create-operator` and the operator sign-in's throttle."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from grokgate.accounts import operators
from grokgate.db.engine import Database
from grokgate.errors import ApiError
from tests.e2e.process import GROKGATE, clean_env
from tests.web.conftest import PASSWORD, Console, api_client, session_cookies, sign_up

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

IMAGE = {"prompt": "A lighthouse", "model": "text-to-image"}


async def new_operator(console: Console, label: str, password: str = PASSWORD) -> str:
    email = label if "@" in label else console.email(label)
    db = Database(console.db_url)
    try:
        async with db.transaction() as session:
            await operators.create_operator(session, email, password)
    finally:
        await db.dispose()
    return email


async def operator_log_in(page: Any, email: str, password: str = PASSWORD) -> None:
    await page.goto("/admin")
    await page.wait_for_url("**/admin/login**")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def open_org(page: Any, name: str) -> str:
    """Search the organisations for `name`, open its page; its id."""
    await page.goto("/admin/orgs")
    await page.get_by_label("Search").fill(name)
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name=name, exact=True).click()
    await page.wait_for_url("**/admin/orgs/org_*")
    return str(page.url).rsplit("/", 1)[-1]


async def generate(page: Any) -> Any:
    """An image through the API from the customer console's page, with its session and CSRF token."""
    token = await page.evaluate("document.body.dataset.csrf")
    return await page.request.post("/api/v1/models/grok-imagine", data=IMAGE, headers={"X-CSRF-Token": token})


async def test_operator_grants_credits_the_customer_sees_and_suspends(
    browser: Any, context: Any, console: Console, artefacts: Path
) -> None:
    customer = await context.new_page()
    name = f"Granted {console.email('x')[2:10]}"
    await sign_up(customer, console.email("customer"), name)

    desk = await browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 900})
    desk.set_default_timeout(15_000)
    try:
        operator = await desk.new_page()
        await operator_log_in(operator, await new_operator(console, "operator"))
        await operator.wait_for_url("**/admin/orgs")
        cookie = {c["name"]: c for c in await desk.cookies()}["grokgate_operator"]
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/admin")
        assert "grokgate_session" not in await session_cookies(desk)
        await operator.screenshot(path=artefacts / "operator-orgs.png", full_page=True)

        org_id = await open_org(operator, name)
        assert await operator.locator("#balance").inner_text() == "1000"
        await operator.get_by_label("Credits").first.fill("500")
        await operator.get_by_label("Reason").first.fill("invoice 42 paid")
        await operator.get_by_role("button", name="Grant credits").click()
        assert "Granted 500 credits" in await operator.locator("#notice").inner_text()
        assert await operator.locator("#balance").inner_text() == "1500"
        assert await operator.locator("#ledger-sum").inner_text() == "1500"
        assert "invoice 42 paid" in await operator.locator("#movements").inner_text()
        await operator.screenshot(path=artefacts / "operator-org.png", full_page=True)

        # The customer, in their own browser, sees the new balance.
        await customer.goto("/billing")
        assert await customer.locator("#balance").inner_text() == "1500"

        # The same grant form sent twice (a double click, a resend) grants once: the form's grant id is made
        # when the page is drawn.
        await operator.goto(f"/admin/orgs/{org_id}")
        await operator.get_by_label("Credits").first.fill("250")
        await operator.get_by_label("Reason").first.fill("top-up")
        await operator.get_by_role("button", name="Grant credits").dblclick()
        await operator.locator("#notice", has_text=re.compile("Granted 250|sent before")).wait_for()
        await customer.goto("/billing")
        assert await customer.locator("#balance").inner_text() == "1750"
        await operator.goto(f"/admin/orgs/{org_id}")
        form = operator.locator("#grant-form")
        fields = {
            "csrf_token": await form.locator('input[name="csrf_token"]').input_value(),
            "grant_id": await form.locator('input[name="grant_id"]').input_value(),
            "credits": "250",
            "reason": "top-up",
        }
        answers = await asyncio.gather(
            *(operator.request.post(f"/admin/orgs/{org_id}/grants", form=fields) for _ in range(2))
        )
        assert [answer.status for answer in answers] == [200, 200]
        texts = [await answer.text() for answer in answers]
        assert sum("Granted 250 credits" in text for text in texts) == 1
        assert sum("was made once" in text for text in texts) == 1
        await customer.goto("/billing")
        assert await customer.locator("#balance").inner_text() == "2000"  # 1500 + 250 + 250, each form once

        # The customer caps a key on their key page; the operator sees the cap and its spend.
        await customer.goto("/keys")
        await customer.get_by_label("Name").fill("capped")
        await customer.get_by_label("Credits per day").fill("0")
        await customer.get_by_role("button", name="Create key").click()
        assert "daily_cap" in await customer.locator(".error").inner_text()
        assert await customer.locator("#keys tbody tr", has_text="capped").count() == 0
        await customer.get_by_label("Name").fill("capped")
        await customer.get_by_label("Credits per day").fill("16")
        await customer.get_by_role("button", name="Create key").click()
        secret = await customer.locator("#new-key").input_value()
        async with api_client(console) as client:
            headers = {"Authorization": f"Bearer {secret}"}
            codes = [
                (await client.post("/api/v1/models/grok-imagine", json=IMAGE, headers=headers)).status_code
                for _ in range(3)
            ]
        assert codes == [200, 200, 402]
        await customer.goto("/keys")
        capped = customer.locator("#keys tbody tr", has_text="capped")
        assert await capped.locator(".daily-cap").inner_text() == "16 (16)"
        assert await capped.locator(".monthly-cap").inner_text() == "none"
        key_id = await capped.get_attribute("data-key")
        await operator.goto(f"/admin/orgs/{org_id}")
        assert await operator.locator(f'#keys tr[data-key="{key_id}"] .daily').inner_text() == "16 (16)"
        assert await operator.locator("#balance").inner_text() == "1984"

        # Suspended: the customer's generation is refused with nothing charged; resumed, it works again.
        await operator.goto(f"/admin/orgs/{org_id}")
        await operator.get_by_role("button", name="Suspend organisation").click()
        await operator.wait_for_url(f"**/admin/orgs/{org_id}")
        assert (await operator.locator("#org-state").inner_text()).startswith("suspended")
        refused = await generate(customer)
        assert refused.status == 403
        assert (await refused.json())["code"] == "ORG_SUSPENDED"
        await customer.goto("/keys")
        await customer.screenshot(path=artefacts / "customer-keys-capped.png", full_page=True)
        await customer.goto("/billing")
        assert await customer.locator("#balance").inner_text() == "1984"
        await operator.get_by_role("button", name="Resume organisation").click()
        await operator.wait_for_url(f"**/admin/orgs/{org_id}")
        assert await operator.locator("#org-state").inner_text() == "active"
        made = await generate(customer)
        assert made.status == 200, await made.text()
        job_id = (await made.json())["jobId"]

        # The job among every organisation's jobs, filtered to this one; money at a glance shows the grants.
        await operator.goto(f"/admin/jobs?org={org_id}")
        assert await operator.locator("#job-total").inner_text() == "3 jobs"
        assert "completed" in await operator.locator(f'tr[data-job="{job_id}"]').inner_text()
        await operator.screenshot(path=artefacts / "operator-jobs.png", full_page=True)
        await operator.goto("/admin/money")
        assert int(await operator.locator("#total-sold").inner_text()) >= 2000
        assert await operator.locator('#credit-chart rect[data-series="sold"]').count() >= 1
        assert await operator.locator('#usd-chart rect[data-series="revenue"]').count() >= 1
        await operator.screenshot(path=artefacts / "operator-money.png", full_page=True)
        await operator.goto("/admin/webhooks")
        await operator.screenshot(path=artefacts / "operator-webhooks.png", full_page=True)

        # The upstream key pool: disable the key, then put it back.
        await operator.goto("/admin/upstream")
        row = operator.locator("#upstream-keys tbody tr").first
        await row.get_by_role("button", name=re.compile("^Disable")).click()
        await operator.wait_for_url("**/admin/upstream")
        assert (await row.locator(".state").inner_text()).startswith("disabled")
        await operator.screenshot(path=artefacts / "operator-upstream.png", full_page=True)
        await row.get_by_role("button", name=re.compile("^Enable")).click()
        await operator.wait_for_url("**/admin/upstream")
        assert await row.locator(".state").inner_text() == "active"
        assert (await generate(customer)).status == 200
    finally:
        await desk.close()


async def test_csrf_and_sessions_of_one_kind_only(browser: Any, context: Any, console: Console) -> None:
    customer = await context.new_page()
    name, member_email = f"Guarded {console.email('x')[2:10]}", console.email("member")
    await sign_up(customer, member_email, name)
    member_token = (await session_cookies(context))["grokgate_session"]

    # A customer's session does not open the operator console, whichever cookie carries it.
    await customer.goto("/admin/orgs")
    assert "/admin/login" in customer.url
    async with api_client(console, {"grokgate_session": member_token, "grokgate_operator": member_token}) as client:
        answer = await client.get("/admin/orgs")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/admin/login")
        assert (await client.get("/admin/money")).status_code == 303
    # Nor are a member's email and password an operator's.
    await operator_log_in(customer, member_email)
    assert "wrong" in await customer.locator(".error").inner_text()
    assert "grokgate_operator" not in await session_cookies(context)

    desk = await browser.new_context(base_url=console.url)
    desk.set_default_timeout(15_000)
    try:
        operator = await desk.new_page()
        await operator_log_in(operator, await new_operator(console, "guard"))
        await operator.wait_for_url("**/admin/orgs")
        org_id = await open_org(operator, name)
        token = await operator.evaluate("document.body.dataset.csrf")
        grant = {"grant_id": "console-grant-forged", "credits": "900", "reason": "forged"}
        for form in (grant, {**grant, "csrf_token": "x" * 43}, {**grant, "csrf_token": member_token}):
            refused = await operator.request.post(f"/admin/orgs/{org_id}/grants", form=form)
            assert refused.status == 403
        assert (await operator.request.post(f"/admin/orgs/{org_id}/suspend", form={})).status == 403
        upstream_id = "env_missing"
        assert (await operator.request.post(f"/admin/upstream/{upstream_id}/disable", form={})).status == 403
        await operator.goto(f"/admin/orgs/{org_id}")
        assert await operator.locator("#balance").inner_text() == "1000"
        assert await operator.locator("#org-state").inner_text() == "active"
        # With the token, the same session is let through; another organisation's page is a plain 404.
        missing = await operator.request.post("/admin/orgs/org_missing/suspend", form={"csrf_token": token})
        assert missing.status == 404

        # An operator's session is nobody on the customer console or the customer API.
        operator_token = (await session_cookies(desk))["grokgate_operator"]
        async with api_client(console, {"grokgate_session": operator_token}) as client:
            assert (await client.get("/keys")).status_code == 303
            assert (await client.get("/api/v1/organization")).json()["code"] == "MISSING_AUTH"
        async with api_client(console, {"grokgate_operator": operator_token}) as client:
            assert (await client.get("/api/v1/organization")).json()["code"] == "MISSING_AUTH"

        # Signing out ends the session on the server.
        await operator.get_by_role("button", name="Sign out").click()
        await operator.wait_for_url("**/admin/login")
        async with api_client(console, {"grokgate_operator": operator_token}) as client:
            assert (await client.get("/admin/orgs")).status_code == 303
    finally:
        await desk.close()


def _create_operator(console: Console, email: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GROKGATE, "admin", "create-operator", "--email", email, "--password-stdin", "--json"],
        input=password + "\n",
        env=clean_env(GROKGATE_DATABASE_URL=console.db_url),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await client.get("/admin/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return await client.post(
        "/admin/login", data={"csrf_token": found.group(1), "email": email, "password": password, "next": "/admin"}
    )


async def test_create_operator_and_the_throttled_sign_in(console: Console) -> None:
    email = console.email("cli-operator")
    made = await asyncio.to_thread(_create_operator, console, email, PASSWORD)
    assert made.returncode == 0, made.stderr
    assert '"email": "' + email + '"' in made.stdout
    with pytest.raises(ApiError) as taken:
        await new_operator(console, email)
    assert taken.value.code == "EMAIL_TAKEN"
    with pytest.raises(ApiError) as short:
        await new_operator(console, console.email("short"), "too short")
    assert short.value.message == "password: must be at least 10 characters"

    async with api_client(console) as client:
        signed_in = await _sign_in(client, email, PASSWORD)
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/admin"
        cookie = signed_in.headers["set-cookie"].lower()
        assert cookie.startswith("grokgate_operator=")
        assert all(part in cookie for part in ("httponly", "samesite=strict", "path=/admin"))
        assert (await client.get("/admin/orgs")).status_code == 200

    # A customer's email and password are nobody here, and five wrong passwords lock the email for a while
    # (the module's gateway allows 5 per 5 minutes): then even the right one is refused with 429.
    async with api_client(console) as client:
        for _ in range(5):
            assert (await _sign_in(client, email, "wrong password!!")).status_code == 400
        throttled = await _sign_in(client, email, PASSWORD)
        assert throttled.status_code == 429
        assert "Too many sign-in attempts" in throttled.text


async def test_a_day_that_lost_money_is_drawn_below_the_zero_line() -> None:
    from grokgate.web.operator.charts import grouped_bars

    svg = str(grouped_bars(["2026-12-01", "2026-12-02"], [("margin", [2.5, -1.0])], label="Margin", unit="USD"))
    bars = dict(re.findall(r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"[^>]*data-value', svg))
    zero = float(re.search(r'<line x1="\d+" y1="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    (up_y, up_h), (down_y, down_h) = ((float(y), float(h)) for y, h in bars.items())
    assert up_y + up_h == pytest.approx(zero, abs=0.1)  # grows up to the line
    assert down_y == pytest.approx(zero, abs=0.1)  # hangs below it
    assert up_h == pytest.approx(2.5 * down_h, rel=0.01)
    assert "2026-12-02 margin: -1.00 USD" in svg
    assert ">-1.00</text>" in svg  # the axis shows how far down it goes
