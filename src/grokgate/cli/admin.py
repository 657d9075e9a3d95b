"""`grokgate admin`: organisations, API keys, credits, plans and reports, straight on the database."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from grokgate.cli.common import CliError, JsonFlag, admin, emit, in_transaction, run, settings_from_env
from grokgate.errors import ApiError
from grokgate.orgs.scopes import ALL_SCOPES, parse_scopes

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


@admin.command("create-org")
def create_org(
    name: Annotated[str, typer.Option(help="Organisation name.")],
    credits: Annotated[int, typer.Option(help="Initial credits.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Create an organisation, granting it initial credits through the ledger."""
    from grokgate.orgs import service as orgs

    async def work(session: AsyncSession) -> dict[str, Any]:
        org = await orgs.create_org(session, name, credits)
        return {"id": org.id, "name": org.name, "creditsRemaining": org.credits_remaining}

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, f"{result['id']}  {result['name']}  {result['creditsRemaining']} credits")


def _duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s` -> a timedelta."""
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    try:
        amount, unit = float(text[:-1]), units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise CliError(f"--expires-in: {text!r} is not a duration like 30d, 12h or 90m") from None
    if amount <= 0:
        raise CliError("--expires-in: must be positive")
    return timedelta(**{unit: amount})


@admin.command("create-key")
def create_key(
    org: Annotated[str, typer.Option(help="Organisation id.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: generate, jobs:read, jobs:write, account:read.")
    ] = ",".join(ALL_SCOPES),
    expires_in: Annotated[str | None, typer.Option(help="Lifetime, e.g. 30d, 12h, 90m.")] = None,
    daily_cap: Annotated[int | None, typer.Option(help="Most credits the key may spend per UTC day.")] = None,
    monthly_cap: Annotated[int | None, typer.Option(help="Most credits the key may spend per UTC month.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key; the secret is printed once and never stored."""
    from grokgate.billing.caps import Caps
    from grokgate.db.base import utcnow
    from grokgate.orgs import service as orgs

    lifetime = _duration(expires_in) if expires_in else None

    async def work(session: AsyncSession) -> dict[str, Any]:
        granted = parse_scopes(scopes)
        expires = utcnow() + lifetime if lifetime else None
        limits = Caps(daily=daily_cap, monthly=monthly_cap)
        row, secret = await orgs.create_key(session, org, expires, granted, caps=limits)
        return {
            "id": row.id,
            "key": secret,
            "orgId": org,
            "scopes": row.scopes.split(),
            "expiresAt": expires.isoformat() if expires else None,
            "dailyCap": row.daily_cap,
            "monthlyCap": row.monthly_cap,
        }

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, f"{result['id']}  {result['key']}  (shown only once)")


@admin.command("revoke-key")
def revoke_key(key_id: Annotated[str, typer.Option(help="Key id (key_...).")], as_json: JsonFlag = False) -> None:
    """Revoke an API key at once."""
    from grokgate.orgs import service as orgs

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await orgs.revoke_key(session, key_id)
        return {"id": row.id, "revoked": True}

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, f"{result['id']} revoked")


@admin.command("add-credits")
def add_credits(
    org: Annotated[str, typer.Option(help="Organisation id.")],
    credits: Annotated[int, typer.Option(help="Credits to grant (positive).")],
    as_json: JsonFlag = False,
) -> None:
    """Grant credits to an organisation (a ledger row)."""
    from grokgate.billing import ledger
    from grokgate.orgs import service as orgs

    async def work(session: AsyncSession) -> dict[str, Any]:
        await orgs.get_org(session, org)
        return {"id": org, "creditsRemaining": await ledger.grant(session, org, credits, note="admin grant")}

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, f"{org}: {result['creditsRemaining']} credits")


@admin.command("set-plan")
def set_plan(
    org: Annotated[str, typer.Option(help="Organisation id.")],
    plan: Annotated[str, typer.Option(help="Plan name (default, or one from GROKGATE_PLANS).")],
    as_json: JsonFlag = False,
) -> None:
    """Move an organisation to another plan (its rate limits)."""
    from grokgate.orgs import service as orgs

    settings = settings_from_env()

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await orgs.set_plan(session, org, plan, settings.plans)
        return {"id": row.id, "plan": row.plan, "limits": settings.plans[row.plan].model_dump()}

    result = run(in_transaction(settings, work))
    emit(as_json, result, f"{org}: plan {result['plan']} {result['limits']}")


@admin.command("webhook-secret")
def webhook_secret(
    org: Annotated[str, typer.Option(help="Organisation id.")],
    rotate: Annotated[bool, typer.Option("--rotate", help="Replace it with a new secret.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show (or rotate) the secret that signs an organisation's webhooks (Standard Webhooks, `whsec_...`)."""
    from grokgate.orgs import service as orgs

    async def work(session: AsyncSession) -> dict[str, Any]:
        return {"orgId": org, "secret": await orgs.webhook_secret(session, org, rotate=rotate), "rotated": rotate}

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, str(result["secret"]))


@admin.command("report")
def report(
    org: Annotated[str, typer.Option(help="Organisation id.")],
    since: Annotated[str, typer.Option(help="Window, e.g. 7d, 24h.")] = "7d",
    as_json: JsonFlag = False,
) -> None:
    """Jobs, credits, xAI's cost in USD and the margin of an organisation over a window."""
    from grokgate.db.base import utcnow
    from grokgate.orgs import service as orgs

    settings = settings_from_env()
    window = _duration(since)

    async def work(session: AsyncSession) -> dict[str, Any]:
        from grokgate.billing.report import org_report

        await orgs.get_org(session, org)
        return await org_report(session, org, utcnow() - window, credit_usd=settings.credit_usd)

    result = run(in_transaction(settings, work))
    result["since"] = since
    emit(as_json, result, json.dumps(result, indent=2))


@admin.command("balance")
def balance(org: Annotated[str, typer.Option(help="Organisation id.")], as_json: JsonFlag = False) -> None:
    """The cached balance and the ledger sum, computed independently: they must always agree."""
    from grokgate.billing import ledger

    async def work(session: AsyncSession) -> dict[str, Any]:
        found = await ledger.balance_of(session, org)
        if found is None:
            raise ApiError(404, "NOT_FOUND", f"Organization {org} not found")
        return {"creditsRemaining": found.credits_remaining, "ledgerSum": found.ledger_sum}

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, f"{org}: {result['creditsRemaining']} credits (ledger sum {result['ledgerSum']})")


@admin.command("suspend-org")
def suspend_org(org: Annotated[str, typer.Option(help="Organisation id.")], as_json: JsonFlag = False) -> None:
    """Suspend an organisation: its generations answer 403 ORG_SUSPENDED and charge nothing; reads still work."""
    from grokgate.orgs import service as orgs

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await orgs.set_suspended(session, org, suspended=True)
        return {"id": row.id, "suspended": True}

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, f"{org} suspended")


@admin.command("resume-org")
def resume_org(org: Annotated[str, typer.Option(help="Organisation id.")], as_json: JsonFlag = False) -> None:
    """Resume a suspended organisation."""
    from grokgate.orgs import service as orgs

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await orgs.set_suspended(session, org, suspended=False)
        return {"id": row.id, "suspended": False}

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, f"{org} resumed")


@admin.command("create-operator-token")
def create_operator_token(
    scope: Annotated[str, typer.Option(help="read (look) or write (look and change).")],
    name: Annotated[str | None, typer.Option(help="What it is for, e.g. billing-webhook.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a token of the admin HTTP API (/admin/api/v1); printed once, stored as a hash."""
    from grokgate.admin import tokens

    async def work(session: AsyncSession) -> dict[str, Any]:
        row, secret = await tokens.create_token(session, scope, name)
        return {"id": row.id, "token": secret, "scope": row.scope, "name": row.name}

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, f"{result['id']}  {result['token']}  ({result['scope']}, shown only once)")


@admin.command("revoke-operator-token")
def revoke_operator_token(
    token_id: Annotated[str, typer.Option(help="Token id (opt_...).")], as_json: JsonFlag = False
) -> None:
    """Revoke an operator token at once."""
    from grokgate.admin import tokens

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await tokens.revoke_token(session, token_id)
        return {"id": row.id, "revoked": True}

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, f"{result['id']} revoked")


@admin.command("list-operator-tokens")
def list_operator_tokens(as_json: JsonFlag = False) -> None:
    """Operator tokens (never their secrets), oldest first."""
    from grokgate.admin import tokens

    async def work(session: AsyncSession) -> dict[str, Any]:
        rows = await tokens.list_tokens(session)
        return {
            "tokens": [
                {
                    "id": row.id,
                    "scope": row.scope,
                    "name": row.name,
                    "createdAt": row.created_at.isoformat(),
                    "revoked": row.revoked_at is not None,
                }
                for row in rows
            ]
        }

    result = run(in_transaction(settings_from_env(), work))
    lines = [
        f"{t['id']}  {t['scope']}  {t['name'] or ''}{'  revoked' if t['revoked'] else ''}" for t in result["tokens"]
    ]
    emit(as_json, result, "\n".join(lines) or "no operator tokens")


@admin.command("create-operator")
def create_operator(
    email: Annotated[str, typer.Option(help="The operator's sign-in email for the console at /admin.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create an operator account of the operator console (/admin); the password is prompted for (or read from
    stdin), never taken as an argument, so it stays out of the shell history."""
    import sys

    from grokgate.accounts import operators, passwords
    from grokgate.accounts.service import normalise_email

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:  # refused before the database is opened
        normalise_email(email)
        passwords.check_new(password)
    except ApiError as exc:
        raise CliError(exc.message) from None

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await operators.create_operator(session, email, password)
        return {"id": row.id, "email": row.email}

    result = run(in_transaction(settings_from_env(), work))
    emit(as_json, result, f"operator {result['email']} created ({result['id']}); sign in at /admin/login")
