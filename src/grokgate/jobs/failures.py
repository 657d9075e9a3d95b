"""What every way a job can break means: how it ends (`states.Fail`) and what the client is told (`ApiError`).

One table for the request path, so that any exception raised while a job runs, foreseen or not, ends the job at
once with a refund and answers a documented code carrying the `jobId`. Plain functions over exception types; the
exceptions themselves are plain classes of `upstream.base` and `storage.stored`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import InterfaceError, OperationalError

from grokgate.errors import ApiError
from grokgate.jobs import states
from grokgate.storage.stored import MediaGone, MediaRejected, MediaUnavailable, StorageFailed
from grokgate.upstream.base import (
    NoUpstreamKey,
    UpstreamBusy,
    UpstreamError,
    UpstreamKeyRefused,
    UpstreamRejected,
    UpstreamWithheld,
)


@dataclass(frozen=True)
class Failure:
    ending: states.Fail
    status: int
    code: str
    message: str
    upstream_code: str | None = None
    retry_after: int | None = None

    def error(self, job_id: str) -> ApiError:
        details: dict[str, object] = {"jobId": job_id}
        if self.upstream_code is not None:
            details["upstreamCode"] = self.upstream_code
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return ApiError(self.status, self.code, self.message, details, headers=headers)


def failure_of(exc: BaseException) -> Failure:
    """How a job that raised `exc` ends, and the answer its request gets."""
    if isinstance(exc, UpstreamRejected):
        code = "CONTENT_MODERATED" if isinstance(exc, UpstreamWithheld) else "UPSTREAM_REJECTED"
        return Failure(
            states.Fail(code, exc.message, exc.cost_in_usd_ticks),
            400,
            "UPSTREAM_REJECTED",
            exc.message,
            upstream_code=exc.code,
        )
    if isinstance(exc, UpstreamBusy):
        wait = max(1, round(exc.retry_after))
        message = f"Every xAI key is at its rate limit; the job was refunded. Retry in {wait} s"
        return Failure(states.Fail("UPSTREAM_BUSY", str(exc)), 503, "UPSTREAM_BUSY", message, retry_after=wait)
    if isinstance(exc, NoUpstreamKey):
        message = "No xAI key is available to this gateway; the job was refunded"
        return Failure(
            states.Fail("UPSTREAM_UNAVAILABLE", str(exc)), 503, "UPSTREAM_UNAVAILABLE", message, retry_after=30
        )
    if isinstance(exc, UpstreamKeyRefused):
        message = f"xAI refused the gateway's key: {exc}"
        return Failure(states.Fail("UPSTREAM_KEY_REFUSED", str(exc)), 502, "UPSTREAM_ERROR", message)
    if isinstance(exc, UpstreamError):
        return Failure(states.Fail("UPSTREAM_ERROR", str(exc)), 502, "UPSTREAM_ERROR", f"xAI failed: {exc}")
    if isinstance(exc, MediaUnavailable):
        code = "RESULT_GONE" if isinstance(exc, MediaGone) else "RESULT_UNAVAILABLE"
        message = f"xAI's result could not be fetched: {exc}"
        return Failure(states.Fail(code, message), 502, "UPSTREAM_ERROR", message)
    if isinstance(exc, MediaRejected):
        message = f"xAI's result is unusable: {exc}"
        return Failure(states.Fail("RESULT_INVALID", message), 502, "UPSTREAM_ERROR", message)
    if isinstance(exc, StorageFailed):
        message = "The result could not be stored; the job was refunded. Retry shortly"
        return Failure(states.Fail("STORAGE_UNAVAILABLE", str(exc)), 503, "STORAGE_UNAVAILABLE", message, retry_after=5)
    if isinstance(exc, OperationalError | InterfaceError | ConnectionError):
        message = "The database became unavailable while the job ran; retry shortly"
        return Failure(
            states.Fail("SERVICE_UNAVAILABLE", repr(exc)[:300]), 503, "SERVICE_UNAVAILABLE", message, retry_after=1
        )
    message = "The job failed on an internal error; it was refunded"
    return Failure(states.Fail("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}"[:500]), 500, "INTERNAL_ERROR", message)
