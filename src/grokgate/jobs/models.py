"""The jobs table: what was asked, what it cost, where it stands, and who is working on it right now."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from grokgate.db.base import Base, UTCDateTime, utcnow


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_org_created", "org_id", "created_at"),
        Index("ix_jobs_due", "status", "next_poll_at"),
        Index("ix_jobs_org_status", "org_id", "status"),
        # only the jobs being worked on (a few hundred at most): where the poller finds leases that ran out
        Index(
            "ix_jobs_leased",
            "lease_expires_at",
            postgresql_where=text("lease_expires_at IS NOT NULL"),
            sqlite_where=text("lease_expires_at IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    kind: Mapped[str] = mapped_column(String(8))
    """`image` or `video`."""
    model: Mapped[str] = mapped_column(String(32))
    """The seed's sub-model: `text-to-image`, `text-to-video`, `image-to-video`."""
    status: Mapped[str] = mapped_column(String(16))
    workflow: Mapped[str] = mapped_column(String(32), default="grok-imagine", server_default="grok-imagine")
    """Which POST made it: `grok-imagine` (the model endpoint), or `generate_image` / `generate_video`."""
    webhook_url: Mapped[str | None] = mapped_column(Text, default=None)
    request_id: Mapped[str | None] = mapped_column(String(100), default=None)
    key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    """The API key that paid for it: a refund gives that key's spend cap back."""
    """The id of the request that made the job: its polls and its end log under it too."""
    input: Mapped[dict[str, Any]] = mapped_column(JSON)
    credits_charged: Mapped[int] = mapped_column(Integer)
    credits_refunded: Mapped[int] = mapped_column(Integer, default=0)
    external_job_id: Mapped[str | None] = mapped_column(String(100), default=None)
    upstream_key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    """The upstream key that created xAI's request: the only one that may poll it (None: the install's one key)."""
    upstream_request: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    """A video queued for a key's pace: what to send xAI (inline images as `media:<id>`). Set only while queued."""
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    cost_in_usd_ticks: Mapped[int | None] = mapped_column(BigInteger, default=None)

    lease_owner: Mapped[str | None] = mapped_column(String(80), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """While set and in the future, one process owns the job (a request submitting it, or a poller polling it)."""
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    progress: Mapped[int | None] = mapped_column(Integer, default=None)
    """xAI's progress percentage of the video, as last polled."""
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """When xAI accepted the video (its request id recorded)."""
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """The last poll xAI answered "not yet": with `submitted_at`, a lower bound of how long the video took."""
    poll_count: Mapped[int] = mapped_column(Integer, default=0)
    poll_failures: Mapped[int] = mapped_column(Integer, default=0)
    """Polls in a row that got no answer from xAI; sets the back-off before the next one."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
