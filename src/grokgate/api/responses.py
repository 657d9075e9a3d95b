"""What each route may answer besides success, written once for the OpenAPI document.

Every error has one body (`ErrorBody`). A route lists the statuses it can give with `errors(...)`; routers of
authenticated routes add `AUTHENTICATED`: the key (401), its scope (403), the plan's limits (429), and the database
being away (503), which every such route can meet before it does anything of its own. FastAPI adds a 422 with its
own validation body to any route with parameters; this API answers bad input with 400 in the common shape instead,
so `document()` takes that 422 out, and the document promises only what the server sends.

Bodies that a route reads itself (after authentication, so a bad key is 401 before a bad body is 400) are declared
with `json_body(Model)`: the model goes into the document's components like any other, so its nested models are
referenced from there rather than from `$defs` that no OpenAPI tool can resolve.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

_COMPONENTS = "#/components/schemas/{model}"
_BODIES: list[type[BaseModel]] = []


class ErrorBody(BaseModel):
    error: str
    code: str
    details: dict[str, Any] = Field(default_factory=dict)


_CODES = {
    400: "INVALID_INPUT, INVALID_URL or UPSTREAM_REJECTED",
    401: "MISSING_AUTH, INVALID_FORMAT, KEY_NOT_FOUND, KEY_REVOKED or KEY_EXPIRED",
    402: "INSUFFICIENT_CREDITS",
    403: "INSUFFICIENT_SCOPE",
    404: "JOB_NOT_FOUND",
    409: "JOB_NOT_CANCELLABLE or IDEMPOTENCY_IN_PROGRESS",
    410: "MEDIA_EXPIRED",
    413: "PAYLOAD_TOO_LARGE",
    416: "RANGE_NOT_SATISFIABLE",
    422: "IDEMPOTENCY_KEY_REUSED",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR (a fault of ours while the job ran: the job failed and was refunded; details.jobId)",
    502: "UPSTREAM_ERROR (xAI failed, timed out or answered nonsense; with details.jobId once a job existed)",
    503: "SERVICE_UNAVAILABLE (the database is unreachable; retry after Retry-After), RATE_LIMITER_UNAVAILABLE "
    "(Redis is down and rate limiting is set to fail closed), STORAGE_UNAVAILABLE (the result could not be stored; "
    "the job was refunded) or SERVER_BUSY (this server holds as many waiting clients as it may)",
}


def errors(*statuses: int, says: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses; `says` replaces the usual codes where a route differs."""
    words = {**_CODES, **(says or {})}
    return {status: {"model": ErrorBody, "description": words[status]} for status in statuses}


AUTHENTICATED = errors(401, 403, 429, 503)


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads a required JSON body of `model` itself."""
    _BODIES.append(model)
    schema = {"$ref": _COMPONENTS.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def document(app: FastAPI) -> None:
    """Serve the app's OpenAPI document without the framework's 422 responses (see the module's docstring)."""
    build: Callable[[], dict[str, Any]] = app.openapi
    finished: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if finished:
            return finished[0]
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                framework = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
                if framework.get("$ref", "").endswith("/HTTPValidationError"):
                    del responses["422"]
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        if _BODIES:
            _, bodies = models_json_schema([(model, "validation") for model in _BODIES], ref_template=_COMPONENTS)
            components.update(bodies.get("$defs", {}))
        finished.append(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
