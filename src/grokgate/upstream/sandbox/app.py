"""The sandbox's HTTP app: xAI's media endpoints as `xai-media-openapi.json` describes them, served by Starlette.

Mounted under `/sandbox` on grokgate's own server (first run), or on its own port (`grokgate sandbox`, and the
tests that kill the gateway while the sandbox keeps its videos). Mounted, it faces the customer port, so it takes
only the key the gateway keeps in its database, serves files only through expiring signed links, and has no
inspection routes. Asked for (`inspect=True`, `grokgate sandbox --inspect`), `GET /_sandbox/requests` lists the
calls it received and `GET /_sandbox/media` the SHA-256 of every file it holds, which is how tests check what
reached "xAI" and what it produced, without patching anything.

It speaks xAI's whole media catalogue: the models and prices of `catalogue.py`, image generations and edits,
video generations, edits and extensions, the two model listings, per-key request rates (`pacing.py`, off unless
asked for) and request ids that belong to the key that made them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from grokgate.storage import signing
from grokgate.upstream.sandbox import catalogue, inputs, render
from grokgate.upstream.sandbox.bodies import EditVideoBody, ExtendVideoBody, ImageBody, ImageUrl, NoBody, VideoBody
from grokgate.upstream.sandbox.catalogue import VideoModel
from grokgate.upstream.sandbox.pacing import Kind, Pacer, retry_after
from grokgate.upstream.sandbox.scenarios import Scenario, parse
from grokgate.upstream.sandbox.state import Limits, SandboxState, VideoTask, key_id

NOT_JSON = b"<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>"
MAX_EDIT_IMAGES = 3
EDIT_MAX_SECONDS = 8.7
"""The longest input a video edit takes (xAI: "at most about 8.7 s")."""
EXTEND_INPUT_SECONDS = (2, 15)
DEFAULT_INPUT_SECONDS = 6
"""The length assumed for an input video the sandbox cannot read."""
INPUT_RESOLUTION_CAP = "720p"
"""Edits and extensions keep the input's resolution, at most this."""
Body = TypeVar("Body", bound=BaseModel)


@dataclass(frozen=True)
class BenchMode:
    """For the benchmark: media rendered once up front, a fixed image delay, videos done after a random delay (unless
    the prompt says `[sandbox:delay=S]`), and no request journal, so that what is measured is the gateway and not
    the stand-in."""

    image_delay: float = 0.0
    video_delay: tuple[float, float] = (1.0, 1.0)
    same_image: bool = False
    """Hand every request the one pre-rendered PNG and the one MP4 (one stored object each in all) instead of
    distinct bytes each."""


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "error": message}, status_code=status, headers=headers)


def _check_image_input(images: Sequence[ImageUrl]) -> JSONResponse | None:
    """xAI fetches and decodes the input images; offline we can only check data URIs really hold an image."""
    for image in images:
        if not image.url or not image.url.startswith("data:"):
            continue
        header, _, _ = image.url.partition(",")
        data = inputs.data_uri_bytes(image.url) or b""
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


WITHHELD_ITEM = {"mime_type": "image/png", "revised_prompt": "", "respect_moderation": False}
"""An image xAI made but its moderation withheld: no URL, no bytes."""


def _odd_image_answer(scenario: Scenario, n: int, cost_ticks: int) -> JSONResponse | None:
    """The 200 answers to an image submit that hold no usable image, which a gateway must not bill as a result."""
    usage = {"cost_in_usd_ticks": cost_ticks}
    if scenario.emptydata:
        return JSONResponse({"data": [], "usage": usage})
    if scenario.nourl:
        return JSONResponse({"data": [{"mime_type": "image/png", "revised_prompt": ""}] * n, "usage": usage})
    if scenario.withheld >= n:
        return JSONResponse({"data": [WITHHELD_ITEM] * n, "usage": usage})
    return None


def _presented_key(state: SandboxState, authorization: str) -> str | JSONResponse:
    """xAI's bearer check; the key's `key_id` when it passes. Without configured keys (a standalone sandbox
    started without `--api-key`) any key passes; otherwise only those, each compared in constant time."""
    scheme, _, presented = authorization.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return _error(401, "unauthenticated", "No API key provided")
    if state.api_keys is not None:
        matches = [secrets.compare_digest(presented.encode(), key.encode()) for key in state.api_keys]
        if not any(matches):
            return _error(401, "unauthenticated", "Incorrect API key provided")
    return key_id(presented)


