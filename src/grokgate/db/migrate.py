"""Run Alembic migrations from code, on the same async engine set-up the server uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from grokgate.config import async_database_url
from grokgate.db.engine import Database

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_LOCK_ID = 0x67726F6B  # PostgreSQL advisory lock: two processes starting at once migrate one after the other


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _migrate(connection: Connection, step: Callable[[Config, str], None], revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    config = alembic_config()
    config.attributes["connection"] = connection
    step(config, revision)


async def _run(url: str, step: Callable[[Config, str], None], revision: str) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(_migrate, step, revision)
    finally:
        await db.dispose()


def ensure_sqlite_dir(url: str) -> None:
    url = async_database_url(url)
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        Path(url[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)


async def upgrade(url: str, revision: str = "head") -> None:
    ensure_sqlite_dir(url)
    await _run(url, command.upgrade, revision)


async def downgrade(url: str, revision: str) -> None:
    """Back to `revision` (the tests of a migration's way back use it)."""
    await _run(url, command.downgrade, revision)
