"""What every command shares: the command tree, settings from the environment, one-line errors, `--json`.

The server side (settings, the database, migrations) is imported only by the commands that use it: the client
commands (`generate`, `jobs`, `balance`) start without loading SQLAlchemy, Alembic or the catalogue."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from grokgate.errors import ApiError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from grokgate.config import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
admin = typer.Typer(no_args_is_help=True, help="Organisations, API keys and credits.")
app.add_typer(admin, name="admin")

T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


class CliError(Exception):
    pass


def settings_from_env(**overrides: Any) -> Settings:
    from pydantic import ValidationError

    from grokgate.config import Settings

    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise CliError(f"invalid configuration: {problems}") from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except ApiError as exc:
        raise CliError(exc.message) from None


def emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(payload) if as_json else text)


async def in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from grokgate.db.engine import Database
    from grokgate.db.migrate import upgrade

    await upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            return await work(session)
    finally:
        await db.dispose()
