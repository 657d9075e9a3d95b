"""The ledger table: one row per credit movement, never updated or deleted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from grokgate.db.base import Base, UTCDateTime, utcnow


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    """`grant`, `charge`, `refund` or `removal` (credits an operator took away)."""
    amount: Mapped[int] = mapped_column(Integer)
    """Signed: grants and refunds are positive, charges negative."""
    movement_key: Mapped[str] = mapped_column(String(80), unique=True)
    """Unique per movement (`charge:<job>`, `refund:<job>`, `grant:<id>`, `removal:<id>`): the database itself refuses a
    second charge or refund of one job, whatever the code above it does."""
    job_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    note: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KeySpend(Base):
    """What one capped API key spent in one UTC day (`2026-11-26`) or month (`2026-11`).

    The charge adds to it with a conditional UPDATE (`spent + price <= cap`) in the charge's own transaction, and a
    refund takes its amount off the windows the charge was counted in, so concurrent requests cannot pass a cap
    together and a refunded job does not use it up."""

    __tablename__ = "key_spend"
    __table_args__ = (CheckConstraint("spent >= 0", name="spent_not_negative"),)

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    spent: Mapped[int] = mapped_column(Integer, default=0)
