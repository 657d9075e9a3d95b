"""The interface every upstream implements, and the outcomes it reports in plain data.

Jobs depend on this module only. `XaiUpstream` speaks HTTP to whatever base URL it is given: real xAI, or the
sandbox (mounted on our own server or on its own port), so tests exercise the very client production uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol


class UpstreamError(Exception):
    """xAI could not give an answer (network, 5xx, rate limit after retries, our credentials): 502 to the client."""


class SubmitOutcomeUnknown(UpstreamError):
    """The submit may or may not have reached xAI; repeating it could start (and bill) a second generation."""


class UpstreamInvalid(UpstreamError):
    """xAI (or a proxy in front of it) answered something unusable: not JSON, no items, an item without a URL."""


class UpstreamRejected(Exception):
    """xAI refused this request on its merits (moderation, invalid argument): 400 to the client.

    xAI may still bill a refusal (a moderated image): `cost_in_usd_ticks` keeps what it charged, so the margin
    report stays true."""

    def __init__(self, message: str, code: str | None = None, cost_in_usd_ticks: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.cost_in_usd_ticks = cost_in_usd_ticks


class UpstreamWithheld(UpstreamRejected):
    """xAI made the images but withheld every one (`respect_moderation: false`): nothing to deliver."""


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    aspect_ratio: str | None = None
    image_url: str | None = None
    """When set, the request is an edit of this image (`POST /v1/images/edits`)."""
    model: str = "grok-imagine-image"
    images: tuple[str, ...] = ()
    """Several source images: a multi-image edit (`images` in xAI's body)."""
    n: int = 1
    resolution: str | None = None
    quality: str | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        return ((self.image_url,) if self.image_url else ()) + self.images


@dataclass(frozen=True)
class ImageResult:
    urls: list[str]
    """Where each delivered image is: xAI's temporary URL, or a `data:` URI when xAI sent the bytes inline."""
    cost_in_usd_ticks: int | None = None
    withheld: int = 0
    """Images xAI made but withheld by moderation: not delivered."""


@dataclass(frozen=True)
class VideoRequest:
    prompt: str | None
    duration: int | None
    aspect_ratio: str | None = None
    image_url: str | None = None
    model: str = "grok-imagine-video"
    operation: Literal["generate", "edit", "extend"] = "generate"
    """`generate` (`/v1/videos/generations`), `edit` (`/v1/videos/edits`) or `extend` (`/v1/videos/extensions`)."""
    video_url: str | None = None
    resolution: str | None = None


PollState = Literal["pending", "done", "failed", "expired", "moderated", "not_found"]


@dataclass(frozen=True)
class VideoPoll:
    state: PollState
    url: str | None = None
    duration: float | None = None
    progress: int | None = None
    cost_in_usd_ticks: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    raw: dict[str, object] = field(default_factory=dict)


class Upstream(Protocol):
    async def generate_image(self, request: ImageRequest) -> ImageResult: ...

    async def submit_video(self, request: VideoRequest) -> str:
        """Start a video; returns xAI's request id."""
        ...

    async def poll_video(self, request_id: str) -> VideoPoll: ...

    async def aclose(self) -> None: ...
