"""The admin writes that move credits, as one piece of work each, shared by the admin API and the operator
console: both run them through `writes.run_once` under a client-chosen id, with the same fingerprint, so a grant
is made once whichever door it came through and however often it is sent."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.admin.writes import Work
from grokgate.billing import ledger
from grokgate.idempotency.service import fingerprint
from grokgate.orgs import service as orgs

PREFIX = "/admin/api/v1"


def grant_digest(org_id: str, credits: int, reason: str) -> str:
    """The fingerprint the admin API gives `POST /orgs/{id}/credits/grants` with this body (the id left out)."""
    return fingerprint("POST", f"{PREFIX}/orgs/{org_id}/credits/grants", {"credits": credits, "reason": reason})


def removal_digest(org_id: str, credits: int, reason: str) -> str:
    """The fingerprint the admin API gives `POST /orgs/{id}/credits/removals` with this body (the id left out)."""
    return fingerprint("POST", f"{PREFIX}/orgs/{org_id}/credits/removals", {"credits": credits, "reason": reason})


def grant(org_id: str, credits: int, reason: str, key: str | None) -> Work:
    """Grant `credits` to the organisation: a ledger row named by the write's id, noted with the reason."""

    async def work(session: AsyncSession) -> tuple[int, dict[str, Any]]:
        await orgs.get_org(session, org_id)
        balance = await ledger.grant(session, org_id, credits, note=reason, reference=f"id:{key}")
        movement = {"orgId": org_id, "kind": "grant", "credits": credits, "reason": reason, "id": key}
        return 201, {**movement, "creditsRemaining": balance}

    return work


def remove(org_id: str, credits: int, reason: str, key: str | None) -> Work:
    """Take credits away (refused when the balance does not hold them): a negative ledger row."""

    async def work(session: AsyncSession) -> tuple[int, dict[str, Any]]:
        await orgs.get_org(session, org_id)
        balance = await ledger.remove(session, org_id, credits, reason, reference=f"id:{key}")
        movement = {"orgId": org_id, "kind": "removal", "credits": credits, "reason": reason, "id": key}
        return 201, {**movement, "creditsRemaining": balance}

    return work
