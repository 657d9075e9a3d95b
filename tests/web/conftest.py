"""What the browser tests share within a module: one database, one sandbox, one gateway and one Chromium (Debian's
`/usr/bin/chromium`, driven by Playwright). Each test opens its own browser context (its own cookies) and signs up
its own organisation, so tests in a module never see each other's data; the money invariants are checked when
the module ends. Screenshots go to pytest's temporary directory (`GROKGATE_TEST_ARTEFACTS` to choose another)."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from grokgate.api.app import create_app
from grokgate.upstream.sandbox.app import create_sandbox_app
from tests.conftest import SANDBOX_KEY, gateway_settings
from tests.support import BACKEND, TABLES, LiveServer, assert_money_exact

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery"


class Console:
    """The gateway under test, and how a test reaches it: its URL, an HTTP client, the database URL."""

    def __init__(self, server: LiveServer, db_url: str, settings: Any) -> None:
        self.server = server
        self.url = server.url
        self.db_url = db_url
        self.settings = settings

    def email(self, label: str) -> str:
        return f"{label}-{secrets.token_hex(4)}@example.com"


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    chosen = os.environ.get("GROKGATE_TEST_ARTEFACTS")
    name = request.module.__name__.rsplit(".", 1)[-1]
    if chosen:
        path = Path(chosen) / BACKEND / name
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp(f"screens-{name}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_db(database_template: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("web-db") / "grokgate.db"
        shutil.copy(database_template, path)
        url = f"sqlite:///{path}"
    else:
        url = database_template
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()
    yield url
    await assert_money_exact(url)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def console(module_db: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Console]:
    data = tmp_path_factory.mktemp("web-data")
    async with LiveServer(create_sandbox_app(api_key=SANDBOX_KEY, video_seconds=0.5, inspect=True)) as sandbox:
        made: list[Any] = []

        def make_app(url: str) -> Any:
            made.append(
                gateway_settings(
                    module_db,
                    sandbox.url,
                    public_url=url,
                    data_dir=data,
                    signup="open",
                    signup_credits=1000,
                    login_limit_email="5 per 5 minutes",
                )
            )
            return create_app(made[0])

        async with LiveServer(make_app=make_app) as server:
            yield Console(server, module_db, made[0])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Any, console: Console) -> AsyncIterator[Any]:
    """A fresh browser profile for one test (its own cookies), with the console as its base URL."""
    made = await browser.new_context(base_url=console.url, viewport={"width": 1200, "height": 900})
    made.set_default_timeout(15_000)
    yield made
    await made.close()


async def sign_up(page: Any, email: str, organization: str, password: str = PASSWORD) -> None:
    await page.goto("/signup")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Organisation name").fill(organization)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url("**/playground")


async def log_in(page: Any, email: str, password: str = PASSWORD) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def session_cookies(context: Any) -> dict[str, str]:
    return {cookie["name"]: cookie["value"] for cookie in await context.cookies()}


def api_client(console: Console, cookies: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=console.url, cookies=cookies or {}, timeout=30)
