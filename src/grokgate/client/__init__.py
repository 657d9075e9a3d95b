"""The Python SDK of grokgate: `Client` (blocking) and `AsyncClient` (asyncio), with one shape.

    from grokgate.client import Client

    with Client() as client:  # GROKGATE_API_KEY / GROKGATE_BASE_URL, or what `grokgate login` saved
        image = client.images.generate("A lighthouse at dawn", aspect_ratio="16:9")
        image.save("lighthouse.png")
        video = client.videos.create("Slow dolly through a neon alley", duration=6)
        video.wait(on_progress=lambda job: print(job.status))
        video.download("alley.mp4")

It depends only on httpx, pydantic, platformdirs and standardwebhooks, never on the server's code.
"""

from grokgate.client.async_client import AsyncClient, AsyncImageResult, AsyncVideoJob
from grokgate.client.config import Credentials, MissingCredentials
from grokgate.client.errors import (
    ApiError,
    AuthenticationFailed,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Gone,
    GrokgateError,
    InsufficientCredits,
    JobFailed,
    JobNotFinished,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    UnprocessableRequest,
    UpstreamError,
    WaitTimeout,
)
from grokgate.client.models import Balance, Job, JobError, JobPage, LedgerEntry, LedgerPage, Quote, SubModel
from grokgate.client.operations import ImageOptions, ImageSource, ProgressCallback, VideoOptions, WaitOptions
from grokgate.client.sync_client import Client, ImageResult, VideoJob
from grokgate.client.webhooks import WebhookEvent, WebhookVerificationError, verify

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncImageResult",
    "AsyncVideoJob",
    "AuthenticationFailed",
    "BadRequest",
    "Balance",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Credentials",
    "Gone",
    "GrokgateError",
    "ImageOptions",
    "ImageResult",
    "ImageSource",
    "InsufficientCredits",
    "Job",
    "JobError",
    "JobFailed",
    "JobNotFinished",
    "JobPage",
    "LedgerEntry",
    "LedgerPage",
    "MissingCredentials",
    "NotFound",
    "PermissionDenied",
    "ProgressCallback",
    "Quote",
    "RateLimited",
    "ServerError",
    "ServiceUnavailable",
    "SubModel",
    "UnprocessableRequest",
    "UpstreamError",
    "VideoJob",
    "VideoOptions",
    "WaitOptions",
    "WaitTimeout",
    "WebhookEvent",
    "WebhookVerificationError",
    "verify",
]
