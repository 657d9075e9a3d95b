"""Several xAI keys behind one `Upstream`: each submission goes through a key with room in its pace, a refused key
leaves the rotation, and a 429 or 503 from one key sends the request to another.

- **Pace.** Before a submit, a key of the kind's rotation must `take` a slot (`upstream/pace.py`, shared by every
  process). When none has one, the request waits in a bounded room where organisations take turns
  (`upstream/fair.py`); a dispatcher hands each freed slot to the next lane. Images wait up to `image_wait`, then
  `UpstreamBusy` (503, refunded); a video asked with `wait=False` that finds no slot is queued by the caller as a
  row, which the submitter (`jobs/submitter.py`) sends later through `wait=True`.
- **Health.** A key xAI refuses (invalid, no access, out of credit) is marked `refused` in its row, so every
  process drops it within `refresh` seconds; the same request moves on to another key, since nothing was taken.
- **Failover.** 429 and 503 mean "not taken": the key is held off for `Retry-After` (or the back-off) and the
  request tries the next free key at once, or waits for the first to free up, up to `retries` rounds of the
  rotation.
- **Polls** go through the key that created the request (`Submission.key_id`, kept on the job): xAI's request ids
  belong to their team. Polls are not paced: xAI limits model calls, not reads of a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from grokgate.db.engine import Database
from grokgate.metrics import Metrics
from grokgate.upstream import keys as key_rows
from grokgate.upstream.base import (
    ImageRequest,
    ImageResult,
    NoUpstreamKey,
    Submission,
    UpstreamBusy,
    UpstreamError,
    UpstreamKeyRefused,
    UpstreamNotTaken,
    VideoPoll,
    VideoRequest,
)
from grokgate.upstream.fair import FairQueue, RoomFull
from grokgate.upstream.keys import EnvKey
from grokgate.upstream.pace import Kind, Pace, spacing
from grokgate.upstream.xai import XaiUpstream

log = structlog.get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class PoolSettings:
    base_url: str
    timeout: float = 120.0
    retries: int = 3
    backoff: float = 0.5
    image_rps: int | None = 5
    """Default pace of a key for images (xAI's 5 per second); None or 0: unpaced."""
    video_rps: int | None = 1
    image_wait: float = 30.0
    """Most seconds an image request waits for a key's pace before it is answered 503."""
    queue: int = 1000
    """Most requests of one kind waiting in this process for a key's pace."""
    refresh: float = 5.0
    """Seconds between two readings of the keys' rows (another process may have seen a key refused)."""
    image_format: str = "url"
    """How images are asked of xAI (`response_format`): `url` or `b64_json` (`GROKGATE_XAI_IMAGE_FORMAT`)."""


@dataclass
class PoolKey:
    id: str
    name: str
    client: XaiUpstream
    status: str = "active"
    reason: str | None = None
    image_rps: int | None = None
    video_rps: int | None = None


class UpstreamPool:
    def __init__(
        self,
        db: Database,
        env_keys: Sequence[EnvKey],
        settings: PoolSettings,
        *,
        pace: Pace | None,
        observe: Callable[[str, str], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.pace = pace
        self._env = list(env_keys)
        self._observe = observe
        self._metrics = metrics
        self._keys: dict[str, PoolKey] = {}
        self._loaded_at = float("-inf")
        self._loading: asyncio.Lock | None = None
        self._next = 0
        self._rooms: dict[Kind, FairQueue[PoolKey]] = {
            "image": FairQueue(settings.queue),
            "video": FairQueue(settings.queue),
        }
        self._dispatchers: dict[Kind, asyncio.Task[None]] = {}
        self._held: dict[tuple[str, Kind], float] = {}
        """Keys xAI answered 429/503, until when (monotonic): skipped here at once, paced or not."""
        self._busy_until: dict[tuple[str, Kind], float] = {}
        """When each key's pace is known to be spoken for until (monotonic), from the last `take`'s answer: a
        slot's time only ever moves forward, so until then nobody here needs to ask Redis or the database. A burst
        of requests then costs one question per slot, not one per request per slot."""

    # --- keys -----------------------------------------------------------------------------------------------------

    def _client(self, key_id: str, secret: str) -> XaiUpstream:
        return XaiUpstream(
            self.settings.base_url,
            secret,
            timeout=self.settings.timeout,
            retries=self.settings.retries,
            backoff=self.settings.backoff,
            observe=self._observe,
            key_id=key_id,
            hand_back_not_taken=True,
            image_format=self.settings.image_format,
        )

    async def start(self) -> None:
        """Register the environment's keys and read every key's row."""
        await key_rows.register(self.db, self._env)
        await self.refresh(force=True)
        if not self.rotation():
            log.warning("upstream.no_key", message="no xAI key is in rotation: generation answers 503")

    async def refresh(self, *, force: bool = False) -> None:
        """Re-read the keys' rows when `refresh` seconds have passed: added keys join, refused ones leave."""
        if not force and time.monotonic() - self._loaded_at < self.settings.refresh:
            return
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if not force and time.monotonic() - self._loaded_at < self.settings.refresh:
                return
            async with self.db.reader() as session:
                rows = await key_rows.all_keys(session)
            secrets = {key.id: key.secret for key in self._env}
            seen: set[str] = set()
            for row in rows:
                secret = row.secret if row.source == "db" else secrets.get(row.id)
                if secret is None:
                    continue  # an environment key this process was not given
                seen.add(row.id)
                known = self._keys.get(row.id)
                if known is None:
                    known = self._keys[row.id] = PoolKey(row.id, row.name, self._client(row.id, secret))
                known.status, known.reason = row.status, row.status_reason
                known.image_rps, known.video_rps = row.image_rps, row.video_rps
            for gone in set(self._keys) - seen:
                await self._keys.pop(gone).client.aclose()
            self._loaded_at = time.monotonic()
        self._report()

    def _report(self) -> None:
        if self._metrics is None:
            return
        for key in self._keys.values():
            for status in key_rows.STATUSES:
                self._metrics.upstream_keys.labels(key.id, status).set(1 if key.status == status else 0)

    def rotation(self) -> list[PoolKey]:
        return [key for key in self._keys.values() if key.status == "active"]

    def health(self) -> list[dict[str, Any]]:
        """Every key this process knows, for `/readyz` and the admin CLI (never the secret)."""
        return [{"id": k.id, "name": k.name, "status": k.status, "reason": k.reason} for k in self._keys.values()]

    def _rps(self, key: PoolKey, kind: Kind) -> int | None:
        own = key.image_rps if kind == "image" else key.video_rps
        default = self.settings.image_rps if kind == "image" else self.settings.video_rps
        rate = own if own is not None else default
        return rate or None

    @property
    def paces_videos(self) -> bool:
        return any(self._rps(key, "video") for key in self.rotation())

    async def _refuse(self, key: PoolKey, reason: str) -> None:
        log.warning("upstream.key_refused", key=key.id, reason=reason[:300])
        key.status, key.reason = "refused", reason
        with contextlib.suppress(Exception):  # the row is for the other processes; this one knows already
            await key_rows.refuse(self.db, key.id, reason)
        self._report()

    # --- pace -----------------------------------------------------------------------------------------------------

    async def _take_any(self, kind: Kind) -> tuple[PoolKey | None, float]:
        """A key of the rotation that took a slot now, trying them in turn; else how long until one may."""
        rotation = self.rotation()
        if not rotation:
            raise NoUpstreamKey("no xAI key is in rotation (every key was refused or disabled)")
        self._next = (self._next + 1) % len(rotation)
        ordered = rotation[self._next :] + rotation[: self._next]
        soonest = float("inf")
        now = time.monotonic()
        for key in ordered:
            held = max(self._held.get((key.id, kind), 0.0), self._busy_until.get((key.id, kind), 0.0)) - now
            if held > 0:
                soonest = min(soonest, held)
                continue
            rate = self._rps(key, kind)
            if rate is None or self.pace is None:
                return key, 0.0
            gap = spacing(rate)
            wait = await self.pace.take(key.id, kind, gap)
            self._busy_until[(key.id, kind)] = time.monotonic() + (wait if wait > 0 else gap)
            if wait <= 0:
                return key, 0.0
            soonest = min(soonest, wait)
        return None, soonest

    async def _dispatch(self, kind: Kind) -> None:
        """Hand each slot that frees to the next lane, while anybody waits."""
        room = self._rooms[kind]
        while room.waiting:
            try:
                key, wait = await self._take_any(kind)
            except NoUpstreamKey as exc:
                room.fail_all(exc)
                return
            except Exception:
                log.warning("upstream.pace_unavailable", exc_info=True)
                await asyncio.sleep(0.1)
                continue
            if key is None:
                await asyncio.sleep(min(wait, 1.0))
                continue
            room.hand(key)

    async def _slot(self, kind: Kind, lane: str, wait: float) -> PoolKey | None:
        """A key that may take one submission of `kind` now, waiting up to `wait` seconds for one."""
        room = self._rooms[kind]
        if not room.waiting:  # nobody is ahead: no turn to take
            key, _ = await self._take_any(kind)
            if key is not None or wait <= 0:
                return key
        task = self._dispatchers.get(kind)
        if task is None or task.done():
            self._dispatchers[kind] = asyncio.create_task(self._dispatch(kind), name=f"grokgate-pace-{kind}")
        started = time.monotonic()
        try:
            key = await room.wait(lane, wait)
        except RoomFull as exc:
            raise UpstreamBusy(str(exc), retry_after=5.0) from exc
        if self._metrics is not None and key is not None:
            self._metrics.upstream_waits.labels(kind).observe(time.monotonic() - started)
        return key

    # --- calls ----------------------------------------------------------------------------------------------------

    async def _through_keys(
        self, kind: Kind, lane: str, wait: float, call: Callable[[XaiUpstream], Awaitable[T]]
    ) -> tuple[PoolKey, T] | None:
        """Run `call` on a key with room; another key when one refuses or is busy. None: no slot within `wait`."""
        await self.refresh()
        deadline = time.monotonic() + wait
        busy = 0
        while True:
            key = await self._slot(kind, lane, max(0.0, deadline - time.monotonic()))
            if key is None:
                return None
            try:
                result = await call(key.client)
            except UpstreamKeyRefused as exc:
                await self._refuse(key, str(exc))
                continue
            except UpstreamNotTaken as exc:
                busy += 1
                pause = exc.retry_after or self.settings.backoff * 2 ** min(busy, 6)
                log.warning("upstream.not_taken", key=key.id, kind=kind, pause=pause, error=str(exc))
                self._held[(key.id, kind)] = time.monotonic() + pause
                if self.pace is not None and self._rps(key, kind):
                    with contextlib.suppress(Exception):  # so that the other processes hold off too
                        await self.pace.hold_off(key.id, kind, pause)
                if busy >= self.settings.retries * max(1, len(self.rotation())):
                    raise UpstreamError(f"xAI answered 429/503 on every key, {busy} times: {exc}") from exc
                continue
            if self._metrics is not None:
                self._metrics.upstream_submits.labels(key.id, kind).inc()
            return key, result

    async def generate_image(self, request: ImageRequest) -> ImageResult:
        wait = self.settings.image_wait
        done = await self._through_keys("image", request.lane, wait, lambda client: client.generate_image(request))
        if done is None:
            raise UpstreamBusy(f"every xAI key's image pace was spoken for during {wait:g} s", retry_after=5.0)
        return done[1]

    async def submit_video(self, request: VideoRequest, *, wait: bool = True) -> Submission | None:
        """With `wait`, waits as long as it takes (the submitter's job rows hold their lease meanwhile)."""
        seconds = 3600.0 if wait else 0.0
        done = await self._through_keys("video", request.lane, seconds, lambda client: client.submit_video(request))
        if done is None:
            return None
        key, submission = done
        return Submission(submission.request_id if submission else "", key.id)

    async def poll_video(self, request_id: str, key_id: str | None = None) -> VideoPoll:
        await self.refresh()
        key = self._keys.get(key_id) if key_id is not None else next(iter(self._keys.values()), None)
        if key is None:
            raise UpstreamKeyRefused(f"the xAI key that created request {request_id} is no longer configured")
        return await key.client.poll_video(request_id)

    async def aclose(self) -> None:
        for task in self._dispatchers.values():
            task.cancel()
        for task in self._dispatchers.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for key in self._keys.values():
            await key.client.aclose()
        if self.pace is not None:
            await self.pace.aclose()
