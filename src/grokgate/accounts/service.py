"""Customer accounts: sign-up (open, by invitation, or off), sign-in, the member behind a session cookie, password
change, and inviting people into an organisation. Organisations themselves are made by `orgs.service`."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.accounts import passwords, repository, sessions
from grokgate.accounts.models import Invitation, Member, Membership
from grokgate.db.base import new_id, utcnow
from grokgate.errors import ApiError, invalid_input
from grokgate.orgs import service as orgs
from grokgate.orgs.scopes import ALL_SCOPES
from grokgate.orgs.service import Caller

KIND = "member"
"""The session kind of customer members."""
INVITATION_TTL = timedelta(days=7)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def normalise_email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise invalid_input("email: not an email address", "email")
    return email


@dataclass(frozen=True)
class MemberContext:
    """Who a session cookie belongs to, and the organisation it is looking at, as API routes' `Caller` too."""

    member_id: str
    email: str
    org_id: str
    org_name: str
    role: str
    csrf_token: str
    caller: Caller


async def _new_member(session: AsyncSession, email: str, password: str) -> Member:
    if await repository.member_by_email(session, email) is not None:
        raise ApiError(
            409, "EMAIL_TAKEN", "email: an account with this address exists; sign in instead", {"field": "email"}
        )
    member = Member(id=new_id("mem"), email=email, password_hash=await passwords.hash_password(password))
    session.add(member)
    await session.flush()
    return member


async def sign_up(
    session: AsyncSession, email: str, password: str, org_name: str, *, credits: int = 0
) -> tuple[Member, str]:
    """A new member owning a new organisation; returns the member and the organisation's id."""
    email = normalise_email(email)
    passwords.check_new(password)
    if not org_name.strip():
        raise invalid_input("organization: must not be empty", "organization")
    member = await _new_member(session, email, password)
    org = await orgs.create_org(session, org_name.strip()[:200], credits)
    session.add(Membership(member_id=member.id, org_id=org.id, role="owner"))
    return member, org.id


async def create_member(session: AsyncSession, org_id: str, email: str, password: str, role: str = "owner") -> Member:
    """A member of an existing organisation (the demo, an operator's command)."""
    await orgs.get_org(session, org_id)
    member = await _new_member(session, normalise_email(email), passwords.check_new(password))
    session.add(Membership(member_id=member.id, org_id=org_id, role=role))
    return member


class _Account(Protocol):
    password_hash: str


AccountT = TypeVar("AccountT", bound=_Account)


async def checked_password(
    find: Callable[[str], Awaitable[AccountT | None]], email: str, password: str
) -> AccountT | None:
    """The account `find` gives for this email when the password is its own, else None, for members and operators
    alike: as slow for an unknown email as a known one, and a hash made with older parameters is made anew."""
    try:
        email = normalise_email(email)
    except ApiError:
        email = ""
    account = await find(email) if email else None
    if not await passwords.verify_password(account.password_hash if account else None, password):
        return None
    assert account is not None
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = await passwords.hash_password(password)
    return account


async def authenticate(session: AsyncSession, email: str, password: str) -> Member | None:
    """The member whose email and password these are, or None."""
    return await checked_password(lambda found: repository.member_by_email(session, found), email, password)


async def sign_in(session: AsyncSession, member: Member, *, ttl: timedelta) -> str:
    """A session for the member, on their first organisation; the cookie's token."""
    found = await repository.organisations_of(session, member.id)
    if not found:
        raise ApiError(403, "NO_ORGANIZATION", "This account belongs to no organisation")
    _, token = await sessions.open_session(session, KIND, member.id, ttl=ttl, org_id=found[0][0].id)
    return token


async def context_of(session: AsyncSession, token: str | None) -> MemberContext | None:
    """The member a cookie's token signs in, while the session lives and the membership stands."""
    row = await sessions.find(session, token, KIND)
    if row is None or row.org_id is None:
        return None
    membership = await repository.membership(session, row.subject_id, row.org_id)
    member = await session.get(Member, row.subject_id)
    if membership is None or member is None:
        return None
    org = await orgs.get_org(session, row.org_id)
    return MemberContext(
        member_id=member.id,
        email=member.email,
        org_id=org.id,
        org_name=org.name,
        role=membership.role,
        csrf_token=row.csrf_token,
        caller=Caller(org_id=org.id, key_id="", scopes=frozenset(ALL_SCOPES), plan=org.plan),
    )


async def switch(session: AsyncSession, token: str, org_id: str) -> None:
    """Look at another of the member's organisations; 404 for one they do not belong to."""
    row = await sessions.find(session, token, KIND)
    if row is None or await repository.membership(session, row.subject_id, org_id) is None:
        raise ApiError(404, "NOT_FOUND", f"Organization {org_id} not found", {"orgId": org_id})
    row.org_id = org_id


async def change_password(session: AsyncSession, member_id: str, current: str, new: str, *, token: str) -> None:
    """Needs the current password; ends every other session of the member (a thief's included)."""
    member = await session.get(Member, member_id)
    if member is None or not await passwords.verify_password(member.password_hash, current):
        raise invalid_input("current_password: does not match", "current_password")
    passwords.check_new(new, "new_password")
    member.password_hash = await passwords.hash_password(new)
    await sessions.revoke_all(session, KIND, member_id, keep=token)


def _invitation_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def invite(session: AsyncSession, org_id: str, inviter_id: str, email: str) -> tuple[Invitation, str]:
    """An invitation for `email` to join `org_id`; the token for its link is returned once."""
    email = normalise_email(email)
    existing = await repository.member_by_email(session, email)
    if existing is not None and await repository.membership(session, existing.id, org_id) is not None:
        raise ApiError(409, "ALREADY_MEMBER", f"email: {email} is a member already", {"field": "email"})
    token = secrets.token_urlsafe(32)
    row = Invitation(
        id=new_id("inv"),
        org_id=org_id,
        email=email,
        token_hash=_invitation_hash(token),
        invited_by=inviter_id,
        expires_at=utcnow() + INVITATION_TTL,
    )
    session.add(row)
    return row, token


async def invitation(session: AsyncSession, token: str) -> Invitation | None:
    """The open invitation a link's token names, or None (unknown, used, or expired)."""
    if not token or len(token) > 128:
        return None
    row = await repository.invitation_by_hash(session, _invitation_hash(token))
    if row is None or row.accepted_at is not None or row.expires_at <= utcnow():
        return None
    return row


async def accept(session: AsyncSession, token: str, *, member_id: str | None, password: str | None) -> Member:
    """Join the invitation's organisation: as the signed-in member whose email it names, or as a new account
    with `password`. The invitation works once."""
    row = await invitation(session, token)
    if row is None:
        raise ApiError(404, "INVITATION_NOT_FOUND", "This invitation is unknown, used or expired")
    member = await repository.member_by_email(session, row.email)
    if member is None:
        if password is None:
            raise invalid_input("password: required to create the account", "password")
        member = await _new_member(session, row.email, passwords.check_new(password))
    elif member.id != member_id:
        raise ApiError(403, "SIGN_IN_REQUIRED", f"Sign in as {row.email} to accept this invitation")
    if await repository.membership(session, member.id, row.org_id) is None:
        session.add(Membership(member_id=member.id, org_id=row.org_id, role="member"))
    row.accepted_at = utcnow()
    return member


async def open_session_for(session: AsyncSession, member: Member, org_id: str, *, ttl: timedelta) -> str:
    _, token = await sessions.open_session(session, KIND, member.id, ttl=ttl, org_id=org_id)
    return token
