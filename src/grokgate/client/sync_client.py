"""`Client`: the blocking SDK. Its resources hand the shared operations (`operations.py`) to `_Runner`, which
carries their commands out with an `httpx.Client`."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Unpack, cast

import httpx

from grokgate.client.config import resolve
from grokgate.client.models import Balance, GeneratedImages, Job, JobPage, LedgerPage, Quote, SubModel
from grokgate.client.operations import Core, ImageOptions, VideoOptions, WaitOptions
from grokgate.client.protocol import (
    Call,
    CloseStream,
    Command,
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
    SseDecoder,
    TransportFailure,
    destination_for,
    part_path,
)
from grokgate.client.transport import USER_AGENT, failure, reply_of

T = TypeVar("T")


class _Runner:
    """Runs one operation to its end; owns the event stream it may open, and closes it however the run ends."""

    def __init__(self, http: httpx.Client, auth: dict[str, str]) -> None:
        self.http = http
        self.auth = auth
        self.stream: httpx.Response | None = None
        self.lines: Iterator[str] | None = None
        self.decoder = SseDecoder()

    def run(self, op: Op[T]) -> T:
        try:
            command = next(op)
            while True:
                command = op.send(self.do(command))
        except StopIteration as stop:
            return cast(T, stop.value)
        finally:
            op.close()
            self.close()

    def do(self, command: Command) -> Any:
        if isinstance(command, Send):
            return self.send(command.call)
        if isinstance(command, Sleep):
            time.sleep(command.seconds)
            return None
        if isinstance(command, Listen):
            return self.listen(command)
        if isinstance(command, NextEvent):
            return self.next_event()
        if isinstance(command, CloseStream):
            self.close()
            return None
        assert isinstance(command, Download)
        return self.download(command)

    def send(self, call: Call) -> Reply | TransportFailure:
        try:
            response = self.http.request(
                call.method, call.url, params=call.params, json=call.json, headers={**self.auth, **call.headers}
            )
        except httpx.TransportError as exc:
            return failure(exc)
        return reply_of(response, response.content)

    def listen(self, command: Listen) -> Reply | TransportFailure:
        timeout = httpx.Timeout(self.http.timeout.connect, read=command.read_timeout)
        request = self.http.build_request(
            "GET", command.call.url, headers={**self.auth, "Accept": "text/event-stream"}, timeout=timeout
        )
        try:
            response = self.http.send(request, stream=True)
            if response.status_code >= 400:
                return reply_of(response, response.read())
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                response.close()
                return failure(ValueError("not an event stream"))
        except httpx.TransportError as exc:
            return failure(exc)
        self.stream, self.lines, self.decoder = response, response.iter_lines(), SseDecoder()
        return Reply(response.status_code, dict(response.headers), None)

    def next_event(self) -> ServerSentEvent | Heartbeat | TransportFailure | None:
        assert self.lines is not None
        try:
            for line in self.lines:
                item = self.decoder.feed(line)
                if item is not None:
                    return item
        except httpx.TransportError as exc:
            return failure(exc)
        return None

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = self.lines = None

    def download(self, command: Download) -> Path | Reply | TransportFailure:
        part: Path | None = None
        try:
            with self.http.stream("GET", command.url, follow_redirects=True) as response:
                if response.status_code >= 400:
                    return reply_of(response, response.read())
                final = destination_for(command.destination, command.stem, response.headers.get("content-type"))
                part = part_path(final)
                with part.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
            os.replace(part, final)
            return final
        except httpx.TransportError as exc:
            return failure(exc)
        finally:
            if part is not None:
                part.unlink(missing_ok=True)


class Images:
    """`client.images`: generate or edit images."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def generate(self, prompt: str, **options: Unpack[ImageOptions]) -> ImageResult:
        """Generate (or, with `image_url`, edit) images; answered once they are stored, with links to each."""
        return ImageResult(self._client, self._client._run(self._client._core.generate_image(prompt, **options)))


class ImageResult:
    """The images of one generation: `job_id`, `credits_charged`, `urls`, and `save()` to fetch them."""

    def __init__(self, client: Client, data: GeneratedImages) -> None:
        self._client = client
        self.data = data
        self.job_id = data.job_id
        self.credits_charged = data.credits_charged
        self.urls = data.result_urls
        self.replayed = data.replayed

    def save(self, path: str | os.PathLike[str]) -> list[Path]:
        """Download every image to `path` (numbered `-1`, `-2`, ... when several; named after the job when
        `path` is a directory) and return the files written."""
        return self._client._run(self._client._core.save_images(self.data, path))


