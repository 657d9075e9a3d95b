"""What an API key may do. A key without a scope a route needs gets 403 `INSUFFICIENT_SCOPE`."""

from __future__ import annotations

from grokgate.errors import ApiError

GENERATE = "generate"
JOBS_READ = "jobs:read"
JOBS_WRITE = "jobs:write"
ACCOUNT_READ = "account:read"
ALL_SCOPES = (GENERATE, JOBS_READ, JOBS_WRITE, ACCOUNT_READ)
ALL_SCOPES_TEXT = " ".join(ALL_SCOPES)


def parse_scopes(text: str) -> frozenset[str]:
    """`generate,jobs:read` or `generate jobs:read` -> the set; unknown names are refused."""
    names = {part for part in text.replace(",", " ").split() if part}
    unknown = names - set(ALL_SCOPES)
    if unknown or not names:
        raise ApiError(
            400,
            "INVALID_INPUT",
            f"scopes: unknown {sorted(unknown)}; choose from {', '.join(ALL_SCOPES)}"
            if unknown
            else "scopes: at least one is required",
            {"field": "scopes"},
        )
    return frozenset(names)


def require(granted: frozenset[str], needed: str) -> None:
    if needed not in granted:
        raise ApiError(403, "INSUFFICIENT_SCOPE", f"This API key lacks the '{needed}' scope", {"required": needed})
