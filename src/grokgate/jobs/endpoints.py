"""HTTP routes of the generation API. Thin: authenticate, validate, hand over to `JobService`, answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from grokgate.api.errors import from_validation_errors
from grokgate.api.state import services_of
from grokgate.jobs.schemas import ErrorBody, GenerateRequest, ImageCompleted, JobView, VideoAccepted
from grokgate.jobs.spec import build_spec
from grokgate.orgs.auth import CallerDep

router = APIRouter(prefix="/api/v1", tags=["grok-imagine"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "INVALID_INPUT, INVALID_URL or UPSTREAM_REJECTED",
        401: "MISSING_AUTH, INVALID_FORMAT, KEY_NOT_FOUND, KEY_REVOKED or KEY_EXPIRED",
        402: "INSUFFICIENT_CREDITS",
        502: "UPSTREAM_ERROR",
    }.items()
}


@router.post(
    "/models/grok-imagine",
    summary="Submit a Grok Imagine generation job (image or video)",
    description="Images answer 200 with the result. Videos answer 202 with a jobId: poll "
    "`GET /api/v1/jobs/{jobId}` until it is completed.",
    responses={
        200: {"model": ImageCompleted, "description": "Image generated"},
        202: {"model": VideoAccepted, "description": "Video job created"},
        **_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": GenerateRequest.model_json_schema()}},
        }
    },
)
async def generate(request: Request, caller: CallerDep) -> JSONResponse:
    # The body is read here, after authentication, so that a caller without a key learns that first.
    try:
        body = GenerateRequest.model_validate_json(await request.body() or b"null")
    except ValidationError as exc:
        raise from_validation_errors(list(exc.errors())) from None
    services = services_of(request)
    spec = build_spec(body, max_image_url_bytes=services.settings.max_image_url_bytes)
    if spec.kind == "image":
        return JSONResponse(await services.jobs.generate_image(caller, spec), status_code=200)
    return JSONResponse(await services.jobs.submit_video(caller, spec), status_code=202)


@router.get(
    "/jobs/{jobId}",
    summary="Get a job's status and result",
    response_model=JobView,
    response_model_exclude_unset=True,
    responses={401: _ERRORS[401], 404: {"model": ErrorBody, "description": "JOB_NOT_FOUND"}},
)
async def get_job(jobId: str, request: Request, caller: CallerDep) -> JobView:
    return await services_of(request).jobs.get(caller, jobId)
