"""xAI's media routes (`/v1/...`), answered by grokgate: code written for xAI, or for the `openai` package pointed
at xAI, works by changing its base URL and key.

Each request is turned into the native generation body (`compat/translate.py`) and goes the native way: the same
key check, scopes and rate limits (`orgs/auth.py`), the catalogue's rules and price (`jobs/spec.py`), the same
`Idempotency-Key` handling, and `JobService.start`, so what is made here is a job like any other: charged on the
ledger, listed by `/api/v1/jobs`, cancellable, refunded when it fails, announced by webhooks. The `request_id`
handed out is the job's id. Errors keep the one body every route answers, which is xAI's `{"code", "error"}`
(plus `details`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pybase64
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from grokgate.api.errors import from_validation_errors
from grokgate.api.responses import AUTHENTICATED, errors, json_body
from grokgate.api.state import Services, services_of
from grokgate.compat import translate
from grokgate.compat.schemas import (
    EditImageRequest,
    EditVideoRequest,
    ExtendVideoRequest,
    GeneratedImageResponse,
    GenerateImageRequest,
    GenerateVideoRequest,
    ImageGenerationModel,
    ListImageGenerationModelsResponse,
    ListVideoGenerationModelsResponse,
    StartDeferredResponse,
    VideoGenerationModel,
    VideoResponse,
)
from grokgate.compat.translate import Endpoint, Native
from grokgate.errors import ApiError, job_not_found
from grokgate.idempotency.service import Answer, check_key
from grokgate.jobs.endpoints import parse_body
from grokgate.jobs.models import Job
from grokgate.jobs.schemas import GenerateRequest
from grokgate.jobs.spec import build_spec
from grokgate.orgs.auth import AUTHORIZATION_HEADER, JobsRead, authorize
from grokgate.orgs.service import Caller
from grokgate.storage.models import Media
from grokgate.storage.service import job_media
from grokgate.webhooks.urls import check_webhook_url

router = APIRouter(prefix="/v1", tags=["xai-compatible"], responses=AUTHENTICATED)
WORKFLOW = "xai-compatible"
"""The `workflow` of jobs made here, as `/api/v1/jobs` shows it."""
_NOT_JSON = ("multipart/form-data", "application/x-www-form-urlencoded")
_SAYS = {
    404: "MODEL_NOT_FOUND (no such model for this endpoint; the listings name them), or MEDIA_MISSING",
    415: "UNSUPPORTED_MEDIA_TYPE (the body must be JSON, as xAI's)",
}
_SUBMIT_ERRORS = errors(400, 402, 404, 409, 413, 415, 422, 500, 502, says=_SAYS)
_IMAGE_ERRORS = {**_SUBMIT_ERRORS, **errors(410)}
"""An image answered in `b64_json` is read from our store: on a replay after its retention, it is gone (410)."""
_SUBMIT_HEADERS = {
    "parameters": [
        AUTHORIZATION_HEADER,  # the submitting routes call `authorize` themselves (see there)
        {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 255}},
    ]
}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {**json_body(model), **_SUBMIT_HEADERS}


def _native_request(native: Native) -> GenerateRequest:
    try:
        return GenerateRequest.model_validate(native.body)
    except ValidationError as exc:
        raise from_validation_errors(list(exc.errors())) from None


async def _submit(
    request: Request, caller: Caller, endpoint: Endpoint, model: type[BaseModel]
) -> tuple[Job, Any, dict[str, str]]:
    """Validate, translate, then run the native path once per `Idempotency-Key`: the job, the parsed body, and
    the headers to answer with."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() in _NOT_JSON:
        raise ApiError(
            415, "UNSUPPORTED_MEDIA_TYPE", "The body must be JSON (images are sent as URLs or data: URIs in it)"
        )
    services = services_of(request)
    settings = services.settings
    body, body_hash = await parse_body(request, model)
    native = translate.to_native(endpoint, body, settings.catalogue)
    with translate.xai_names(native):
        generate = _native_request(native)
        spec = build_spec(generate, max_image_url_bytes=settings.max_image_url_bytes, catalogue=settings.catalogue)
        if generate.webhookUrl is not None:
            await check_webhook_url(generate.webhookUrl, allow_private=settings.webhook_allow_private)

    async def work() -> Answer:
        with translate.xai_names(native):
            job = await services.jobs.start(caller, spec, webhook_url=generate.webhookUrl, workflow=WORKFLOW)
        return Answer(status=200, body={"jobId": job.id})

    key = request.headers.get("idempotency-key")
    if key is None:
        result = await work()
    else:
        result = await services.idempotency.run(
            caller.org_id,
            check_key(key),
            await body_hash(),
            work,
            wait=min(settings.request_lease, settings.max_wait_seconds),
        )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else dict(result.headers or {})
    if result.status != 200:  # the first request's error, answered again
        stored = result.body if isinstance(result.body, dict) else {}
        details = stored.get("details")
        details = details if isinstance(details, dict) else {}
        if "retryAfter" in details:
            headers["Retry-After"] = str(details["retryAfter"])
        code, message = str(stored.get("code", "INTERNAL_ERROR")), str(stored.get("error", ""))
        raise ApiError(result.status, code, message, details, headers=headers)
    job = await services.jobs.get(caller, str(result.body["jobId"]))
    return job, body, headers


