"""HTTP routes of jobs: the seed's model endpoint, the workflow form, and reading, listing, cancelling, streaming.

Both POST forms go through `_create`: one path for validation, webhooks' URL check, idempotency, the charge and
the upstream call, and `Prefer: wait`. Routes stay thin; the rules live in `spec.py`, `service.py` and `views.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.background import BackgroundTask

from grokgate.api.errors import from_validation_errors
from grokgate.api.paging import Limit, Offset
from grokgate.api.responses import AUTHENTICATED, errors, json_body
from grokgate.api.state import Services, services_of
from grokgate.errors import ApiError
from grokgate.idempotency.service import Answer, check_key, fingerprint
from grokgate.jobs import states
from grokgate.jobs.models import Job
from grokgate.jobs.schemas import (
    GenerateRequest,
    GenericJobRequest,
    ImageCompleted,
    JobCreated,
    JobList,
    JobStatus,
    JobView,
    VideoAccepted,
    VideoWaited,
)
from grokgate.jobs.spec import build_spec, preferred_wait
from grokgate.jobs.views import generic_answer, image_answer, job_json, present, video_answer
from grokgate.jobs.waiters import Hold
from grokgate.orgs.auth import AUTHORIZATION_HEADER, JobsRead, JobsWrite, authorize
from grokgate.orgs.service import Caller
from grokgate.webhooks.urls import check_webhook_url

router = APIRouter(prefix="/api/v1", tags=["jobs"], responses=AUTHENTICATED)

_POST_HEADERS = {
    "parameters": [
        AUTHORIZATION_HEADER,  # the two POST routes call `authorize` themselves (see there)
        {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 255}},
        {"name": "Prefer", "in": "header", "required": False, "schema": {"type": "string", "example": "wait=30"}},
    ]
}


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {**json_body(model), **_POST_HEADERS}


_BIG_BODY = 256 * 1024
"""Bodies larger than this (a `data:` image) are parsed and hashed in a worker thread, off the event loop."""


def _validate(model: type[BaseModel], raw: bytes) -> Any:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise from_validation_errors(list(exc.errors())) from None


Fingerprint = Callable[[], Awaitable[str]]
"""A body's fingerprint for `Idempotency-Key`, made only when a key was sent (most requests send none)."""


async def parse_body(request: Request, model: type[BaseModel]) -> tuple[Any, Fingerprint]:
    """The body validated (strictly: JSON types as documented, no coercion) as `model`, and how to fingerprint it
    for `Idempotency-Key`. Parsed once; read after auth."""
    raw = await request.body() or b"null"
    big = len(raw) > _BIG_BODY
    parsed = await asyncio.to_thread(_validate, model, raw) if big else _validate(model, raw)
    path = request.url.path

    def made() -> str:
        return fingerprint("POST", path, parsed.model_dump(mode="json", exclude_unset=True))

    async def of() -> str:
        return await asyncio.to_thread(made) if big else made()

    return parsed, of


def _plan_waiters(services: Services, caller: Caller) -> int:
    plan = services.settings.plans.get(caller.plan) or services.settings.plans["default"]
    return plan.waiters


async def _create(
    request: Request,
    caller: Caller,
    body: GenerateRequest,
    body_hash: Fingerprint,
    *,
    workflow: str,
    answer: Callable[[Job, bool], tuple[int, dict[str, Any]]],
) -> JSONResponse:
    services = services_of(request)
    spec = build_spec(
        body, max_image_url_bytes=services.settings.max_image_url_bytes, catalogue=services.settings.catalogue
    )
    if body.webhookUrl is not None:
        await check_webhook_url(body.webhookUrl, allow_private=services.settings.webhook_allow_private)
    wait = preferred_wait(request.headers.get("prefer"), most=services.settings.max_wait_seconds)
    waited = spec.kind == "video" and wait is not None
    # A client that asks to wait is counted before anything is charged: over its plan's share it is refused whole.
    hold = services.waiters.acquire(caller.org_id, _plan_waiters(services, caller)) if waited else None

    async def work() -> Answer:
        job = await services.jobs.start(caller, spec, webhook_url=body.webhookUrl, workflow=workflow)
        if waited:
            assert wait is not None
            with contextlib.suppress(Exception):  # the job exists and is charged: a failed wait answers it as is
                job = await services.jobs.wait(caller, job.id, wait)
        status, payload = answer(job, waited)
        return Answer(status=status, body=payload)

    key = request.headers.get("idempotency-key")
    try:
        if key is None:
            result = await work()
        else:
            result = await services.idempotency.run(
                caller.org_id,
                check_key(key),
                await body_hash(),
                work,
                wait=min(services.settings.request_lease, services.settings.max_wait_seconds),
            )
    finally:
        if hold is not None:
            hold.release()
    headers: dict[str, str] = dict(result.headers or {})
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    if waited:
        headers["Preference-Applied"] = f"wait={wait:g}"
    return JSONResponse(result.body, status_code=result.status, headers=headers)


