"""The sandbox's HTTP app: xAI's media endpoints as `xai-media-openapi.json` describes them, served by Starlette.

Mounted under `/sandbox` on grokgate's own server (first run), or on its own port (`grokgate sandbox`, and the
tests that kill the gateway while the sandbox keeps its videos). Mounted, it faces the customer port, so it takes
only the key the gateway keeps in its database, serves files only through expiring signed links, and has no
inspection routes. Asked for (`inspect=True`, `grokgate sandbox --inspect`), `GET /_sandbox/requests` lists the
calls it received and `GET /_sandbox/media` the SHA-256 of every file it holds, which is how tests check what
reached "xAI" and what it produced, without patching anything.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import random
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from grokgate.storage import signing
from grokgate.upstream.sandbox import render
from grokgate.upstream.sandbox.scenarios import Scenario, parse
from grokgate.upstream.sandbox.state import Limits, SandboxState, VideoTask

IMAGE_COST_TICKS = 200_000_000  # $0.02
VIDEO_COST_TICKS_PER_SECOND = 500_000_000  # $0.05
NOT_JSON = b"<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>"

ImageAspect = Literal[
    "1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9", "1:2", "2:1", "21:9",
    "5:2", "auto",
]  # fmt: skip
VideoAspect = Literal["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"]


class ImageUrl(BaseModel):
    url: str | None = None
    file_id: str | None = None


class ImageBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    prompt: str
    model: str | None = None
    n: int | None = Field(default=1, ge=1, le=10)
    response_format: Literal["url", "b64_json"] | None = "url"
    aspect_ratio: ImageAspect | None = None
    resolution: Literal["1k", "1.5k", "2k"] | None = None
    image: ImageUrl | None = None
    images: list[ImageUrl] | None = None


class NoBody(BaseModel):
    """A GET carries no body."""


class VideoBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    prompt: str | None = None
    model: str | None = None
    duration: int | None = Field(default=8, ge=1, le=15)
    aspect_ratio: VideoAspect | None = None
    resolution: Literal["480p", "720p", "1080p"] | None = None
    image: ImageUrl | None = None


@dataclass(frozen=True)
class BenchMode:
    """For the benchmark: media rendered once up front, a fixed image delay, videos done after a random delay, and
    no request journal, so that what is measured is the gateway and not the stand-in."""

    image_delay: float = 0.0
    video_delay: tuple[float, float] = (1.0, 1.0)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "error": message}, status_code=status, headers=headers)


def _check_image_input(image: ImageUrl | None) -> JSONResponse | None:
    """xAI fetches and decodes the input image; offline we can only check data URIs really hold an image."""
    if image is None or not image.url or not image.url.startswith("data:"):
        return None
    header, _, payload = image.url.partition(",")
    try:
        data = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        data = b""
    if not header.startswith("data:image/") or not data.startswith((b"\x89PNG", b"\xff\xd8", b"RIFF")):
        return _error(400, "invalid_argument", "Input image could not be decoded as JPEG, PNG or WebP")
    return None


def _moderated(shape: int, cost_ticks: int) -> JSONResponse:
    """A moderation refusal that xAI still bills, in either of the error-body shapes xAI is seen to use."""
    message = "Generated content was rejected by content moderation"
    usage = {"cost_in_usd_ticks": cost_ticks}
    if shape >= 2:
        body: dict[str, Any] = {"error": {"code": "invalid_argument", "message": message}, "usage": usage}
    else:
        body = {"code": "invalid_argument", "error": message, "usage": usage}
    return JSONResponse(body, status_code=400)


async def _submit_gate(state: SandboxState, scenario: Scenario, prompt: str | None, cost_ticks: int) -> Response | None:
    """Faults a submit can meet before any work starts, in the order a real API would hit them."""
    if scenario.hang:
        await asyncio.sleep(scenario.hang)
    attempt = state.count_submit(prompt)
    if attempt <= scenario.ratelimit:
        return _error(429, "rate_limited", "Too many requests", {"Retry-After": "0"})
    if attempt <= scenario.unavailable:
        return _error(503, "service_unavailable", "The service is overloaded, try again")
    if scenario.error500:
        return _error(500, "internal_error", "Internal error")
    if scenario.reject:
        return _error(400, "invalid_argument", "Generated content was rejected by the content policy")
    if scenario.moderatedcost:
        return _moderated(scenario.moderatedcost, cost_ticks)
    if scenario.notjson:
        return Response(NOT_JSON, media_type="text/html")
    return None


def _odd_image_answer(scenario: Scenario, n: int) -> JSONResponse | None:
    """The 200 answers to an image submit that hold no usable image, which a gateway must not bill as a result."""
    usage = {"cost_in_usd_ticks": IMAGE_COST_TICKS * n}
    if scenario.emptydata:
        return JSONResponse({"data": [], "usage": usage})
    if scenario.nourl:
        return JSONResponse({"data": [{"mime_type": "image/png", "revised_prompt": ""}] * n, "usage": usage})
    if scenario.withheld:
        item = {"mime_type": "image/png", "revised_prompt": "", "respect_moderation": False}
        return JSONResponse({"data": [item] * n, "usage": usage})
    return None


def _authorised(state: SandboxState, authorization: str) -> JSONResponse | None:
    """xAI's bearer check. Without a configured key (a standalone sandbox started without `--api-key`) any key
    passes; otherwise only that one, compared in constant time."""
    scheme, _, presented = authorization.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return _error(401, "unauthenticated", "No API key provided")
    if state.api_key is not None and not secrets.compare_digest(presented.encode(), state.api_key.encode()):
        return _error(401, "unauthenticated", "Incorrect API key provided")
    return None


def set_api_key(app: Starlette, api_key: str) -> None:
    """Give a mounted sandbox the key the gateway keeps in its database, once the gateway has read it."""
    sandbox_state: SandboxState = app.state.sandbox
    sandbox_state.api_key = api_key


def create_sandbox_app(
    *,
    api_key: str | None = None,
    video_seconds: float = 3.0,
    bench: BenchMode | None = None,
    inspect: bool = False,
    limits: Limits | None = None,
) -> Starlette:
    """`inspect` turns on the journal and the `/_sandbox/*` routes (tests and the benchmark only: they show every
    caller's prompts). Result files are served only through the expiring signed links the answers carry."""
    state = SandboxState(api_key=api_key, video_seconds=video_seconds, limits=limits or Limits(), inspect=inspect)
    file_secret = secrets.token_urlsafe(32)  # files live in this process's memory, so its links need no more
    if bench is not None:
        state.inspect = False  # what is measured is the gateway, not the stand-in's journal
        state.keep("bench.png", render.render_png("benchmark", "1:1"), "image/png", Scenario(), pinned=True)
        state.keep("bench.mp4", render.render_mp4("benchmark", 1, "1:1"), "video/mp4", Scenario(), pinned=True)

    async def parse_body(request: Request, model: type[BaseModel]) -> BaseModel | JSONResponse:
        refusal = _authorised(state, request.headers.get("authorization", ""))
        if refusal is not None:
            return refusal
        try:
            raw = await request.json() if request.method == "POST" else {}
        except ValueError:
            return _error(422, "invalid_argument", "Failed to deserialize the JSON body")
        state.record(request.method, request.url.path, raw)
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            return _error(422, "invalid_argument", f"Failed to deserialize the JSON body: {where}: {first['msg']}")

    def media_url(request: Request, name: str) -> str:
        expires = int(time.time() + state.limits.file_ttl)
        state.linked(name, expires)
        return f"{request.url_for('sandbox_media', name=name)}?{signing.sign(file_secret, name, expires)}"

    async def admit(image: ImageUrl | None, prompt: str | None, cost_ticks: int) -> tuple[Scenario, Response | None]:
        """What every submit goes through: the input image check, then the faults the prompt asks for."""
        scenario = parse(prompt)
        bad_input = _check_image_input(image)
        if bad_input is not None:
            return scenario, bad_input
        return scenario, await _submit_gate(state, scenario, prompt, cost_ticks)

    async def images(request: Request) -> Response:
        body = await parse_body(request, ImageBody)
        if isinstance(body, Response):
            return body
        assert isinstance(body, ImageBody)
        is_edit = request.url.path.endswith("/edits")
        if is_edit and body.image is None and not body.images:
            return _error(422, "invalid_argument", "image or images is required for an edit")
        scenario, refusal = await admit(body.image, body.prompt, IMAGE_COST_TICKS * (body.n or 1))
        if refusal is not None:
            return refusal
        odd = _odd_image_answer(scenario, body.n or 1)
        if odd is not None:
            return odd
        if bench is not None:
            if bench.image_delay:
                await asyncio.sleep(bench.image_delay)
            url = media_url(request, "bench.png")
            item = {"url": url, "mime_type": "image/png", "revised_prompt": ""}
            return JSONResponse({"data": [item], "usage": {"cost_in_usd_ticks": IMAGE_COST_TICKS}})
        items = []
        for _ in range(body.n or 1):
            png = await asyncio.to_thread(render.render_png, body.prompt, body.aspect_ratio)
            if body.response_format == "b64_json":
                items.append({"b64_json": base64.b64encode(png).decode(), "mime_type": "image/png"})
            else:
                name = f"{uuid.uuid4()}.png"
                state.keep(name, png, "image/png", scenario)
                items.append({"url": media_url(request, name), "mime_type": "image/png", "revised_prompt": ""})
        return JSONResponse({"data": items, "usage": {"cost_in_usd_ticks": IMAGE_COST_TICKS * len(items)}})

    async def submit_video(request: Request) -> Response:
        body = await parse_body(request, VideoBody)
        if isinstance(body, Response):
            return body
        assert isinstance(body, VideoBody)
        if not body.prompt and body.image is None:
            return _error(400, "invalid_argument", "prompt is required for text-to-video")
        cost = VIDEO_COST_TICKS_PER_SECOND * (body.duration or 8)
        scenario, refusal = await admit(body.image, body.prompt, cost)
        if refusal is not None:
            return refusal
        request_id = str(uuid.uuid4())
        delay = scenario.delay if scenario.delay is not None else state.video_seconds
        if bench is not None:
            delay = random.uniform(*bench.video_delay)
        task = VideoTask(
            prompt=(body.prompt or "image-to-video")[: state.limits.prompt_chars],
            duration=body.duration or 8,
            aspect_ratio=body.aspect_ratio,
            scenario=scenario,
            ready_at=time.monotonic() + delay,
            ready_wall=time.time() + delay,
        )
        state.add_video(request_id, task)
        return JSONResponse({"request_id": request_id})

    async def poll_video(request: Request) -> Response:
        parsed = await parse_body(request, NoBody)
        if isinstance(parsed, Response):
            return parsed
        task = state.video(request.path_params["request_id"])
        if task is None or task.scenario.gone:
            return _error(404, "not_found", "No deferred video found with the given request_id")
        task.polls += 1
        scenario = task.scenario
        if task.polls <= scenario.pollerror:
            return _error(500, "internal_error", "Internal error")
        if scenario.polljunk:
            return Response(NOT_JSON, media_type="text/html")
        duration = task.duration
        if scenario.never or time.monotonic() < task.ready_at:
            if scenario.empty202:
                return Response(status_code=202)
            progress = 0 if scenario.never else min(99, task.polls * 10)
            return JSONResponse({"status": "pending", "progress": progress}, status_code=202)
        if scenario.expire:
            return JSONResponse({"status": "expired"})
        usage = {"cost_in_usd_ticks": VIDEO_COST_TICKS_PER_SECOND * duration}
        if scenario.fail:
            return JSONResponse(
                {
                    "status": "failed",
                    "error": {"code": "internal_error", "message": "Video generation failed"},
                }
            )
        if scenario.moderate:
            video = {"url": "", "duration": duration, "respect_moderation": False}
            return JSONResponse({"status": "done", "model": "grok-imagine-video", "video": video, "usage": usage})
        if task.media_name is None and bench is not None:
            task.media_name = "bench.mp4"
        if task.media_name is None or state.file(task.media_name) is None:
            mp4 = await asyncio.to_thread(render.render_mp4, task.prompt, duration, task.aspect_ratio)
            task.media_name = f"{request.path_params['request_id']}.mp4"
            state.keep(task.media_name, mp4, "video/mp4", scenario)
        video = {"url": media_url(request, task.media_name), "duration": duration, "respect_moderation": True}
        if scenario.nostatus:
            return JSONResponse({"model": "grok-imagine-video", "video": video, "usage": usage})
        return JSONResponse(
            {"status": "done", "model": "grok-imagine-video", "video": video, "progress": 100, "usage": usage}
        )

    async def media(request: Request) -> Response:
        name = request.path_params["name"]
        state.record("GET", request.url.path, None)
        query = request.query_params
        if not signing.verify(file_secret, name, query.get("exp"), query.get("sig")):
            return _error(403, "permission_denied", "This file link is unsigned, altered or expired")
        found = state.file(name)
        if found is None or found.scenario.deadurl:
            return _error(404, "not_found", "No such file")
        if found.scenario.slowmedia:
            await asyncio.sleep(found.scenario.slowmedia)
        if found.scenario.notmedia:
            return Response(b"<html><body>Access denied</body></html>", media_type=found.content_type)
        return Response(found.data, media_type=found.content_type)

    async def media_list(_: Request) -> Response:
        state.prune()
        return JSONResponse(
            {"media": {name: hashlib.sha256(stored.data).hexdigest() for name, stored in state.files.items()}}
        )

    async def video_readiness(_: Request) -> Response:
        return JSONResponse({"ready": {request_id: task.ready_wall for request_id, task in state.videos.items()}})

    async def journal(request: Request) -> Response:
        if request.method == "DELETE":
            state.journal.clear()
            return Response(status_code=204)
        return JSONResponse({"requests": list(state.journal)})

    routes = [
        Route("/v1/images/generations", images, methods=["POST"]),
        Route("/v1/images/edits", images, methods=["POST"]),
        Route("/v1/videos/generations", submit_video, methods=["POST"]),
        Route("/v1/videos/{request_id}", poll_video, methods=["GET"]),
        Route("/files/{name}", media, methods=["GET"], name="sandbox_media"),
    ]
    if inspect:
        routes += [
            Route("/_sandbox/requests", journal, methods=["GET", "DELETE"]),
            Route("/_sandbox/media", media_list, methods=["GET"]),
            Route("/_sandbox/videos", video_readiness, methods=["GET"]),
        ]
    app = Starlette(routes=routes)
    app.state.sandbox = state
    return app