async def _read_all(services: Services, row: Media) -> str:
    """A stored image's bytes, base64-encoded (off the event loop)."""
    if row.deleted_at is not None:
        raise ApiError(410, "MEDIA_EXPIRED", f"Media {row.id} passed its retention period and was deleted")
    try:
        data = await services.media_store.read(row.key, 0, row.size)
    except FileNotFoundError:
        raise ApiError(
            404, "MEDIA_MISSING", f"The stored bytes of media {row.id} cannot be found", {"mediaId": row.id}
        ) from None
    return await asyncio.to_thread(lambda: pybase64.b64encode(data).decode())


async def _image_answer(
    services: Services, job: Job, response_format: str | None, headers: dict[str, str]
) -> JSONResponse:
    ids: list[str] = ((job.output or {}).get("media") or {}).get("image") or []
    rows = {row.id: row for row in await job_media(services.db, job.id)}
    media = [rows[media_id] for media_id in ids if media_id in rows]
    data = [await _read_all(services, row) for row in media] if response_format == "b64_json" else None
    items = translate.image_items(
        [(row.id, row.content_type) for row in media], services.jobs.finishing.links, data=data
    )
    spent = translate.usage(job, services.settings.credit_usd)
    return JSONResponse({"data": items, "usage": spent}, headers=headers)


_IMAGE_OK: dict[int | str, dict[str, Any]] = {
    200: {"model": GeneratedImageResponse, "description": "The images, stored by grokgate"}
}
_VIDEO_OK: dict[int | str, dict[str, Any]] = {
    200: {"model": StartDeferredResponse, "description": "The video job started: poll its request_id"}
}


@router.post(
    "/images/generations",
    summary="xAI: generate images (OpenAI-compatible)",
    responses={**_IMAGE_OK, **_IMAGE_ERRORS},
    openapi_extra=_body(GenerateImageRequest),
)
async def generate_images(request: Request) -> JSONResponse:
    caller = await authorize(request, "generate")
    job, body, headers = await _submit(request, caller, "images/generations", GenerateImageRequest)
    return await _image_answer(services_of(request), job, body.response_format, headers)


@router.post(
    "/images/edits",
    summary="xAI: edit images (JSON body: `image` or `images`)",
    responses={**_IMAGE_OK, **_IMAGE_ERRORS},
    openapi_extra=_body(EditImageRequest),
)
async def edit_images(request: Request) -> JSONResponse:
    caller = await authorize(request, "generate")
    job, body, headers = await _submit(request, caller, "images/edits", EditImageRequest)
    return await _image_answer(services_of(request), job, body.response_format, headers)


@router.post(
    "/videos/generations",
    summary="xAI: start a video from a prompt or an image",
    responses={**_VIDEO_OK, **_SUBMIT_ERRORS},
    openapi_extra=_body(GenerateVideoRequest),
)
async def generate_video(request: Request) -> JSONResponse:
    caller = await authorize(request, "generate")
    job, _, headers = await _submit(request, caller, "videos/generations", GenerateVideoRequest)
    return JSONResponse({"request_id": job.id}, headers=headers)


