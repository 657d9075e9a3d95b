"""xAI's REST API over aiohttp: timeouts, bounded retries, and the mapping of its answers onto `upstream.base`.

Retry policy, by what a failure says about the request:
- 429 and 503 mean xAI did not take the request: retried (honouring `Retry-After`) for every call.
- A connection that was never established means nothing was sent: retried for every call.
- A timeout after sending, a dropped connection, or another 5xx leave a submit's outcome unknown: a submit is then
  not repeated (that could start and bill a second generation); a poll, which changes nothing, is.

Each call is one JSON body out and one read whole back, on aiohttp (`upstream/http.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import structlog
from multidict import CIMultiDictProxy

from grokgate.upstream.base import (
    ImageRequest,
    ImageResult,
    Submission,
    SubmitOutcomeUnknown,
    UpstreamError,
    UpstreamInvalid,
    UpstreamKeyRefused,
    UpstreamNotTaken,
    UpstreamRejected,
    UpstreamWithheld,
    VideoPoll,
    VideoRequest,
)
from grokgate.upstream.http import LazySession

log = structlog.get_logger(__name__)

_NOT_TAKEN = {429, 503}
_MAX_RETRY_AFTER = 30.0


@dataclass(frozen=True)
class Answer:
    """One HTTP answer of xAI's, read whole."""

    status_code: int
    headers: CIMultiDictProxy[str]
    content: bytes

    def json(self) -> Any:
        """The body as JSON; `ValueError` if it is not (undecodable bytes included). Read by orjson: an image asked
        inline (`b64_json`) is one long string, which the standard library's parser walks a character at a time
        (318 us for a 300 KB image, orjson 139 us)."""
        return orjson.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class NotSent(Exception):
    """No connection was made (refused, unreachable, no name, no TLS handshake, none within the connect timeout, a
    URL that cannot be requested): the request never left, so it may be sent again whatever it was."""


class Unanswered(Exception):
    """The request may have reached xAI but no whole answer came back (a timeout while waiting, a connection
    dropped or cut mid-answer): its outcome is unknown."""


def _failure(error: BaseException) -> NotSent | Unanswered:
    """What an aiohttp failure says about the request. Order matters: a connect timeout is also a
    `ServerTimeoutError`, and a connector error is also a `ClientOSError`."""
    message = f"{type(error).__name__}: {error}"
    if isinstance(error, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError | aiohttp.InvalidURL):
        return NotSent(message)
    return Unanswered(message)


def _retry_after(response: Answer) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER)
    except ValueError:
        return None


def _error_message(response: Answer) -> tuple[str, str | None]:
    """xAI's error body as (message, code). Both shapes it uses: `{"code", "error": "text"}` and
    `{"error": {"message", "code", ...}}`; anything else (an HTML page from a proxy) as its first 500 characters."""
    try:
        body = response.json()
    except ValueError:
        return (response.text[:500] or f"HTTP {response.status_code}", None)
    if not isinstance(body, dict):
        return (str(body)[:1000], None)
    error = body.get("error")
    code = body.get("code")
    if isinstance(error, dict):
        message: Any = error.get("message") or str(error)
        code = code if code is not None else error.get("code") or error.get("type")
    else:
        message = error or body.get("message") or body
    return (str(message)[:1000], str(code) if code is not None else None)


def _cost(body: Any) -> int | None:
    """`usage.cost_in_usd_ticks`, where an answer (even a refusal) carries it."""
    cost = _obj(_obj(body).get("usage")).get("cost_in_usd_ticks")
    return cost if isinstance(cost, int) and not isinstance(cost, bool) and cost >= 0 else None