@router.post(
    "/models/grok-imagine",
    tags=["grok-imagine"],
    summary="Submit a Grok Imagine generation job (image or video)",
    description="Images answer 200 with the result. Videos answer 202 with a jobId: poll `GET /api/v1/jobs/{jobId}` "
    "until it is completed, or send `Prefer: wait=N` to be answered when it ends (at most N seconds).",
    responses={
        200: {
            "model": ImageCompleted | VideoWaited,
            "description": "Image generated (or, with Prefer: wait, a video that ended)",
        },
        202: {
            "model": VideoAccepted | VideoWaited,
            "description": "Video job created (with Prefer: wait, still running when the wait ran out)",
        },
        **errors(400, 402, 409, 413, 422, 500, 502),
    },
    openapi_extra=_body_schema(GenerateRequest),
)
async def generate(request: Request) -> JSONResponse:
    caller = await authorize(request, "generate")
    body, body_hash = await parse_body(request, GenerateRequest)

    def answer(job: Job, waited: bool) -> tuple[int, dict[str, Any]]:
        links = services_of(request).jobs.finishing.links
        if job.kind == "image":
            return 200, image_answer(job, links)
        return (200 if job.status in states.TERMINAL else 202), video_answer(job, links, waited=waited)

    return await _create(request, caller, body, body_hash, workflow="grok-imagine", answer=answer)


@router.post(
    "/jobs",
    summary="Create a job (workflow form)",
    status_code=201,
    responses={201: {"model": JobCreated, "description": "Job created"}, **errors(400, 402, 409, 413, 422, 500, 502)},
    openapi_extra=_body_schema(GenericJobRequest),
)
async def create_job(request: Request) -> JSONResponse:
    caller = await authorize(request, "generate")
    generic, body_hash = await parse_body(request, GenericJobRequest)
    try:
        body = generic.as_generate_request()
        settings = services_of(request).settings
        build_spec(body, max_image_url_bytes=settings.max_image_url_bytes, catalogue=settings.catalogue)
    except ApiError as exc:
        field = exc.details.get("field")
        if field and field != "webhookUrl":
            exc.details["field"] = f"input.{field}"
            exc.message = f"input.{exc.message}"
        raise
    links = services_of(request).jobs.finishing.links

    def answer(job: Job, _waited: bool) -> tuple[int, dict[str, Any]]:
        return 201, generic_answer(job, links)

    return await _create(request, caller, body, body_hash, workflow=generic.workflow, answer=answer)


@router.get("/jobs", summary="List your jobs, newest first", response_model=JobList, responses=errors(400))
async def list_jobs(
    request: Request,
    caller: JobsRead,
    limit: Limit = 20,
    offset: Offset = 0,
    status: JobStatus | None = None,
) -> JSONResponse:
    service = services_of(request).jobs
    jobs, total = await service.list(caller, limit=limit, offset=offset, status=status)
    listed = [job_json(job, service.finishing.links) for job in jobs]
    return JSONResponse({"jobs": listed, "total": total, "limit": limit, "offset": offset})


@router.get(
    "/jobs/{jobId}",
    summary="Get a job's status and result",
    response_model=JobView,
    response_model_exclude_unset=True,
    responses=errors(404),
    openapi_extra={"parameters": [AUTHORIZATION_HEADER]},
)
async def get_job(jobId: str, request: Request) -> Response:
    # The poll, a video's client's most frequent request: it authorizes itself as the submitting routes do (see
    # `authorize`) and writes its `JobView` itself, which FastAPI would validate again before writing it (together
    # about a tenth of a poll's CPU). A docstring here would become the operation's description.
    caller = await authorize(request, "jobs:read")
    service = services_of(request).jobs
    view = present(await service.get(caller, jobId), service.finishing.links)
    return Response(view.model_dump_json(exclude_unset=True, by_alias=True), media_type="application/json")


@router.delete(
    "/jobs/{jobId}",
    summary="Cancel a pending or processing job; its credits are refunded",
    response_model=JobView,
    response_model_exclude_unset=True,
    responses=errors(404, 409),
)
async def cancel_job(jobId: str, request: Request, caller: JobsWrite) -> JobView:
    service = services_of(request).jobs
    return present(await service.cancel(caller, jobId), service.finishing.links)


KEEP_ALIVE_SECONDS = 15.0
"""A comment line is sent on an event stream after this long without news, so proxies keep it open."""


async def _event_stream(
    services: Services, caller: Caller, request: Request, job_id: str, hold: Hold
) -> AsyncIterator[str]:
    last: tuple[str, object] | None = None
    try:
        async with contextlib.aclosing(services.jobs.follow(caller, job_id, idle=KEEP_ALIVE_SECONDS)) as changes:
            async for job in changes:
                if job is None:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                state = (job.status, job.updated_at)
                if state != last:
                    last = state
                    yield f"event: status\ndata: {json.dumps(job_json(job, services.jobs.finishing.links))}\n\n"
                if job.status in states.TERMINAL or await request.is_disconnected():
                    return
    finally:
        hold.release()


@router.get(
    "/jobs/{jobId}/events",
    summary="Stream a job's status changes as Server-Sent Events until it ends",
    description="Open streams and `Prefer: wait` requests count against the plan's `waiters` (429 beyond it).",
    responses={200: {"content": {"text/event-stream": {}}}, **errors(404, 429)},
)
async def job_events(jobId: str, request: Request, caller: JobsRead) -> StreamingResponse:
    services = services_of(request)
    await services.jobs.get(caller, jobId, with_input=False)  # 404 before the stream starts
    hold = services.waiters.acquire(caller.org_id, _plan_waiters(services, caller))
    return StreamingResponse(
        _event_stream(services, caller, request, jobId, hold),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(hold.release),  # also when the stream never started
    )