def _unknown_model(name: str | None) -> JSONResponse:
    return _error(404, "not_found", f"The model {name} does not exist or your team does not have access to it")


def _resolution_for(facts: inputs.VideoFacts | None, model: VideoModel) -> str:
    """An edit or extension keeps its input's resolution, capped at 720p (and at what the model serves)."""
    if facts is None:
        return catalogue.DEFAULT_VIDEO_RESOLUTION
    short_side = min(facts.width, facts.height)
    cap = catalogue.VIDEO_RESOLUTIONS.index(INPUT_RESOLUTION_CAP)
    fitting = [
        name
        for name in catalogue.VIDEO_RESOLUTIONS[: cap + 1]
        if name in model.per_second and short_side >= render.VIDEO_SIZES[name]["1:1"][0]
    ]
    return fitting[-1] if fitting else catalogue.DEFAULT_VIDEO_RESOLUTION


def set_api_key(app: Starlette, api_key: str) -> None:
    """Give a mounted sandbox the key the gateway keeps in its database, once the gateway has read it."""
    set_api_keys(app, (api_key,))


def set_api_keys(app: Starlette, api_keys: Sequence[str]) -> None:
    """Accept these keys from now on: a key left out is revoked, as when a team's key is deleted at xAI."""
    sandbox_state: SandboxState = app.state.sandbox
    sandbox_state.api_keys = tuple(api_keys)


