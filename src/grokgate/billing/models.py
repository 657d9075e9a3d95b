"""The ledger table: one row per credit movement, never updated or deleted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from grokgate.db.base import Base, UTCDateTime, utcnow


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    """`grant`, `charge` or `refund`."""
    amount: Mapped[int] = mapped_column(Integer)
    """Signed: grants and refunds are positive, charges negative."""
    movement_key: Mapped[str] = mapped_column(String(80), unique=True)
    """Unique per movement (`charge:<job>`, `refund:<job>`, `grant:<id>`): the database itself refuses a
    second charge or refund of one job, whatever the code above it does."""
    job_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    note: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
