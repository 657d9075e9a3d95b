"""Every SDK operation once, as a generator of transport commands (`protocol.py`): which request, how to read its
answer, when to retry, how to wait on a job. `Client` and `AsyncClient` run these same generators.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, Unpack

from pydantic import ValidationError

from grokgate.client.errors import ConnectionFailed, JobFailed, JobNotFinished, NotFound, WaitTimeout, error_from
from grokgate.client.files import image_reference
from grokgate.client.models import Balance, GeneratedImages, Job, JobPage, LedgerPage, Quote, SubModel
from grokgate.client.protocol import (
    Call,
    CloseStream,
    Download,
    Heartbeat,
    Listen,
    NextEvent,
    Op,
    Reply,
    RetryPolicy,
    Send,
    ServerSentEvent,
    Sleep,
    TransportFailure,
)

ProgressCallback = Callable[[Job], object]
"""Called with the job each time its status (or progress) changes while waiting."""
ImageSource = str | os.PathLike[str]
"""An http(s) URL, a `data:image/...` URI, or a local file (a `Path`), sent as a data URI."""


class ImageOptions(TypedDict, total=False):
    """What an image generation may say besides its prompt (see `GET /api/v1/models` for each model's fields)."""

    model: str
    """Sub-model: `text-to-image` (default), `text-to-image-quality`, `text-to-image-2`, ..."""
    aspect_ratio: str
    """`16:9 9:16 4:3 3:4 1:1 3:2 2:3`."""
    image_url: ImageSource | list[ImageSource]
    """A source image to edit (or up to 3 in a list): URL, data URI or local `Path`."""
    n: int
    """Images to make (1-10), each charged."""
    resolution: str
    """`1k` or `2k`."""
    quality: str
    """`low` or `medium`, where the model takes it."""
    webhook_url: str
    """Receives `job.completed` / `job.failed`, signed (see `grokgate.webhooks.verify`)."""
    idempotency_key: str
    """Your own key for the request; by default one is made per call and reused by its retries."""


class VideoOptions(TypedDict, total=False):
    """What a video generation may say besides its prompt."""

    model: str
    """Sub-model: `text-to-video` (default), `image-to-video` (default with `image_url`), `video-extend`, ..."""
    duration: int
    """Seconds (1-15, default 6)."""
    aspect_ratio: str
    """`16:9 9:16 4:3 3:4 1:1 3:2 2:3`."""
    image_url: ImageSource
    """The first frame of an image-to-video: URL, data URI or local `Path`."""
    video_url: str
    """The source video of `video-edit` / `video-extend` (an http(s) URL or one of your results' links)."""
    resolution: str
    """`480p` (default), `720p`, `1080p` where the model has it."""
    webhook_url: str
    """Receives `job.completed` / `job.failed` / `job.cancelled`, signed."""
    idempotency_key: str
    """Your own key for the request; by default one is made per call and reused by its retries."""


class WaitOptions(TypedDict, total=False):
    """How to wait on a job."""

    timeout: float | None
    """Seconds before `WaitTimeout` is raised (the job goes on); None waits as long as it takes."""
    on_progress: ProgressCallback | None
    """Called with the job at each change of status or progress."""
    poll_interval: float
    """First pause between two reads when polling (growing to 5 s); 1 s by default."""
    stream: bool
    """Follow the job's Server-Sent Events (default True); False polls only."""


GENERATE = "/api/v1/models/grok-imagine"
STREAM_SILENCE = 30.0
"""Longest an event stream may stay silent before the waiter falls back to polling (the gateway sends a
keep-alive every 15 s)."""
MAX_POLL_INTERVAL = 5.0


def _body(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _idempotent(method: str, url: str, body: dict[str, Any], key: str | None) -> Call:
    """A POST that costs credits: one Idempotency-Key for the call, the same on every retry, so the gateway runs
    and charges it once however often the answer is lost."""
    chosen = key or f"sdk-{uuid.uuid4()}"
    return Call(method, url, json=body, headers={"Idempotency-Key": chosen}, safe_to_repeat=True)


class _Watch:
    """Reports each change a waiter sees, once."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.last: tuple[object, ...] | None = None

    def saw(self, job: Job) -> None:
        seen = (job.status, job.progress, job.updated_at)
        if seen != self.last:
            self.last = seen
            if self.callback is not None:
                self.callback(job)


@dataclass(frozen=True)
class Core:
    """The logic shared by both clients: retry rules and every operation."""

    retry: RetryPolicy

    def exchange(self, call: Call) -> Op[Reply]:
        """Send `call` until it succeeds or the retry rules give up; an error answer raises its typed error."""
        attempt = 0
        while True:
            outcome = yield Send(call)
            if isinstance(outcome, TransportFailure):
                delay = self.retry.after_failure(attempt, call)
                if delay is None:
                    raise ConnectionFailed(f"{call.method} {call.url}: {outcome.error!r}") from outcome.error
            else:
                assert isinstance(outcome, Reply)
                if outcome.status < 400:
                    return outcome
                delay = self.retry.after_reply(attempt, outcome)
                if delay is None:
                    raise error_from(outcome.status, outcome.body, outcome.headers)
            yield Sleep(delay)
            attempt += 1

    # Generation -------------------------------------------------------------------------------------------------

    def generate_image(self, prompt: str, **options: Unpack[ImageOptions]) -> Op[GeneratedImages]:
        sources = options.get("image_url")
        many = sources if isinstance(sources, list) else None
        body = _body(
            prompt=prompt,
            model=options.get("model", "text-to-image"),
            aspect_ratio=options.get("aspect_ratio"),
            image_url=image_reference(sources) if sources is not None and many is None else None,  # type: ignore[arg-type]
            image_urls=[image_reference(source) for source in many] if many is not None else None,
            n=options.get("n"),
            resolution=options.get("resolution"),
            quality=options.get("quality"),
            webhookUrl=options.get("webhook_url"),
        )
        reply = yield from self.exchange(_idempotent("POST", GENERATE, body, options.get("idempotency_key")))
        replayed = reply.headers.get("idempotent-replayed") == "true"
        return GeneratedImages.model_validate({**reply.body, "replayed": replayed})

    def create_video(self, prompt: str | None, **options: Unpack[VideoOptions]) -> Op[Job]:
        source = options.get("image_url")
        body = _body(
            prompt=prompt,
            model=options.get("model") or ("image-to-video" if source is not None else "text-to-video"),
            duration=options.get("duration"),
            aspect_ratio=options.get("aspect_ratio"),
            image_url=image_reference(source) if source is not None else None,
            video_url=options.get("video_url"),
            resolution=options.get("resolution"),
            webhookUrl=options.get("webhook_url"),
        )
        reply = yield from self.exchange(_idempotent("POST", GENERATE, body, options.get("idempotency_key")))
        answer: dict[str, Any] = reply.body
        return Job.model_validate({**answer, "id": answer["jobId"]})

    def quote(self, body: dict[str, Any]) -> Op[Quote]:
        reply = yield from self.exchange(Call("POST", "/api/v1/quote", json=body))
        return Quote.model_validate(reply.body)

    # Jobs -------------------------------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Op[Job]:
        reply = yield from self.exchange(Call("GET", f"/api/v1/jobs/{job_id}"))
        return Job.model_validate(reply.body)

    def list_jobs(self, *, limit: int = 20, offset: int = 0, status: str | None = None) -> Op[JobPage]:
        params = _body(limit=limit, offset=offset, status=status)
        reply = yield from self.exchange(Call("GET", "/api/v1/jobs", params=params))
        return JobPage.model_validate(reply.body)

    def cancel_job(self, job_id: str) -> Op[Job]:
        # Not repeated after a cut connection: a second DELETE of a cancelled job is a 409, not the first answer.
        reply = yield from self.exchange(Call("DELETE", f"/api/v1/jobs/{job_id}", safe_to_repeat=False))
        return Job.model_validate(reply.body)

    def wait_job(self, job_id: str, **options: Unpack[WaitOptions]) -> Op[Job]:
        """Follow the job's event stream until it ends; where the stream is refused or breaks, poll instead."""
        timeout = options.get("timeout")
        on_progress = options.get("on_progress")
        poll_interval = options.get("poll_interval", 1.0)
        stream = options.get("stream", True)
        deadline = None if timeout is None else time.monotonic() + timeout
        watch = _Watch(on_progress)
        if stream:
            job = yield from self._follow(job_id, deadline, watch)
            if job is not None:
                return job
        interval = poll_interval
        while True:
            job = yield from self.get_job(job_id)
            watch.saw(job)
            if job.done:
                return job
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                assert timeout is not None
                raise WaitTimeout(job, timeout)
            yield Sleep(interval if left is None else min(interval, left))
            interval = min(MAX_POLL_INTERVAL, interval * 1.5)

    def _follow(self, job_id: str, deadline: float | None, watch: _Watch) -> Op[Job | None]:
        """The ended job, or None when the stream cannot finish the wait (refused, broken, or out of time: the
        polling loop then reads the job once more and decides)."""
        silence = STREAM_SILENCE if deadline is None else max(0.1, min(STREAM_SILENCE, deadline - time.monotonic()))
        opened = yield Listen(Call("GET", f"/api/v1/jobs/{job_id}/events"), read_timeout=silence)
        if isinstance(opened, TransportFailure):
            return None
        assert isinstance(opened, Reply)
        if opened.status >= 400:
            error = error_from(opened.status, opened.body, opened.headers)
            if (isinstance(error, NotFound) and error.code == "JOB_NOT_FOUND") or opened.status in (401, 403):
                raise error
            return None  # over the plan's held clients (429), busy (503), or a gateway without streams
        while True:
            item = yield NextEvent()
            if item is None or isinstance(item, TransportFailure):
                break
            if isinstance(item, ServerSentEvent) and item.event == "status":
                try:
                    job = Job.model_validate_json(item.data)
                except ValidationError:
                    break
                watch.saw(job)
                if job.done:
                    yield CloseStream()
                    return job
            assert isinstance(item, ServerSentEvent | Heartbeat)
            if deadline is not None and time.monotonic() >= deadline:
                break
        yield CloseStream()
        return None

    # Media ------------------------------------------------------------------------------------------------------

    def download(self, url: str, destination: str | os.PathLike[str], stem: str) -> Op[Path]:
        """Fetch one signed media link into `destination` (a file, or a directory to name it in)."""
        call = Call("GET", url)
        attempt = 0
        while True:
            outcome = yield Download(url, Path(destination), stem)
            if isinstance(outcome, Path):
                return outcome
            if isinstance(outcome, TransportFailure):
                delay = self.retry.after_failure(attempt, call)
                if delay is None:
                    raise ConnectionFailed(f"GET {url}: {outcome.error!r}") from outcome.error
            else:
                delay = self.retry.after_reply(attempt, outcome)
                if delay is None:
                    raise error_from(outcome.status, outcome.body, outcome.headers)
            yield Sleep(delay)
            attempt += 1

    def save_images(self, result: GeneratedImages, destination: str | os.PathLike[str]) -> Op[list[Path]]:
        """Every image of a generation: into `destination` as given when there is one, numbered `-1`, `-2`, ...
        when there are several, or named after the job inside a directory."""
        target = Path(destination)
        saved: list[Path] = []
        many = len(result.result_urls) > 1
        for number, url in enumerate(result.result_urls, start=1):
            stem = f"{result.job_id}-{number}" if many else result.job_id
            where = (
                target if target.is_dir() or not many else target.with_name(f"{target.stem}-{number}{target.suffix}")
            )
            saved.append((yield from self.download(url, where, stem)))
        return saved

    def download_video(self, job_id: str, destination: str | os.PathLike[str]) -> Op[Path]:
        """The finished video of a job, read again first so its link is freshly signed."""
        job = yield from self.get_job(job_id)
        if job.status in ("failed", "cancelled"):
            raise JobFailed(job)
        if job.status != "completed" or job.video_url is None:
            raise JobNotFinished(job)
        return (yield from self.download(job.video_url, destination, job.id))

    # Account ----------------------------------------------------------------------------------------------------

    def balance(self) -> Op[Balance]:
        reply = yield from self.exchange(Call("GET", "/api/v1/organization"))
        return Balance.model_validate(reply.body)

    def ledger(self, *, limit: int = 20, offset: int = 0) -> Op[LedgerPage]:
        reply = yield from self.exchange(Call("GET", "/api/v1/ledger", params={"limit": limit, "offset": offset}))
        return LedgerPage.model_validate(reply.body)

    def models(self) -> Op[list[SubModel]]:
        reply = yield from self.exchange(Call("GET", "/api/v1/models"))
        return [SubModel.model_validate(entry) for entry in reply.body["data"]]
