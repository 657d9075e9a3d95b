"""Operator accounts: made by `grokgate admin create-operator`, signed in to the operator console (`/admin`).

They share the customer console's machinery (argon2 passwords, server-side sessions with a CSRF token, the login
throttle) but nothing else: their own table, and sessions of their own kind, so a member's session is never an
operator's (nor the other way round), whichever cookie it is presented in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.accounts import passwords, sessions
from grokgate.accounts.models import Operator
from grokgate.accounts.service import checked_password, normalise_email
from grokgate.db.base import new_id
from grokgate.errors import ApiError

KIND = "operator"
"""The session kind of operators."""


@dataclass(frozen=True)
class OperatorContext:
    """Who an operator session cookie belongs to."""

    operator_id: str
    email: str
    csrf_token: str


async def by_email(session: AsyncSession, email: str) -> Operator | None:
    return (await session.scalars(select(Operator).where(Operator.email == email))).one_or_none()


async def create_operator(session: AsyncSession, email: str, password: str) -> Operator:
    email = normalise_email(email)
    passwords.check_new(password)
    if await by_email(session, email) is not None:
        raise ApiError(409, "EMAIL_TAKEN", f"email: an operator {email} exists already", {"field": "email"})
    row = Operator(id=new_id("op"), email=email, password_hash=await passwords.hash_password(password))
    session.add(row)
    await session.flush()
    return row


async def authenticate(session: AsyncSession, email: str, password: str) -> Operator | None:
    """The operator whose email and password these are, or None."""
    return await checked_password(lambda found: by_email(session, found), email, password)


async def sign_in(session: AsyncSession, operator: Operator, *, ttl: timedelta) -> str:
    _, token = await sessions.open_session(session, KIND, operator.id, ttl=ttl)
    return token


async def context_of(session: AsyncSession, token: str | None) -> OperatorContext | None:
    """The operator a cookie's token signs in, while the session lives and the account exists."""
    row = await sessions.find(session, token, KIND)
    if row is None:
        return None
    operator = await session.get(Operator, row.subject_id)
    if operator is None:
        return None
    return OperatorContext(operator_id=operator.id, email=operator.email, csrf_token=row.csrf_token)