class VideoJob:
    """A video being made: `wait()` for it, then `download()` it; `job` is the last state seen."""

    def __init__(self, client: Client, job: Job) -> None:
        self._client = client
        self.job = job
        self.id = job.id

    @property
    def status(self) -> str:
        """The last status seen (`pending`, `processing`, `completed`, `failed`, `cancelled`)."""
        return self.job.status

    def refresh(self) -> Job:
        """Read the job again."""
        self.job = self._client.jobs.get(self.id)
        return self.job

    def wait(self, **options: Unpack[WaitOptions]) -> Job:
        """Block until the job ends (completed, failed or cancelled) and return it; `WaitTimeout` after
        `timeout` seconds. `on_progress(job)` is called at each change."""
        self.job = self._client.jobs.wait(self.id, **options)
        return self.job

    def cancel(self) -> Job:
        """Cancel the job; its credits are refunded."""
        self.job = self._client.jobs.cancel(self.id)
        return self.job

    def download(self, path: str | os.PathLike[str]) -> Path:
        """Save the finished video (`JobFailed` if it failed, `JobNotFinished` if it is still running)."""
        return self._client.jobs.download(self.id, path)


class Videos:
    """`client.videos`: start video jobs."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, prompt: str | None = None, **options: Unpack[VideoOptions]) -> VideoJob:
        """Start a video job (charged now, refunded if it fails) and return its handle at once."""
        return VideoJob(self._client, self._client._run(self._client._core.create_video(prompt, **options)))


class Jobs:
    """`client.jobs`: read, list, wait on, cancel and download jobs."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def get(self, job_id: str) -> Job:
        """One job (`NotFound` for an unknown id or another organisation's)."""
        return self._client._run(self._client._core.get_job(job_id))

    def list(self, *, limit: int = 20, offset: int = 0, status: str | None = None) -> JobPage:
        """A page of your jobs, newest first, optionally of one status."""
        return self._client._run(self._client._core.list_jobs(limit=limit, offset=offset, status=status))

    def cancel(self, job_id: str) -> Job:
        """Cancel a pending or processing job (`Conflict` once it has ended); its credits are refunded."""
        return self._client._run(self._client._core.cancel_job(job_id))

    def wait(self, job_id: str, **options: Unpack[WaitOptions]) -> Job:
        """Block until the job ends; see `VideoJob.wait`."""
        return self._client._run(self._client._core.wait_job(job_id, **options))

    def download(self, job_id: str, path: str | os.PathLike[str]) -> Path:
        """Save a finished video job's video to `path` (a file, or a directory to name it in)."""
        return self._client._run(self._client._core.download_video(job_id, path))


class Account:
    """`client.account`: the organisation's balance and plan."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def balance(self) -> Balance:
        """Credits remaining, with the organisation's id, name and plan."""
        return self._client._run(self._client._core.balance())


class Ledger:
    """`client.ledger`: the organisation's credit movements."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, *, limit: int = 20, offset: int = 0) -> LedgerPage:
        """A page of grants, charges and refunds, newest first."""
        return self._client._run(self._client._core.ledger(limit=limit, offset=offset))


class Models:
    """`client.models`: what the gateway sells, and what a request would cost."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> list[SubModel]:
        """Every sub-model with its fields, ranges and price rule."""
        return self._client._run(self._client._core.models())

    def quote(self, body: dict[str, Any]) -> Quote:
        """The price of a generation body (as for `POST /api/v1/models/grok-imagine`), charging nothing."""
        return self._client._run(self._client._core.quote(body))


class Client:
    """The grokgate API, blocking. Key and URL default to `GROKGATE_API_KEY` / `GROKGATE_BASE_URL`, then to
    what `grokgate login` saved. Use it as a context manager, or `close()` it."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 300.0,
        max_retries: int = 2,
        max_retry_wait: float = 20.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        credentials = resolve(api_key, base_url)
        self.base_url = credentials.base_url
        self._auth = {"Authorization": f"Bearer {credentials.api_key}"}
        self._core = Core(RetryPolicy(max_retries=max_retries, max_wait=max_retry_wait))
        self._http = http_client or httpx.Client(
            base_url=self.base_url, timeout=httpx.Timeout(timeout, connect=10.0), headers={"User-Agent": USER_AGENT}
        )
        self.images = Images(self)
        self.videos = Videos(self)
        self.jobs = Jobs(self)
        self.account = Account(self)
        self.ledger = Ledger(self)
        self.models = Models(self)

    def _run(self, op: Op[T]) -> T:
        return _Runner(self._http, self._auth).run(op)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
