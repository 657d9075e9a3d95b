"""The upstream key pool's table: one row per xAI key the gateway may use, with its health and its pace.

Keys given in the environment (`XAI_API_KEY`, `XAI_API_KEYS`) get a row too, without their secret: the row is where
every process learns that xAI refused a key, and where the pace is counted when no Redis is configured. Keys an
operator adds with `grokgate admin upstream-key add` keep their secret here (xAI needs it verbatim, so it cannot be
hashed); it is never shown again, only its last four characters.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grokgate.db.base import Base, UTCDateTime, utcnow


class UpstreamKey(Base):
    __tablename__ = "upstream_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(8))
    """`env` (the secret lives in the environment) or `db` (added by an operator; the secret is below)."""
    secret: Mapped[str | None] = mapped_column(Text, default=None)
    hint: Mapped[str] = mapped_column(String(8), default="")
    """The secret's last four characters, to tell keys apart in listings."""
    status: Mapped[str] = mapped_column(String(16), default="active")
    """`active` (in rotation), `refused` (xAI refused it: invalid, no access, out of credit) or `disabled`."""
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    image_rps: Mapped[int | None] = mapped_column(Integer, default=None)
    video_rps: Mapped[int | None] = mapped_column(Integer, default=None)
    """This key's own pace, where the team it belongs to has another limit than the gateway's default."""
    image_next_at: Mapped[float] = mapped_column(Float, default=0.0)
    video_next_at: Mapped[float] = mapped_column(Float, default=0.0)
    """Unix time from which the next submit of that kind may go (the pace, when counted in the database)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
