"""Fixtures: a migrated database per test (SQLite file or PostgreSQL), the sandbox upstream and the gateway,
each a real server on loopback. `GROKGATE_TEST_DB=postgresql` runs the whole suite on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from grokgate.api.app import create_app
from grokgate.config import Settings
from grokgate.db.engine import Database
from grokgate.db.migrate import upgrade
from grokgate.logs import configure as configure_logs
from grokgate.upstream.sandbox.app import create_sandbox_app
from tests.support import BACKEND, PG_URL, TABLES, LiveServer, Tenant, assert_money_exact, make_tenant

SANDBOX_KEY = "xai-test-key"
configure_logs("warning")

ONE_BACKEND: dict[str, str] = {
    # What these test runs no SQL of its own, or only SQL both passes already prove elsewhere (the dialect-specific
    # queries, in jobs/, billing/, storage/retention, db/leases and webhooks/, are tested on both): the sandbox
    # upstream and the xAI client, the SDK and the CLI client over HTTP, the xAI-compatible routes' translation,
    # the browser pages but for organisation isolation, HTTP-level hostile input, and the first run (SQLite's).
    "tests/upstream/test_sandbox_": "sqlite",
    "tests/upstream/test_xai_client.py": "sqlite",
    "tests/catalogue/test_prices.py": "sqlite",
    "tests/jobs/test_rules.py": "sqlite",
    "tests/client/": "sqlite",
    "tests/compat/": "sqlite",
    "tests/web/test_accounts.py": "sqlite",
    "tests/web/test_operator_console.py": "sqlite",
    "tests/web/test_playground.py": "sqlite",
    "tests/ops/test_hostile_inputs.py": "postgresql",  # PostgreSQL's pass: the two passes then take about as long
    "tests/ops/test_security.py": "postgresql",
    "tests/storage/test_hostile_links.py": "sqlite",
    "tests/e2e/test_first_run.py": "sqlite",
    # Generated invalid input finds what only PostgreSQL refuses (integers past 64 bits, NUL in text): its pass.
    "tests/ops/test_openapi_contract.py": "postgresql",
}
"""Tests that run in one of the two passes only (path prefix -> backend): the rest of the suite runs in both."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).resolve().parent.parent
    elsewhere = [
        item
        for item in items
        if any(
            item.path.relative_to(root).as_posix().startswith(prefix) and backend != BACKEND
            for prefix, backend in ONE_BACKEND.items()
        )
    ]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if item not in elsewhere]


def _pg_admin_dsn() -> str:
    return PG_URL.replace("postgresql+asyncpg://", "postgresql://")


@contextlib.contextmanager
def empty_database(folder: Path) -> Iterator[str]:
    """A database of its own with no tables yet: a SQLite file in `folder`, or a new PostgreSQL database."""
    if BACKEND == "sqlite":
        yield f"sqlite:///{folder / f'{secrets.token_hex(4)}.db'}"
        return
    name = f"grokgate_test_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(_pg_admin_dsn())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_admin_dsn().rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrated once per session: a SQLite file to copy, or a PostgreSQL database to truncate."""
    with empty_database(tmp_path_factory.mktemp("template")) as url:
        asyncio.run(upgrade(url))
        yield url.removeprefix("sqlite:///")


@pytest.fixture
async def db_url(database_template: str, tmp_path: Path) -> AsyncIterator[str]:
    """A clean, migrated database for this test; its money invariants are checked when the test ends."""
    if BACKEND == "sqlite":
        path = tmp_path / "grokgate.db"
        shutil.copy(database_template, path)
        url = f"sqlite:///{path}"
    else:
        url = database_template
        conn = await asyncpg.connect(url)
        try:
            # TRUNCATE does not fire the ledger's row triggers: the append-only rule still holds for the code.
            await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()
    yield url
    await assert_money_exact(url)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """The test's database, opened as the gateway opens it."""
    database = Database(db_url)
    yield database
    await database.dispose()


class Sandbox:
    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.url = server.url

    async def media_hashes(self) -> dict[str, str]:
        async with httpx.AsyncClient() as client:
            found: dict[str, str] = (await client.get(f"{self.url}/_sandbox/media")).json()["media"]
        return found

    async def requests(self, path_part: str = "") -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as client:
            journal = (await client.get(f"{self.url}/_sandbox/requests")).json()["requests"]
        return [entry for entry in journal if path_part in entry["path"]]


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with LiveServer(create_sandbox_app(api_key=SANDBOX_KEY, video_seconds=0.3, inspect=True)) as server:
        yield Sandbox(server)


def gateway_settings(db_url: str, sandbox_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "upstream": "xai",
        "xai_api_key": SANDBOX_KEY,
        "xai_base_url": f"{sandbox_url}/v1",
        "poll_interval": 0.05,
        "upstream_backoff": 0.01,
        "upstream_timeout": 10.0,
        "request_lease": 150.0,
        "job_lease": 10.0,
        "log_level": "warning",
        # Unpaced unless a test asks for xAI's limits: bursts fired by tests would otherwise take seconds.
        "xai_image_rps": 0,
        "xai_video_rps": 0,
        "image_queue_wait": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


class Gateway:
    def __init__(self, server: LiveServer, client: httpx.AsyncClient, db_url: str, settings: Settings) -> None:
        self.server = server
        self.client = client
        self.db_url = db_url
        self.settings = settings

    async def tenant(self, credits: int = 1000, name: str = "acme") -> Tenant:
        return await make_tenant(self.db_url, credits, name)

    async def generate(self, tenant: Tenant, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        merged = {**tenant.headers, **(headers or {})}
        return await self.client.post("/api/v1/models/grok-imagine", json=body, headers=merged)


@pytest.fixture
def gateway_factory(db_url: str, sandbox: Sandbox, tmp_path: Path) -> Callable[..., Any]:
    """Start a gateway with setting overrides: `async with gateway_factory(poll_interval=1) as gw: ...`."""
    import contextlib

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Gateway]:
        made: list[Settings] = []

        def make_app(url: str) -> Any:
            values = {"public_url": url, "data_dir": tmp_path / "data", **overrides}
            made.append(gateway_settings(db_url, sandbox.url, **values))
            return create_app(made[0])

        server = LiveServer(make_app=make_app)
        async with server, httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            yield Gateway(server, client, db_url, made[0])

    return start


@pytest.fixture
async def gateway(gateway_factory: Callable[..., Any]) -> AsyncIterator[Gateway]:
    async with gateway_factory() as gw:
        yield gw