def _json_object(response: Answer, what: str) -> dict[str, Any]:
    """The answer's JSON object, or `UpstreamInvalid` naming what was expected: a 200 that is not JSON is nonsense
    from xAI or a proxy in front of it, never a crash of ours."""
    try:
        body = response.json()
    except ValueError:
        raise UpstreamInvalid(f"xAI answered {response.status_code} to {what} with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise UpstreamInvalid(f"xAI answered {response.status_code} to {what} with JSON that is not an object")
    return body


def image_result(body: dict[str, Any]) -> ImageResult:
    """Read `POST /v1/images/*`'s answer: the URLs of the images delivered. Items withheld by moderation
    (`respect_moderation: false`) are no result; all withheld is a refusal, and no usable item at all is nonsense."""
    items = body.get("data")
    if not isinstance(items, list) or not items:
        raise UpstreamInvalid("xAI answered 200 without any image")
    cost = _cost(body)
    urls: list[str] = []
    withheld = 0
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("respect_moderation") is False:
            withheld += 1
            continue
        url = item.get("url")
        if isinstance(url, str) and url:
            urls.append(url)
        elif isinstance(item.get("b64_json"), str) and item["b64_json"]:
            mime = item.get("mime_type") if isinstance(item.get("mime_type"), str) else "image/png"
            urls.append(f"data:{mime};base64,{item['b64_json']}")
    if not urls and withheld:
        raise UpstreamWithheld("xAI's moderation withheld the generated image", "moderated", cost)
    if not urls:
        raise UpstreamInvalid("xAI answered 200 without an image URL")
    return ImageResult(urls=urls, cost_in_usd_ticks=cost, withheld=withheld)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def poll_from_body(status_code: int, body: Any) -> VideoPoll:
    """Read one `GET /v1/videos/{id}` answer. Unknown statuses count as still pending, as xAI advises; a 200 with
    `video` but no `status` at all is a finished video, as xAI's public clients read it."""
    if status_code == 404:
        return VideoPoll(state="not_found", error_code="not_found", error_message="xAI does not know this request")
    data = _obj(body)
    progress = data.get("progress") if isinstance(data.get("progress"), int) else None
    status = data.get("status")
    video = _obj(data.get("video"))
    if status_code == 200 and status is None and video:
        status = "done"
    if status_code == 202 or status not in {"done", "failed", "expired"}:
        return VideoPoll(state="pending", progress=progress, raw=data)
    cost = _cost(data)
    if status == "done":
        url = video.get("url")
        if video.get("respect_moderation") is False or not url or not isinstance(url, str):
            return VideoPoll(
                state="moderated",
                cost_in_usd_ticks=cost,
                error_code="moderated",
                error_message="The video was withheld by xAI's moderation",
                raw=data,
            )
        duration = video.get("duration")
        return VideoPoll(
            state="done",
            url=url,
            duration=float(duration) if isinstance(duration, int | float) and not isinstance(duration, bool) else None,
            cost_in_usd_ticks=cost,
            raw=data,
        )
    if status == "failed":
        error = _obj(data.get("error"))
        return VideoPoll(
            state="failed",
            cost_in_usd_ticks=cost,
            error_code=str(error.get("code") or "internal_error"),
            error_message=str(error.get("message") or "xAI reported the video as failed"),
            raw=data,
        )
    return VideoPoll(state="expired", error_code="expired", error_message="xAI expired the request before rendering it")


def key_id_of(api_key: str) -> str:
    """A stable, non-secret name for a key given in the environment: the same in every process and restart."""
    return "env_" + hashlib.sha256(api_key.encode()).hexdigest()[:16]


def _refuses_key(status: int, message: str) -> bool:
    """xAI refusing the key rather than the request: 401/403 (no credentials, no access to the model or team),
    402 (out of credit), and the 400 it answers for an invalid key."""
    return status in (401, 402, 403) or (status == 400 and "api key" in message.lower())


class XaiUpstream:
    paces_videos = False

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_connections: int = 1000,
        observe: Callable[[str, str], None] | None = None,
        key_id: str | None = None,
        hand_back_not_taken: bool = False,
        image_format: str = "url",
    ) -> None:
        """`hand_back_not_taken`: raise `UpstreamNotTaken` on the first 429/503 of a submit instead of retrying
        it here (a pool does, through whichever key is free). `image_format`: the `response_format` images are
        asked in (`url`: a link grokgate then downloads; `b64_json`: the bytes inline, one round trip fewer)."""
        self.image_format = image_format
        self.key_id = key_id or key_id_of(api_key)
        self._hand_back = hand_back_not_taken
        self._base = base_url.rstrip("/") + "/"
        self._client = LazySession(
            timeout=timeout, max_connections=max_connections, headers={"Authorization": f"Bearer {api_key}"}
        )
        self._retries = max(1, retries)
        self._backoff = backoff
        self._observe = observe or (lambda _endpoint, _outcome: None)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Answer:
        try:
            async with self._client().request(method, self._base + path, json=body) as response:
                return Answer(response.status, response.headers, await response.read())
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _failure(error) from error

    async def _pause(self, attempt: int, response: Answer | None) -> None:
        delay = self._backoff * (2**attempt) * (0.5 + random.random())
        hinted = _retry_after(response) if response is not None else None
        await asyncio.sleep(max(delay, hinted or 0.0))

    async def _send(self, method: str, path: str, body: dict[str, Any] | None, *, idempotent: bool) -> Answer:
        endpoint = "poll" if method == "GET" else path
        try:
            response = await self._attempts(method, path, body, idempotent=idempotent)
        except Exception as exc:
            self._observe(endpoint, type(exc).__name__)
            raise
        self._observe(endpoint, str(response.status_code))
        return response

    async def _attempts(self, method: str, path: str, body: dict[str, Any] | None, *, idempotent: bool) -> Answer:
        last: Answer | None = None
        for attempt in range(self._retries):
            try:
                response = await self._request(method, path.lstrip("/"), body)
            except NotSent as exc:
                log.warning("upstream.unreachable", path=path, attempt=attempt + 1, error=repr(exc))
                last = None
                if attempt + 1 < self._retries:
                    await self._pause(attempt, None)
                continue
            except Unanswered as exc:
                if not idempotent:
                    raise SubmitOutcomeUnknown(f"xAI did not answer {method} {path}: {exc!r}") from exc
                log.warning("upstream.transport_error", path=path, attempt=attempt + 1, error=repr(exc))
                last = None
                if attempt + 1 < self._retries:
                    await self._pause(attempt, None)
                continue
            retryable = response.status_code in _NOT_TAKEN or (idempotent and response.status_code >= 500)
            if not retryable:
                return response
            if self._hand_back and not idempotent and response.status_code in _NOT_TAKEN:
                message, _ = _error_message(response)
                raise UpstreamNotTaken(f"xAI answered {response.status_code}: {message}", _retry_after(response))
            last = response
            log.warning("upstream.retry", path=path, status=response.status_code, attempt=attempt + 1)
            if attempt + 1 < self._retries:
                await self._pause(attempt, response)
        if last is None:
            raise UpstreamError(f"xAI unreachable for {method} {path} after {self._retries} attempts")
        message, _ = _error_message(last)
        raise UpstreamError(f"xAI answered {last.status_code} after {self._retries} attempts: {message}")

    def _raise_for_submit(self, response: Answer) -> None:
        if response.status_code == 200:
            return
        message, code = _error_message(response)
        if _refuses_key(response.status_code, message):
            raise UpstreamKeyRefused(f"xAI refused the key ({response.status_code}): {message}")
        if response.status_code in (400, 422):
            try:
                cost = _cost(response.json())
            except ValueError:
                cost = None
            raise UpstreamRejected(message, code, cost)
        if response.status_code >= 500:
            raise SubmitOutcomeUnknown(f"xAI answered {response.status_code}: {message}")
        raise UpstreamError(f"xAI answered {response.status_code}: {message}")

    async def generate_image(self, request: ImageRequest) -> ImageResult:
        body: dict[str, Any] = {
            "model": request.model,
            "prompt": request.prompt,
            "response_format": self.image_format,
            "n": request.n,
        }
        for name in ("resolution", "quality"):
            if getattr(request, name) is not None:
                body[name] = getattr(request, name)
        path = "images/generations"
        sources = request.sources
        if len(sources) == 1:
            path = "images/edits"
            body["image"] = {"url": sources[0]}
        elif sources:
            path = "images/edits"
            body["images"] = [{"url": url} for url in sources]
        if request.aspect_ratio is not None and len(sources) != 1:  # a single-image edit keeps the input's
            body["aspect_ratio"] = request.aspect_ratio
        response = await self._send("POST", path, body, idempotent=False)
        self._raise_for_submit(response)
        return image_result(_json_object(response, "an image request"))

    async def submit_video(self, request: VideoRequest, *, wait: bool = True) -> Submission:
        body: dict[str, Any] = {"model": request.model}
        if request.duration is not None:
            body["duration"] = request.duration
        if request.prompt is not None:
            body["prompt"] = request.prompt
        path = {"generate": "videos/generations", "edit": "videos/edits", "extend": "videos/extensions"}[
            request.operation
        ]
        if request.operation == "generate":
            if request.aspect_ratio is not None:
                body["aspect_ratio"] = request.aspect_ratio
            if request.resolution is not None:
                body["resolution"] = request.resolution
            if request.image_url is not None:
                body["image"] = {"url": request.image_url}
        elif request.video_url is not None:
            body["video"] = {"url": request.video_url}
        response = await self._send("POST", path, body, idempotent=False)
        self._raise_for_submit(response)
        try:
            request_id = _json_object(response, "a video submission").get("request_id")
        except UpstreamInvalid as exc:  # xAI may have started (and will bill) a video we cannot name
            raise SubmitOutcomeUnknown(str(exc)) from exc
        if not isinstance(request_id, str) or not request_id:
            raise SubmitOutcomeUnknown("xAI answered 200 without a request_id")
        return Submission(request_id, self.key_id)

    async def poll_video(self, request_id: str, key_id: str | None = None) -> VideoPoll:
        response = await self._send("GET", f"videos/{request_id}", None, idempotent=True)
        if response.status_code not in (200, 202, 404):
            message, _ = _error_message(response)
            if _refuses_key(response.status_code, message):
                raise UpstreamKeyRefused(f"xAI refused the key ({response.status_code}) for a poll: {message}")
            raise UpstreamError(f"xAI answered {response.status_code} to a poll: {message}")
        body: Any = None
        if response.content and response.status_code == 200:
            body = _json_object(response, "a poll")
        elif response.content:
            with contextlib.suppress(ValueError):
                body = response.json()
        return poll_from_body(response.status_code, body)
