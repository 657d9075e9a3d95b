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


class UpstreamKeyRefused(UpstreamError):
    """xAI refused the key itself (invalid, no access, out of credit): nothing was taken, and no request made with
    this key will be until an operator puts it back. The pool takes it out of rotation and tries another."""


class UpstreamNotTaken(UpstreamError):
    """xAI answered 429 or 503: the request was not taken, so it may go again, through this key later or another
    key now. Raised instead of retrying when the client is one key of a pool, which knows the other keys."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NoUpstreamKey(UpstreamError):
    """No xAI key is in rotation (every one refused or disabled): 503 until an operator adds or restores one."""


class UpstreamBusy(UpstreamError):
    """Every key's pace is spoken for until past what this request may wait: 503 with `Retry-After`, refunded."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
    lane: str = ""
    """Whose request this is (the organisation): requests waiting for a key's pace take turns by lane."""

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
    lane: str = ""
    """Whose request this is (the organisation): requests waiting for a key's pace take turns by lane."""


@dataclass(frozen=True)
class Submission:
    """xAI took a video: its request id, and the key that created it (the only one that may poll it)."""

    request_id: str
    key_id: str | None = None


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
    @property
    def paces_videos(self) -> bool:
        """Whether video submissions wait for a key's pace (a pool with limits): if so, a video that finds no key
        free at once is queued as a row for the submitter instead of being sent from the request."""
        ...

    async def generate_image(self, request: ImageRequest) -> ImageResult: ...

    async def submit_video(self, request: VideoRequest, *, wait: bool = True) -> Submission | None:
        """Start a video. With `wait=False`, None when no key may take it right now (nothing was sent)."""
        ...

    async def poll_video(self, request_id: str, key_id: str | None = None) -> VideoPoll:
        """Ask about a video, through the key that created it (`key_id`; None: the default key)."""
        ...

    async def aclose(self) -> None: ...