@router.post(
    "/videos/edits",
    summary="xAI: start an edit of a video",
    responses={**_VIDEO_OK, **_SUBMIT_ERRORS},
    openapi_extra=_body(EditVideoRequest),
)
async def edit_video(request: Request) -> JSONResponse:
    caller = await authorize(request, "generate")
    job, _, headers = await _submit(request, caller, "videos/edits", EditVideoRequest)
    return JSONResponse({"request_id": job.id}, headers=headers)


@router.post(
    "/videos/extensions",
    summary="xAI: start an extension of a video",
    responses={**_VIDEO_OK, **_SUBMIT_ERRORS},
    openapi_extra=_body(ExtendVideoRequest),
)
async def extend_video(request: Request) -> JSONResponse:
    caller = await authorize(request, "generate")
    job, _, headers = await _submit(request, caller, "videos/extensions", ExtendVideoRequest)
    return JSONResponse({"request_id": job.id}, headers=headers)


@router.get(
    "/videos/{request_id}",
    summary="xAI: a video's status and result",
    description="202 while the video runs; 200 with `status` `done` (the URL is grokgate's stored copy), `failed` "
    "(refunded; also a job cancelled through `DELETE /api/v1/jobs/{id}`) or `expired`.",
    responses={
        200: {"model": VideoResponse, "description": "The video ended: done, failed or expired"},
        202: {"model": VideoResponse, "description": "Still pending"},
        **errors(404),
    },
    openapi_extra={"parameters": [AUTHORIZATION_HEADER]},
)
async def get_video(request_id: str, request: Request) -> JSONResponse:
    caller = await authorize(request, "jobs:read")  # an xAI client's poll: no dependency to solve (see `authorize`)
    services = services_of(request)
    job = await services.jobs.get(caller, request_id)
    if job.kind != "video":
        raise job_not_found(request_id)
    status, body = translate.video_response(
        job, services.jobs.finishing.links, services.settings.catalogue, services.settings.credit_usd
    )
    return JSONResponse(body, status_code=status)


def _model_not_found(model_id: str, listing: str) -> ApiError:
    error = translate.model_not_found(model_id, listing)
    error.message = f"The model {model_id} is not sold here (GET /v1/{listing} lists them)"
    return error


@router.get(
    "/image-generation-models",
    summary="xAI: the image models sold here, priced in USD at the credit's price and in credits",
    response_model=ListImageGenerationModelsResponse,
)
async def list_image_models(request: Request, _caller: JobsRead) -> JSONResponse:
    settings = services_of(request).settings
    return JSONResponse({"models": translate.image_models(settings.catalogue, settings.credit_usd)})


@router.get(
    "/image-generation-models/{model_id}",
    summary="xAI: one image model",
    response_model=ImageGenerationModel,
    responses=errors(404, says={404: "MODEL_NOT_FOUND"}),
)
async def get_image_model(model_id: str, request: Request, _caller: JobsRead) -> JSONResponse:
    settings = services_of(request).settings
    for listed in translate.image_models(settings.catalogue, settings.credit_usd):
        if listed["id"] == model_id:
            return JSONResponse(listed)
    raise _model_not_found(model_id, "image-generation-models")


@router.get(
    "/video-generation-models",
    summary="xAI: the video models sold here",
    response_model=ListVideoGenerationModelsResponse,
)
async def list_video_models(request: Request, _caller: JobsRead) -> JSONResponse:
    return JSONResponse({"models": translate.video_models(services_of(request).settings.catalogue)})


@router.get(
    "/video-generation-models/{model_id}",
    summary="xAI: one video model",
    response_model=VideoGenerationModel,
    responses=errors(404, says={404: "MODEL_NOT_FOUND"}),
)
async def get_video_model(model_id: str, request: Request, _caller: JobsRead) -> JSONResponse:
    for listed in translate.video_models(services_of(request).settings.catalogue):
        if listed["id"] == model_id:
            return JSONResponse(listed)
    raise _model_not_found(model_id, "video-generation-models")
