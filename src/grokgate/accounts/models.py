"""Tables of people who sign in: members, which organisations they belong to, their sessions, invitations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from grokgate.db.base import Base, UTCDateTime, utcnow


class Member(Base):
    """A person who signs in to the customer console; belongs to one or more organisations."""

    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    """Lower-cased and stripped, so one address is one account however it is typed."""
    password_hash: Mapped[str] = mapped_column(String(200))
    """argon2id, with its parameters inside the hash (re-hashed on login when they change)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Membership(Base):
    __tablename__ = "memberships"

    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16), default="member")
    """`owner` (made the organisation) or `member` (joined by invitation)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuthSession(Base):
    """A signed-in browser. Kept server-side so logging out (or a password change) ends it at once.

    `kind` says whose session it is (`member` or `operator`): `subject_id` is that person's id, and `org_id`
    the organisation a member is looking at (None for operators)."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_subject", "kind", "subject_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the cookie's token: a copy of the database does not sign anyone in."""
    kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(40))
    org_id: Mapped[str | None] = mapped_column(String(40), default=None)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Invitation(Base):
    """A link that lets one email address join an organisation, shown to the member who made it (no mail)."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Operator(Base):
    """A person who runs the business and signs in to the operator console (`/admin`). Not a member of any
    organisation: an operator's account lives in its own table, so no customer sign-in can ever become one."""

    __tablename__ = "operators"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