def create_sandbox_app(
    *,
    api_key: str | None = None,
    api_keys: Sequence[str] | None = None,
    video_seconds: float = 3.0,
    bench: BenchMode | None = None,
    inspect: bool = False,
    limits: Limits | None = None,
    image_rps: int | None = None,
    video_rps: int | None = None,
) -> Starlette:
    """`inspect` turns on the journal and the `/_sandbox/*` routes (tests and the benchmark only: they show every
    caller's prompts). Result files are served only through the expiring signed links the answers carry.

    `api_key` / `api_keys`: the keys accepted (all of them, each with its own rate budget and its own request
    ids); neither: any key. `image_rps` / `video_rps`: xAI's per-team limits (5 and 1 there), applied per key;
    None, the default, leaves them off so that tests firing bursts are not paced."""
    for name, rate in (("image_rps", image_rps), ("video_rps", video_rps)):
        if rate is not None and rate < 1:
            raise ValueError(f"{name} must be at least 1, or None for no limit")
    keys = [*([api_key] if api_key is not None else []), *(api_keys or [])]
    state = SandboxState(
        api_keys=tuple(keys) if keys else None,
        video_seconds=video_seconds,
        limits=limits or Limits(),
        inspect=inspect,
    )
    pacer = Pacer(image_rps=image_rps, video_rps=video_rps)
    file_secret = secrets.token_urlsafe(32)  # files live in this process's memory, so its links need no more
    if bench is not None:
        state.inspect = False  # what is measured is the gateway, not the stand-in's journal
        state.keep("bench.png", render.render_png("benchmark", "1:1"), "image/png", Scenario(), pinned=True)
        state.keep("bench.mp4", render.render_mp4("benchmark", 1, "1:1"), "video/mp4", Scenario(), pinned=True)

    async def parse_body(request: Request, model: type[Body], kind: Kind | None = None) -> tuple[str, Body] | Response:
        """Authenticate, journal, pace (a submit of `kind`), then validate the body: what every route does first.
        The caller's key id comes back with the body."""
        caller = _presented_key(state, request.headers.get("authorization", ""))
        if isinstance(caller, Response):
            return caller
        try:
            raw = await request.json() if request.method == "POST" else {}
        except ValueError:
            return _error(422, "invalid_argument", "Failed to deserialize the JSON body")
        named = raw.get("model") if isinstance(raw, dict) else None
        entry = state.record(
            request.method, request.url.path, raw, key=caller, model=named if isinstance(named, str) else None
        )
        if kind is not None:
            wait = pacer.admit(caller, kind)
            if wait is not None:
                entry["status"] = 429
                limit = pacer.image_rps if kind == "image" else pacer.video_rps
                message = f"Too many requests: at most {limit} {kind} requests per second for this team"
                return _error(429, "rate_limited", message, {"Retry-After": retry_after(wait)})
        try:
            return caller, model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            return _error(422, "invalid_argument", f"Failed to deserialize the JSON body: {where}: {first['msg']}")

    def media_url(request: Request, name: str) -> str:
        expires = int(time.time() + state.limits.file_ttl)
        state.linked(name, expires)
        return f"{request.url_for('sandbox_media', name=name)}?{signing.sign(file_secret, name, expires)}"

    def _bench_copy(name: str) -> bool:
        """A benchmark video's own name: the pre-rendered MP4, marked apart by the name when downloaded."""
        return bench is not None and name.startswith("bench-") and name.endswith(".mp4")

    def bench_images(request: Request, body: ImageBody, n: int) -> list[dict[str, Any]]:
        """Benchmark answers: the pre-rendered PNG, marked apart per image unless `same_image`, inline or linked
        as asked (a linked one is kept like any other result, and pruned like one)."""
        assert bench is not None
        if bench.same_image:
            return [{"url": media_url(request, "bench.png"), "mime_type": "image/png", "revised_prompt": ""}]
        base = state.file("bench.png")
        assert base is not None
        items: list[dict[str, Any]] = []
        for _ in range(n):
            token = uuid.uuid4().hex
            png = render.marked_png(base.data, token.encode())
            if body.response_format == "b64_json":
                items.append({"b64_json": base64.b64encode(png).decode(), "mime_type": "image/png"})
            else:
                state.keep(f"bench-{token}.png", png, "image/png", Scenario())
                items.append({"url": media_url(request, f"bench-{token}.png"), "mime_type": "image/png"})
        return items

    def own_file(url: str) -> bytes | None:
        """The bytes behind one of this sandbox's own signed links, read without a request to itself."""
        parts = urlsplit(url)
        head, _, name = parts.path.rpartition("/")
        if not head.endswith("/files"):
            return None
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        if not signing.verify(file_secret, name, query.get("exp"), query.get("sig")):
            return None
        found = state.file(name)
        return found.data if found is not None else None

    async def input_bytes(url: str | None, *, fetch: bool) -> bytes | None:
        if not url:
            return None
        if url.startswith("data:"):
            return inputs.data_uri_bytes(url)
        mine = own_file(url)
        if mine is not None or not fetch or not url.startswith(("http://", "https://")):
            return mine
        return await inputs.fetch(url)

    async def admit(
        images: Sequence[ImageUrl], prompt: str | None, cost_ticks: int
    ) -> tuple[Scenario, Response | None]:
        """What every submit goes through: the input image check, then the faults the prompt asks for."""
        scenario = parse(prompt)
        bad_input = _check_image_input(images)
        if bad_input is not None:
            return scenario, bad_input
        return scenario, await _submit_gate(state, scenario, prompt, cost_ticks)

    async def images(request: Request) -> Response:
        parsed = await parse_body(request, ImageBody, "image")
        if isinstance(parsed, Response):
            return parsed
        _, body = parsed
        model = catalogue.image_model(body.model)
        if model is None:
            return _unknown_model(body.model)
        if body.quality is not None and not model.qualities:
            return _error(400, "invalid_argument", f"quality is not supported by model {model.id}")
        is_edit = request.url.path.endswith("/edits")
        sources = ([body.image] if body.image is not None else []) + (body.images or [])
        if is_edit:
            if not sources:
                return _error(422, "invalid_argument", "image or images is required for an edit")
            if body.image is not None and body.images:
                return _error(400, "invalid_argument", "image and images are mutually exclusive")
            if len(sources) > MAX_EDIT_IMAGES:
                message = f"images: at most {MAX_EDIT_IMAGES} input images can be edited, got {len(sources)}"
                return _error(400, "invalid_argument", message)
        n = body.n or 1
        input_cost = catalogue.INPUT_IMAGE_EDIT_TICKS * len(sources) if is_edit else 0
        cost = model.price(body.quality, body.resolution) * n + input_cost
        scenario, refusal = await admit(sources, body.prompt, cost)
        if refusal is not None:
            return refusal
        odd = _odd_image_answer(scenario, n, cost)
        if odd is not None:
            return odd
        if bench is not None:
            if bench.image_delay:
                await asyncio.sleep(bench.image_delay)
            return JSONResponse({"data": bench_images(request, body, n), "usage": {"cost_in_usd_ticks": cost}})
        like = None
        if is_edit and len(sources) == 1:  # a single-image edit keeps its input's shape, when it can be read
            data = await input_bytes(sources[0].url, fetch=False)
            like = inputs.image_size(data) if data is not None else None
        items = []
        for index in range(n):
            if index >= n - scenario.withheld:
                items.append(WITHHELD_ITEM)
                continue
            png = await asyncio.to_thread(
                render.render_png, body.prompt, body.aspect_ratio, resolution=body.resolution, index=index, like=like
            )
            if body.response_format == "b64_json":
                items.append({"b64_json": base64.b64encode(png).decode(), "mime_type": "image/png"})
            else:
                name = f"{uuid.uuid4()}.png"
                state.keep(name, png, "image/png", scenario)
                items.append({"url": media_url(request, name), "mime_type": "image/png", "revised_prompt": ""})
        return JSONResponse({"data": items, "usage": {"cost_in_usd_ticks": cost}})

    async def start_video(
        caller: str, prompt: str, scenario: Scenario, model: VideoModel, shape: tuple[int, str, str | None], cost: int
    ) -> Response:
        """Queue a video (any of the three submits); `shape` is (duration, resolution, aspect ratio)."""
        duration, resolution, aspect_ratio = shape
        request_id = str(uuid.uuid4())
        delay = scenario.delay if scenario.delay is not None else state.video_seconds
        if bench is not None and scenario.delay is None:
            delay = random.uniform(*bench.video_delay)
        task = VideoTask(
            prompt=prompt[: state.limits.prompt_chars],
            duration=duration,
            aspect_ratio=aspect_ratio,
            scenario=scenario,
            ready_at=time.monotonic() + delay,
            ready_wall=time.time() + delay,
            owner=caller,
            model=model.id,
            resolution=resolution,
            cost_ticks=cost,
        )
        state.add_video(request_id, task)
        return JSONResponse({"request_id": request_id})

    async def submit_video(request: Request) -> Response:
        parsed = await parse_body(request, VideoBody, "video")
        if isinstance(parsed, Response):
            return parsed
        caller, body = parsed
        model = catalogue.video_model(body.model)
        if model is None:
            return _unknown_model(body.model)
        if not body.prompt and body.image is None:
            return _error(400, "invalid_argument", "prompt is required for text-to-video")
        resolution = body.resolution or catalogue.DEFAULT_VIDEO_RESOLUTION
        if resolution not in model.per_second:
            return _error(400, "invalid_argument", f"resolution {resolution} is not supported by model {model.id}")
        duration = body.duration or 8
        conditioning = ([body.image] if body.image is not None else []) + (body.reference_images or [])
        cost = model.per_second[resolution] * duration + model.input_image * len(conditioning)
        scenario, refusal = await admit(conditioning, body.prompt, cost)
        if refusal is not None:
            return refusal
        shape = (duration, resolution, body.aspect_ratio)
        return await start_video(caller, body.prompt or "image-to-video", scenario, model, shape, cost)

    async def read_input_video(url: str | None) -> inputs.VideoFacts | Response | None:
        """The input video's facts; None if it cannot be had (the defaults apply); 400 if it is no video."""
        data = await input_bytes(url, fetch=True)
        if data is None:
            return None
        facts = await asyncio.to_thread(inputs.video_facts, data)
        if facts is None:
            return _error(400, "invalid_argument", "Input video could not be decoded as MP4")
        return facts

    async def edit_or_extend_video(request: Request) -> Response:
        extending = request.url.path.endswith("/extensions")
        shape: type[EditVideoBody] = ExtendVideoBody if extending else EditVideoBody
        parsed = await parse_body(request, shape, "video")
        if isinstance(parsed, Response):
            return parsed
        caller, body = parsed
        model = catalogue.video_model(body.model)
        if model is None:
            return _unknown_model(body.model)
        if not body.video.url and not body.video.file_id:
            return _error(
                422, "invalid_argument", "Failed to deserialize the JSON body: video: url or file_id is required"
            )
        facts = await read_input_video(body.video.url)
        if isinstance(facts, Response):
            return facts
        seconds = facts.seconds if facts is not None else float(DEFAULT_INPUT_SECONDS)
        if extending and not EXTEND_INPUT_SECONDS[0] <= seconds <= EXTEND_INPUT_SECONDS[1] + 0.5:
            low, high = EXTEND_INPUT_SECONDS
            return _error(400, "invalid_argument", f"video: the input must be {low} to {high} s long, not {seconds:g}")
        if not extending and seconds > EDIT_MAX_SECONDS + 0.05:
            return _error(
                400, "invalid_argument", f"video: at most {EDIT_MAX_SECONDS} s can be edited, not {seconds:g}"
            )
        input_seconds = facts.duration if facts is not None else DEFAULT_INPUT_SECONDS
        added = (body.duration or 6) if isinstance(body, ExtendVideoBody) else input_seconds
        resolution = _resolution_for(facts, model)
        aspect = render.nearest_video_aspect(facts.width, facts.height) if facts is not None else None
        cost = model.per_second[resolution] * added + catalogue.INPUT_VIDEO_TICKS_PER_SECOND * input_seconds
        scenario, refusal = await admit([], body.prompt, cost)
        if refusal is not None:
            return refusal
        duration = input_seconds + added if extending else input_seconds
        return await start_video(caller, body.prompt, scenario, model, (duration, resolution, aspect), cost)

    async def poll_video(request: Request) -> Response:
        parsed = await parse_body(request, NoBody)
        if isinstance(parsed, Response):
            return parsed
        caller, _ = parsed
        task = state.video(request.path_params["request_id"])
        if task is None or task.scenario.gone or task.owner != caller:
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
        usage = {"cost_in_usd_ticks": task.cost_ticks}
        if scenario.fail:
            return JSONResponse(
                {
                    "status": "failed",
                    "error": {"code": "internal_error", "message": "Video generation failed"},
                }
            )
        if scenario.moderate:
            video = {"url": "", "duration": duration, "respect_moderation": False}
            return JSONResponse({"status": "done", "model": task.model, "video": video, "usage": usage})
        if task.media_name is None and bench is not None:
            # a distinct copy is made when it is downloaded (`media`), not kept for every video in flight
            task.media_name = "bench.mp4" if bench.same_image else f"bench-{request.path_params['request_id']}.mp4"
        if task.media_name is None or (state.file(task.media_name) is None and not _bench_copy(task.media_name)):
            mp4 = await asyncio.to_thread(render.render_mp4, task.prompt, duration, task.aspect_ratio, task.resolution)
            task.media_name = f"{request.path_params['request_id']}.mp4"
            state.keep(task.media_name, mp4, "video/mp4", scenario)
        video = {"url": media_url(request, task.media_name), "duration": duration, "respect_moderation": True}
        if scenario.nostatus:
            return JSONResponse({"model": task.model, "video": video, "usage": usage})
        return JSONResponse({"status": "done", "model": task.model, "video": video, "progress": 100, "usage": usage})

    def listings(models: Any, listing: Any, find: Any) -> tuple[Any, Any]:
        """`GET /v1/{kind}-generation-models` and `GET /v1/{kind}-generation-models/{model_id}`."""

        async def every(request: Request) -> Response:
            parsed = await parse_body(request, NoBody)
            if isinstance(parsed, Response):
                return parsed
            return JSONResponse({"models": [listing(model) for model in models]})

        async def one(request: Request) -> Response:
            parsed = await parse_body(request, NoBody)
            if isinstance(parsed, Response):
                return parsed
            model = find(request.path_params["model_id"])
            if model is None:
                return _unknown_model(request.path_params["model_id"])
            return JSONResponse(listing(model))

        return every, one

    image_models, image_model = listings(catalogue.IMAGE_MODELS, catalogue.image_listing, catalogue.image_model)
    video_models, video_model = listings(catalogue.VIDEO_MODELS, catalogue.video_listing, catalogue.video_model)

    async def media(request: Request) -> Response:
        name = request.path_params["name"]
        state.record("GET", request.url.path, None)
        query = request.query_params
        if not signing.verify(file_secret, name, query.get("exp"), query.get("sig")):
            return _error(403, "permission_denied", "This file link is unsigned, altered or expired")
        if _bench_copy(name):
            base = state.file("bench.mp4")
            assert base is not None
            return Response(render.marked_mp4(base.data, name.encode()), media_type="video/mp4")
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
        Route("/v1/videos/edits", edit_or_extend_video, methods=["POST"]),
        Route("/v1/videos/extensions", edit_or_extend_video, methods=["POST"]),
        Route("/v1/videos/{request_id}", poll_video, methods=["GET"]),
        Route("/v1/image-generation-models", image_models, methods=["GET"]),
        Route("/v1/image-generation-models/{model_id}", image_model, methods=["GET"]),
        Route("/v1/video-generation-models", video_models, methods=["GET"]),
        Route("/v1/video-generation-models/{model_id}", video_model, methods=["GET"]),
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
