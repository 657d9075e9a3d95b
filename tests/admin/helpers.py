"""What the admin tests share: operator tokens made as the CLI makes them, and keys with spend caps."""

from __future__ import annotations

from grokgate.admin import tokens
from grokgate.billing.caps import Caps
from grokgate.db.engine import Database
from grokgate.orgs import service as orgs
from tests.support import Tenant


async def operator_headers(db_url: str, scope: str = "write") -> dict[str, str]:
    db = Database(db_url)
    try:
        async with db.transaction() as session:
            _, secret = await tokens.create_token(session, scope, f"test-{scope}")
        return {"Authorization": f"Bearer {secret}"}
    finally:
        await db.dispose()


async def capped_key(db_url: str, org_id: str, *, daily: int | None = None, monthly: int | None = None) -> Tenant:
    db = Database(db_url)
    try:
        async with db.transaction() as session:
            row, secret = await orgs.create_key(session, org_id, caps=Caps(daily=daily, monthly=monthly))
        return Tenant(org_id=org_id, key=secret, key_id=row.id)
    finally:
        await db.dispose()
