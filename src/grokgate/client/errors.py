"""The exceptions the SDK raises: one class per kind of answer, each carrying the HTTP status, grokgate's `code`
and its `details`, so a caller can branch on a type (`except InsufficientCredits`) or on the code it documents.

`str(error)` is one line a person can act on, `402 INSUFFICIENT_CREDITS: 3 credits left, 150 needed`, which is
what the CLI prints.
"""

from __future__ import annotations

from typing import Any

from grokgate.client.models import Job


class GrokgateError(Exception):
    """Base of everything the SDK raises on purpose."""


class ConnectionFailed(GrokgateError):
    """The gateway could not be reached, or the connection broke, and retrying did not help."""


class WaitTimeout(GrokgateError):
    """`wait(timeout=...)` ran out before the job ended; `job` is the last state seen (the job goes on running)."""

    def __init__(self, job: Job, timeout: float) -> None:
        super().__init__(f"job {job.id} is still {job.status} after {timeout:g} s")
        self.job = job
        self.timeout = timeout


class JobFailed(GrokgateError):
    """A job ended without a result (failed or cancelled; its credits were refunded) where one was needed."""

    def __init__(self, job: Job) -> None:
        code = job.error.code if job.error else job.status.upper()
        message = job.error.message if job.error else f"job {job.id} was {job.status}"
        super().__init__(f"{code}: {message} (job {job.id}, {job.credits_refunded or 0} credits refunded)")
        self.job = job
        self.code = code


class JobNotFinished(GrokgateError):
    """A result was asked for while the job is still pending or processing: wait for it first."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} is still {job.status}: wait for it first")
        self.job = job


class ApiError(GrokgateError):
    """The gateway answered with an error body `{"error", "code", "details"}`."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    @property
    def summary(self) -> str:
        """The human part of the one-line form; subclasses that know their details say it shorter."""
        return self.message

    @property
    def job_id(self) -> str | None:
        """The job an error is about, when the gateway says (a failed generation is refunded: `details.jobId`)."""
        value = self.details.get("jobId")
        return value if isinstance(value, str) else None

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.summary}"


class BadRequest(ApiError):
    """400: a field is wrong (`details.field` names it) or xAI refused the request (`UPSTREAM_REJECTED`)."""


class AuthenticationFailed(ApiError):
    """401: the API key is missing, malformed, unknown, revoked or expired."""


class InsufficientCredits(ApiError):
    """402: the organisation's balance does not cover the price; nothing was charged."""

    @property
    def credits_required(self) -> int | None:
        """What the request would have cost."""
        value = self.details.get("creditsRequired")
        return value if isinstance(value, int) else None

    @property
    def credits_remaining(self) -> int | None:
        """The balance when the request was refused."""
        value = self.details.get("creditsRemaining")
        return value if isinstance(value, int) else None

    @property
    def summary(self) -> str:
        if self.credits_required is None or self.credits_remaining is None:
            return self.message
        return f"{self.credits_remaining} credits left, {self.credits_required} needed"


class PermissionDenied(ApiError):
    """403: the key lacks the scope this call needs (`INSUFFICIENT_SCOPE`), or a media link is not valid."""


class NotFound(ApiError):
    """404: no such job (or another organisation's), path or stored media."""


class Conflict(ApiError):
    """409: the job is no longer in a state that allows this (`JOB_NOT_CANCELLABLE`)."""


class Gone(ApiError):
    """410: the media was deleted after the retention period (`MEDIA_EXPIRED`)."""


class UnprocessableRequest(ApiError):
    """422: e.g. `IDEMPOTENCY_KEY_REUSED`, one Idempotency-Key sent with two different bodies."""


class RateLimited(ApiError):
    """429: over a plan limit (requests per window, jobs in flight, held clients); nothing was charged."""

    @property
    def retry_after(self) -> float | None:
        """Seconds the gateway asked to wait before trying again (`Retry-After`)."""
        hinted = retry_after_seconds(self.headers)
        if hinted is not None:
            return hinted
        value = self.details.get("retryAfter")
        return float(value) if isinstance(value, int | float) else None


class ServerError(ApiError):
    """5xx: a fault on the gateway's or xAI's side. A generation that failed this way was refunded."""


class UpstreamError(ServerError):
    """502: xAI failed or answered nonsense (`UPSTREAM_ERROR`); the job failed and was refunded."""


class ServiceUnavailable(ServerError):
    """503: the gateway cannot serve now (database, storage or rate limiter away, too busy); retry later."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    402: InsufficientCredits,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: UnprocessableRequest,
    429: RateLimited,
    502: UpstreamError,
    503: ServiceUnavailable,
}


def retry_after_seconds(headers: dict[str, str]) -> float | None:
    """`Retry-After` in seconds when it is a number (grokgate sends whole seconds); None when absent or a date."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)


def error_from(status: int, body: Any, headers: dict[str, str]) -> ApiError:
    """The exception for an error answer; a body that is not grokgate's shape still gives a typed error."""
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        code = body["code"]
        message = str(body.get("error") or code)
        found = body.get("details")
        details: dict[str, Any] = found if isinstance(found, dict) else {}
    else:
        code = "HTTP_ERROR"
        message = f"HTTP {status}" + (f": {str(body)[:200]}" if body else "")
        details = {}
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return cls(status, code, message, details, headers)
