"""Tables of organisations and their API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from grokgate.db.base import Base, UTCDateTime, utcnow
from grokgate.orgs.scopes import ALL_SCOPES_TEXT


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (CheckConstraint("credits_remaining >= 0", name="credits_not_negative"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    credits_remaining: Mapped[int] = mapped_column(Integer, default=0)
    """A cache of the ledger sum, moved in the same transaction as every ledger row; the ledger is the truth."""
    plan: Mapped[str] = mapped_column(String(40), default="default", server_default="default")
    webhook_secret: Mapped[str | None] = mapped_column(String(80), default=None)
    """Standard Webhooks signing secret (`whsec_...`); symmetric, so it is kept to sign with."""
    active_jobs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Its jobs `pending` or `processing`, kept by triggers on `jobs` (migration 0015): what the plan's concurrent
    limit is checked against, read under the charge's lock instead of counted on every opening."""
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """While set, the charge refuses every generation (403 `ORG_SUSPENDED`); reads still work."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(100), default=None)
    """What the customer calls it (`ci`, `laptop`), to tell keys apart on the console; optional."""
    secret_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the whole key. Keys carry 190 bits of randomness, so a fast hash is enough; no clear text kept."""
    scopes: Mapped[str] = mapped_column(String(200), default=ALL_SCOPES_TEXT, server_default=ALL_SCOPES_TEXT)
    """Space-separated scopes the key may use."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """Written at most once a minute per key and process, so that using a key is not a write per request."""
    daily_cap: Mapped[int | None] = mapped_column(Integer, default=None)
    monthly_cap: Mapped[int | None] = mapped_column(Integer, default=None)
    """Most credits the key may spend per UTC day / month (`billing/caps.py`); None: only the balance limits it."""
