"""The sandbox's HTTP app: xAI's media endpoints as `xai-media-openapi.json` describes them, served by Starlette.

Mounted under `/sandbox` on grokgate's own server (first run), or on its own port (`grokgate sandbox`, and the
tests that kill the gateway while the sandbox keeps its videos). `GET /_sandbox/requests` lists every call it
received and `GET /_sandbox/media` the SHA-256 of every file it served, which is how tests check what reached
"xAI" and what it produced, without patching anything.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import random
import time
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from time import monotonic
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from grokgate.upstream.sandbox import render
from grokgate.upstream.sandbox.scenarios import Scenario, parse

IMAGE_COST_TICKS = 200_000_000  # $0.02
VIDEO_COST_TICKS_PER_SECOND = 500_000_000  # $0.05
MEDIA_KEPT = 512
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


@dataclass
class VideoTask:
    body: VideoBody
    scenario: Scenario
    ready_at: float
    polls: int = 0
    media_name: str | None = None


@dataclass
class SandboxState:
    api_key: str | None
    video_seconds: float
    videos: dict[str, VideoTask] = field(default_factory=dict)
    media: OrderedDict[str, tuple[bytes, str, Scenario]] = field(default_factory=OrderedDict)
    submits: Counter[str] = field(default_factory=Counter)
    journal: list[dict[str, Any]] = field(default_factory=list)
    bench: BenchMode | None = None
    ready_wall: dict[str, float] = field(default_factory=dict)

    def keep(self, name: str, data: bytes, content_type: str, scenario: Scenario) -> None:
        self.media[name] = (data, content_type, scenario)
        while len(self.media) > MEDIA_KEPT:
            self.media.popitem(last=False)


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
    key = prompt or ""
    state.submits[key] += 1
    attempt = state.submits[key]
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


def create_sandbox_app(
    *, api_key: str | None = None, video_seconds: float = 3.0, bench: BenchMode | None = None
) -> Starlette:
    state = SandboxState(api_key=api_key, video_seconds=video_seconds, bench=bench)
    if bench is not None:
        state.keep("bench.png", render.render_png("benchmark", "1:1"), "image/png", Scenario())
        state.keep("bench.mp4", render.render_mp4("benchmark", 1, "1:1"), "video/mp4", Scenario())

    async def parse_body(request: Request, model: type[BaseModel]) -> BaseModel | JSONResponse:
        authorization = request.headers.get("authorization", "")
        if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
            return _error(401, "unauthenticated", "No API key provided")
        if state.api_key is not None and authorization[7:].strip() != state.api_key:
            return _error(400, "invalid_argument", "Incorrect API key provided")
        try:
            raw = await request.json() if request.method == "POST" else {}
        except ValueError:
            return _error(422, "invalid_argument", "Failed to deserialize the JSON body")
        if state.bench is None:
            state.journal.append({"method": request.method, "path": request.url.path, "body": raw})
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            return _error(422, "invalid_argument", f"Failed to deserialize the JSON body: {where}: {first['msg']}")

    def media_url(request: Request, name: str) -> str:
        return str(request.url_for("sandbox_media", name=name))

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
        if state.bench is not None:
            if state.bench.image_delay:
                await asyncio.sleep(state.bench.image_delay)
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
        if state.bench is not None:
            delay = random.uniform(*state.bench.video_delay)
            state.ready_wall[request_id] = time.time() + delay
        state.videos[request_id] = VideoTask(body=body, scenario=scenario, ready_at=monotonic() + delay)
        return JSONResponse({"request_id": request_id})

    async def poll_video(request: Request) -> Response:
        parsed = await parse_body(request, NoBody)
        if isinstance(parsed, Response):
            return parsed
        task = state.videos.get(request.path_params["request_id"])
        if task is None or task.scenario.gone:
            return _error(404, "not_found", "No deferred video found with the given request_id")
        task.polls += 1
        scenario = task.scenario
        if task.polls <= scenario.pollerror:
            return _error(500, "internal_error", "Internal error")
        if scenario.polljunk:
            return Response(NOT_JSON, media_type="text/html")
        duration = task.body.duration or 8
        if scenario.never or monotonic() < task.ready_at:
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
        if task.media_name is None and state.bench is not None:
            task.media_name = "bench.mp4"
        if task.media_name is None:
            mp4 = await asyncio.to_thread(
                render.render_mp4, task.body.prompt or "image-to-video", duration, task.body.aspect_ratio
            )
            task.media_name = f"{request.path_params['request_id']}.mp4"
            state.keep(task.media_name, mp4, "video/mp4", scenario)
        video = {"url": media_url(request, task.media_name), "duration": duration, "respect_moderation": True}
        if scenario.nostatus:
            return JSONResponse({"model": "grok-imagine-video", "video": video, "usage": usage})
        return JSONResponse(
            {"status": "done", "model": "grok-imagine-video", "video": video, "progress": 100, "usage": usage}
        )

    async def media(request: Request) -> Response:
        if state.bench is None:
            state.journal.append({"method": "GET", "path": request.url.path, "body": None})
        found = state.media.get(request.path_params["name"])
        if found is None:
            return _error(404, "not_found", "No such file")
        data, content_type, scenario = found
        if scenario.deadurl:
            return _error(404, "not_found", "No such file")
        if scenario.slowmedia:
            await asyncio.sleep(scenario.slowmedia)
        if scenario.notmedia:
            return Response(b"<html><body>Access denied</body></html>", media_type=content_type)
        return Response(data, media_type=content_type)

    async def media_list(_: Request) -> Response:
        return JSONResponse(
            {"media": {name: hashlib.sha256(data).hexdigest() for name, (data, _, _) in state.media.items()}}
        )

    async def video_readiness(_: Request) -> Response:
        return JSONResponse({"ready": state.ready_wall})

    async def journal(request: Request) -> Response:
        if request.method == "DELETE":
            state.journal.clear()
            return Response(status_code=204)
        return JSONResponse({"requests": state.journal})

    return Starlette(
        routes=[
            Route("/v1/images/generations", images, methods=["POST"]),
            Route("/v1/images/edits", images, methods=["POST"]),
            Route("/v1/videos/generations", submit_video, methods=["POST"]),
            Route("/v1/videos/{request_id}", poll_video, methods=["GET"]),
            Route("/files/{name}", media, methods=["GET"], name="sandbox_media"),
            Route("/_sandbox/requests", journal, methods=["GET", "DELETE"]),
            Route("/_sandbox/media", media_list, methods=["GET"]),
            Route("/_sandbox/videos", video_readiness, methods=["GET"]),
        ]
    )
