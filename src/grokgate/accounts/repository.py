"""The accounts tables' queries: members by email, memberships, invitations by token."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.accounts.models import Invitation, Member, Membership
from grokgate.orgs.models import Organization


async def member_by_email(session: AsyncSession, email: str) -> Member | None:
    return (await session.scalars(select(Member).where(Member.email == email))).one_or_none()


async def membership(session: AsyncSession, member_id: str, org_id: str) -> Membership | None:
    return await session.get(Membership, (member_id, org_id))


async def organisations_of(session: AsyncSession, member_id: str) -> list[tuple[Organization, str]]:
    """The member's organisations with their role, oldest membership first (the one a sign-in opens)."""
    rows = await session.execute(
        select(Organization, Membership.role)
        .join(Membership, Membership.org_id == Organization.id)
        .where(Membership.member_id == member_id)
        .order_by(Membership.created_at, Organization.id)
    )
    return [(org, role) for org, role in rows.all()]


async def members_of(session: AsyncSession, org_id: str) -> list[tuple[Member, str]]:
    rows = await session.execute(
        select(Member, Membership.role)
        .join(Membership, Membership.member_id == Member.id)
        .where(Membership.org_id == org_id)
        .order_by(Membership.created_at, Member.email)
    )
    return [(member, role) for member, role in rows.all()]


async def invitation_by_hash(session: AsyncSession, token_hash: str) -> Invitation | None:
    return (await session.scalars(select(Invitation).where(Invitation.token_hash == token_hash))).one_or_none()


async def open_invitations(session: AsyncSession, org_id: str) -> list[Invitation]:
    rows = await session.scalars(
        select(Invitation)
        .where(Invitation.org_id == org_id, Invitation.accepted_at.is_(None))
        .order_by(Invitation.created_at.desc())
    )
    return list(rows.all())


async def any_member(session: AsyncSession) -> Member | None:
    return (await session.scalars(select(Member).limit(1))).first()
