"""Every error leaves the server in one shape, `{"error", "code", "details"}`, including the framework's own."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from grokgate.errors import ApiError

log = structlog.get_logger(__name__)

_CODES_BY_STATUS = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}


def from_validation_errors(errors: list[Any]) -> ApiError:
    """Name the first offending field, in the seed's error shape; list them all in `details`."""
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    field = ".".join(location)
    kind = first.get("type", "")
    if kind == "json_invalid":
        return ApiError(400, "INVALID_INPUT", "Malformed JSON body", {"reason": str(first.get("msg", ""))})
    if not field:
        if kind == "missing":
            return ApiError(400, "INVALID_INPUT", "A JSON object body is required")
        return ApiError(400, "INVALID_INPUT", "The request body must be a JSON object")
    message = "is not an accepted field" if kind == "extra_forbidden" else str(first.get("msg", "is invalid"))
    code = "INVALID_URL" if kind == "invalid_url" else "INVALID_INPUT"
    problems = [
        {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg")} for e in errors
    ]
    return ApiError(400, code, f"{field}: {message}", {"field": field, "errors": problems})


def install(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | ValidationError)
        error = from_validation_errors(list(exc.errors()))
        return JSONResponse(error.body(), status_code=error.status)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _CODES_BY_STATUS.get(exc.status_code, "HTTP_ERROR")
        message = f"No route for {request.method} {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse(
            {"error": message, "code": code, "details": {}}, status_code=exc.status_code, headers=exc.headers
        )

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request.unhandled", error=repr(exc))
        return JSONResponse({"error": "Internal server error", "code": "INTERNAL_ERROR", "details": {}}, 500)

    async def database_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency.unavailable", error=repr(exc)[:300])
        return JSONResponse(
            {
                "error": "A service grokgate depends on is unavailable; retry shortly",
                "code": "SERVICE_UNAVAILABLE",
                "details": {},
            },
            status_code=503,
            headers={"Retry-After": "1"},
        )

    app.add_exception_handler(ApiError, api_error)
    for lost in (OperationalError, InterfaceError, ConnectionError, TimeoutError):
        app.add_exception_handler(lost, database_down)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
