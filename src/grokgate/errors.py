"""The one error type every domain raises toward the client, and the codes it may carry.

The wire shape is the seed provider's: `{"error": "<message naming the field>", "code": "<CODE>", "details": {}}`.
Domains raise `ApiError`; `api/errors.py` is the only place that turns it (and framework errors) into a response.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, "details": self.details}


def invalid_input(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "INVALID_INPUT", message, {"field": field} if field else None)


def job_not_found(job_id: str) -> ApiError:
    return ApiError(404, "JOB_NOT_FOUND", f"Job {job_id} not found", {"jobId": job_id})


def insufficient_credits(required: int, remaining: int) -> ApiError:
    return ApiError(
        402,
        "INSUFFICIENT_CREDITS",
        f"Insufficient credits: {required} required, {remaining} remaining",
        {"creditsRequired": required, "creditsRemaining": remaining},
    )


def org_suspended(org_id: str) -> ApiError:
    return ApiError(
        403,
        "ORG_SUSPENDED",
        "This organisation is suspended: it cannot start generations; ask the operator",
        {"orgId": org_id},
    )


def limit_exceeded(
    kind: str, limit: int, used: int, message: str, *, retry_after: int = 5, headers: dict[str, str] | None = None
) -> ApiError:
    """429 for a plan's limit of `kind` (a rate window, concurrent jobs, waiters): what it is, how much is used,
    and when to try again."""
    return ApiError(
        429,
        "RATE_LIMIT_EXCEEDED",
        message,
        {"retryAfter": retry_after, "limits": {"type": kind, "limit": limit, "used": used}},
        headers={"Retry-After": str(retry_after), **(headers or {})},
    )
