"""`grokgate balance`, `grokgate ledger` and `grokgate login`: the account on a grokgate server, and where the
client commands find it."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from grokgate.cli.common import CliError, JsonFlag, app
from grokgate.cli.remote import connected, print_json, wire
from grokgate.client import Client, GrokgateError
from grokgate.client.config import BASE_URL_ENV, DEFAULT_BASE_URL, Credentials, save


@app.command()
def balance(as_json: JsonFlag = False) -> None:
    """Credits remaining on your organisation."""
    with connected() as client:
        account = client.account.balance()
    if as_json:
        print_json(wire(account))
        return
    typer.echo(f"{account.credits_remaining} credits  ({account.name}, plan {account.plan})")


@app.command()
def ledger(
    limit: Annotated[int, typer.Option(help="Entries per page (1-100).")] = 20,
    offset: Annotated[int, typer.Option(help="Entries to skip.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Your credit movements (grants, charges, refunds), newest first."""
    with connected() as client:
        page = client.ledger.list(limit=limit, offset=offset)
    if as_json:
        print_json(wire(page))
        return
    for entry in page.entries:
        typer.echo(f"{entry.id:>6}  {entry.kind:<7} {entry.amount:>+8}  {entry.job_id or entry.note or ''}")


@app.command()
def login(
    base_url: Annotated[
        str | None, typer.Option(help=f"The gateway (default ${BASE_URL_ENV} or {DEFAULT_BASE_URL}).")
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="The key (asked for, unechoed, when left out).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check an API key against the gateway and save both for later commands (readable by you only)."""
    url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    key = api_key or typer.prompt("API key", hide_input=True)
    try:
        with Client(key, base_url=url) as client:
            account = client.account.balance()
    except GrokgateError as exc:
        raise CliError(f"login refused: {exc}") from None
    path = save(Credentials(key, url))
    if as_json:
        print_json({"baseUrl": url, "organization": wire(account), "file": str(path)})
        return
    typer.echo(f"logged in to {url} as {account.name} ({account.credits_remaining} credits); saved to {path}")
