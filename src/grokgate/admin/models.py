"""Tables of the admin API: operator tokens, and the answers to its writes by their client-chosen ids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from grokgate.db.base import Base, UTCDateTime, utcnow


class OperatorToken(Base):
    """A bearer token of the admin API. Only its SHA-256 is kept, as for API keys; revoking it is immediate."""

    __tablename__ = "operator_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(8))
    """`read` (look) or `write` (look and change)."""
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AdminWrite(Base):
    """One admin write by its client-chosen id, with the answer it got: a repeat (a payment webhook delivered
    twice) gets that answer again and changes nothing. Written in the write's own transaction."""

    __tablename__ = "admin_writes"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of method, path and body: the same id with another request is refused."""
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
