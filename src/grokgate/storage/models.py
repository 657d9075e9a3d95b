"""One row per stored result (or poster frame): where its bytes are and what they are."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from grokgate.db.base import Base, UTCDateTime, utcnow


class Media(Base):
    __tablename__ = "media"
    __table_args__ = (Index("ix_media_expiry", "deleted_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(40), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    role: Mapped[str] = mapped_column(String(16))
    """`image`, `video` or `poster`."""
    key: Mapped[str] = mapped_column(String(200), index=True)
    """Content-addressed object key (`ab/abcdef….png`): the same bytes are stored once."""
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    duration: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class MediaObject(Base):
    """One row per stored object: when an ingest last relied on it. The row is also the lock that the retention
    sweeper and an ingest take in turn on the same object (see `grokgate.storage.retention`)."""

    __tablename__ = "media_objects"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ServerSecret(Base):
    """Secrets the server makes for itself (the media link key), shared by every process through the database."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
