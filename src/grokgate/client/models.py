"""What the gateway answers, as typed objects: jobs, pages of them, the balance, ledger entries, the catalogue.

Attributes are snake_case; the wire's camelCase names are aliases. Fields the gateway adds later are kept
(`model_extra`), so an older SDK still reads a newer server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["pending", "processing", "completed", "failed", "cancelled"]
TERMINAL: tuple[str, ...] = ("completed", "failed", "cancelled")


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow", frozen=True)


class JobError(_Wire):
    """Why a job failed: a stable `code` (`UPSTREAM_REJECTED`, `RESULT_GONE`, ...) and a message."""

    code: str
    message: str


class Job(_Wire):
    """A generation job as `GET /api/v1/jobs/{id}` shows it."""

    id: str
    status: JobStatus
    output: dict[str, Any] | None = None
    credits_charged: int = Field(default=0, alias="creditsCharged")
    credits_refunded: int | None = Field(default=None, alias="creditsRefunded")
    error: JobError | None = None
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    progress: int | None = None
    """xAI's progress percentage of a running video, when the gateway reports it."""

    @property
    def done(self) -> bool:
        """The job has ended: completed, failed or cancelled."""
        return self.status in TERMINAL

    @property
    def result_urls(self) -> list[str]:
        """Signed links to the results (images, or the video), empty until completed."""
        urls = (self.output or {}).get("resultUrls")
        return [url for url in urls if isinstance(url, str)] if isinstance(urls, list) else []

    @property
    def video_url(self) -> str | None:
        """Signed link to the finished video."""
        value = (self.output or {}).get("videoUrl")
        return value if isinstance(value, str) else None

    @property
    def thumbnail_url(self) -> str | None:
        """Signed link to the video's JPEG poster frame."""
        value = (self.output or {}).get("thumbnailUrl")
        return value if isinstance(value, str) else None

    @property
    def duration(self) -> float | None:
        """Length of the finished video in seconds."""
        value = (self.output or {}).get("duration")
        return float(value) if isinstance(value, int | float) else None


class JobPage(_Wire):
    """One page of `GET /api/v1/jobs`, newest first."""

    jobs: list[Job]
    total: int
    limit: int
    offset: int


class Balance(_Wire):
    """The organisation and what it has left (`GET /api/v1/organization`)."""

    id: str
    name: str
    plan: str
    credits_remaining: int = Field(alias="creditsRemaining")


class LedgerEntry(_Wire):
    """One credit movement: `grant` (positive), `charge` (negative) or `refund` (positive) of a job."""

    id: int
    kind: str
    amount: int
    job_id: str | None = Field(default=None, alias="jobId")
    note: str | None = None
    created_at: datetime | None = Field(default=None, alias="createdAt")


class LedgerPage(_Wire):
    """One page of `GET /api/v1/ledger`, newest first."""

    entries: list[LedgerEntry]
    total: int
    limit: int
    offset: int


class SubModel(_Wire):
    """One sub-model the gateway sells (`GET /api/v1/models`): its fields, ranges and price rule."""

    id: str
    kind: str
    description: str = ""
    fields: dict[str, dict[str, Any]] = Field(default_factory=dict)
    price: dict[str, Any] = Field(default_factory=dict)


class Quote(_Wire):
    """What a request would cost (`POST /api/v1/quote`), computed as the charge is, with nothing charged."""

    model: str
    kind: str
    credits_charged: int = Field(alias="creditsCharged")
    credits_remaining: int = Field(alias="creditsRemaining")
    input: dict[str, Any] = Field(default_factory=dict)


class GeneratedImages(_Wire):
    """The answer to an image generation: its job, the price, and signed links to every image."""

    job_id: str = Field(alias="jobId")
    status: str
    credits_charged: int = Field(alias="creditsCharged")
    image_url: str = Field(alias="imageUrl")
    result_urls: list[str] = Field(alias="resultUrls")
    replayed: bool = False
    """True when the gateway answered from an earlier request with the same Idempotency-Key (nothing charged)."""
