"""`grokgate admin upstream-key ...`: the pool of xAI keys the gateway spreads its requests over.

Keys added here join every running process's rotation within a few seconds; `list` shows which keys xAI refused
(taken out of rotation, with xAI's reason), and `enable` puts a key back once the operator fixed it (topped up the
team's credit, say). The secret is shown never again, only its last four characters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from grokgate.cli.common import JsonFlag, admin, emit, in_transaction, run, settings_from_env

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from grokgate.upstream.models import UpstreamKey

upstream = typer.Typer(no_args_is_help=True, help="The xAI keys the gateway uses (the upstream key pool).")
admin.add_typer(upstream, name="upstream-key")

KeyId = Annotated[str, typer.Argument(help="Key id (upk_... or env_...).")]


def _shown(row: UpstreamKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "source": row.source,
        "hint": f"...{row.hint}",
        "status": row.status,
        "reason": row.status_reason,
        "imageRps": row.image_rps,
        "videoRps": row.video_rps,
    }


def _line(key: dict[str, Any]) -> str:
    why = f"  ({key['reason']})" if key["reason"] else ""
    return f"{key['id']}  {key['name']}  {key['hint']}  {key['source']}  {key['status']}{why}"


@upstream.command("add")
def add(
    name: Annotated[str, typer.Option(help="A name to tell the key apart, e.g. the xAI team.")],
    key: Annotated[str, typer.Option(help="The xAI API key (xai-...).", prompt=True, hide_input=True)],
    image_rps: Annotated[int | None, typer.Option(help="This key's image pace, if not the default.")] = None,
    video_rps: Annotated[int | None, typer.Option(help="This key's video pace, if not the default.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add an xAI key to the pool (prompted for when --key is not given, so it stays out of the shell history)."""
    from grokgate.upstream import keys

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await keys.add(session, name, key, image_rps=image_rps, video_rps=video_rps)
        return _shown(row)

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, f"added {_line(result)}")


@upstream.command("list")
def list_keys(as_json: JsonFlag = False) -> None:
    """Every key of the pool, in rotation or not, and why xAI refused the ones it refused."""
    from grokgate.upstream import keys

    async def work(session: AsyncSession) -> dict[str, Any]:
        return {"keys": [_shown(row) for row in await keys.all_keys(session)]}

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, "\n".join(_line(key) for key in result["keys"]) or "no upstream keys")


def _set(key_id: str, status: str, reason: str | None, as_json: bool) -> None:
    from grokgate.upstream import keys

    async def work(session: AsyncSession) -> dict[str, Any]:
        return _shown(await keys.set_status(session, key_id, status, reason))

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, _line(result))


@upstream.command("disable")
def disable(key_id: KeyId, as_json: JsonFlag = False) -> None:
    """Take a key out of rotation (videos it created are still polled through it)."""
    _set(key_id, "disabled", "disabled by an operator", as_json)


@upstream.command("enable")
def enable(key_id: KeyId, as_json: JsonFlag = False) -> None:
    """Put a refused or disabled key back in rotation."""
    _set(key_id, "active", None, as_json)


@upstream.command("remove")
def remove(key_id: KeyId, as_json: JsonFlag = False) -> None:
    """Forget a key added here (videos it created can no longer be polled: they fail, refunded)."""
    from grokgate.upstream import keys

    async def work(session: AsyncSession) -> dict[str, Any]:
        await keys.remove(session, key_id)
        return {"id": key_id, "removed": True}

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, f"{key_id} removed")
