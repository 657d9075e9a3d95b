"""Operator tokens: their format, scopes, and the queries that make, revoke and check them.

A token reads `ggop_<id>_<secret>`. Its prefix is not an API key's (`gg_`), so a customer key presented to the
admin API is unknown there (401), and an operator token presented to the customer API is unknown there too. Only
the SHA-256 of a token is stored, as for API keys: the secret carries 190 bits, so a fast hash is enough.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.admin.models import OperatorToken
from grokgate.db.base import utcnow
from grokgate.errors import ApiError
from grokgate.orgs.keys import bearer_token, hash_key, matches

TOKEN_PREFIX = "ggop"  # noqa: S105 (a prefix, not a secret)
READ = "read"
WRITE = "write"
SCOPES = (READ, WRITE)


@dataclass(frozen=True)
class Operator:
    token_id: str
    scope: str

    def may(self, needed: str) -> bool:
        """`write` includes `read`."""
        return self.scope == WRITE or needed == READ


def token_id_of(token: str) -> str | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return f"opt_{parts[1]}"


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ApiError(400, "INVALID_INPUT", f"scope: must be {' or '.join(SCOPES)}", {"field": "scope"})
    return scope


async def create_token(session: AsyncSession, scope: str, name: str | None = None) -> tuple[OperatorToken, str]:
    """A new token; its clear secret is returned here once and never stored."""
    check_scope(scope)
    short = secrets.token_hex(8)
    secret = f"{TOKEN_PREFIX}_{short}_{secrets.token_urlsafe(24)}"
    row = OperatorToken(id=f"opt_{short}", secret_hash=hash_key(secret), scope=scope, name=name, created_at=utcnow())
    session.add(row)
    return row, secret


async def revoke_token(session: AsyncSession, token_id: str) -> OperatorToken:
    row = await session.get(OperatorToken, token_id)
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"Operator token {token_id} not found", {"tokenId": token_id})
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


async def list_tokens(session: AsyncSession) -> list[OperatorToken]:
    return list((await session.scalars(select(OperatorToken).order_by(OperatorToken.created_at))).all())


async def authenticate(session: AsyncSession, authorization: str | None) -> Operator:
    token = bearer_token(authorization)
    token_id = token_id_of(token)
    row = await session.get(OperatorToken, token_id) if token_id else None
    if row is None or not matches(token, row.secret_hash):
        raise ApiError(401, "TOKEN_NOT_FOUND", "Operator token not found (the admin API takes no API keys)")
    if row.revoked_at is not None:
        raise ApiError(401, "TOKEN_REVOKED", "Operator token has been revoked")
    return Operator(token_id=row.id, scope=row.scope)
