"""How a client held on a job (`Prefer: wait`, `/events`) learns that the job changed, without reading it over and
over.

A held client `watch`es its job and sleeps until woken; only then does it read the job, once. Writes that a client
would see note the job as changed (`jobs/repository.py`), and the `Database` tells this notifier once that
transaction has committed (`Database.on_commit`). The notifier wakes the job's watchers in this process at once,
and tells the other processes over one channel, chosen by one rule:

- `GROKGATE_REDIS_URL` set: Redis pub/sub (the store the processes already share for rate limits and pacing);
- otherwise, on PostgreSQL: `LISTEN`/`NOTIFY` on one dedicated connection per process;
- otherwise (SQLite without Redis): none; a process hears only of its own changes.

A notification can be lost: a process dies between its commit and its publish, the channel is down for a while,
SQLite has none between processes. So every `recheck` seconds (`GROKGATE_WAIT_RECHECK`, 5) the notifier reads the
status of every job watched in this process, a thousand jobs to a statement, and wakes the watchers whose job is
no longer as they last saw it. What held clients cost the database is then one read per client per change of its
job, plus that batch every few seconds: flat in the number of clients, where a poll per client grew with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Protocol

import asyncpg  # type: ignore[import-untyped]
import structlog
from redis.asyncio import Redis

from grokgate.config import Settings
from grokgate.db.engine import Changes, Database, States
from grokgate.jobs import repository
from grokgate.jobs import states as states_
from grokgate.jobs.models import Job
from grokgate.metrics import Metrics

log = structlog.get_logger(__name__)

CHANNEL = "grokgate_jobs"
"""The PostgreSQL channel and the Redis channel the processes tell each other on."""
PAYLOAD_CHARS = 7000
"""Most characters in one message (PostgreSQL refuses a `NOTIFY` payload of 8000 bytes)."""
ENDED_KEPT_SECONDS = 10.0
"""How long a job this process ended is handed to its woken clients instead of being read again."""
RECHECK_BATCH = 1000
"""Jobs read in one statement when the watched jobs are checked."""


class Watch:
    """One held client's interest in one job: woken when the job may have changed."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.seen: tuple[str, datetime] | None = None
        """The job's status and `updatedAt` as the client last read them; the recheck compares against these."""
        self.woken_at = time.monotonic()
        """When it was last woken (or began): a read of the job begun since then shows the change it was woken for."""
        self._woken = asyncio.Event()

    def saw(self, status: str, updated_at: datetime) -> None:
        self.seen = (status, updated_at)

    def wake(self) -> None:
        self.woken_at = time.monotonic()
        self._woken.set()

    async def wait(self, seconds: float) -> bool:
        """Sleep until woken or until `seconds` pass; returns whether it was woken. A wake that came while
        the client was reading the job is kept, so the next wait returns at once and no change is missed."""
        if not self._woken.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, seconds)):
                    await self._woken.wait()
        woken = self._woken.is_set()
        self._woken.clear()
        return woken


class Channel(Protocol):
    """How processes tell each other which jobs changed."""

    name: str

    async def listen(self, heard: Callable[[str], None], ready: Callable[[], None]) -> None:
        """Subscribe, call `ready`, then hand every message to `heard` until the connection is lost (by returning
        or raising)."""

    async def send(self, payload: str) -> None: ...

    async def aclose(self) -> None: ...


class PostgresChannel:
    """`LISTEN`/`NOTIFY` on one connection of its own (outside the pool), which also sends this process's news."""

    name = "postgresql"

    def __init__(self, dsn: str, metrics: Metrics | None = None) -> None:
        self.dsn = dsn
        self.metrics = metrics
        self._conn: asyncpg.Connection | None = None

    async def listen(self, heard: Callable[[str], None], ready: Callable[[], None]) -> None:
        conn = await asyncpg.connect(self.dsn)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, lambda _conn, _pid, _channel, payload: heard(str(payload)))
            self._count()
            self._conn = conn
            ready()
            await lost.wait()
        finally:
            self._conn = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)

    async def send(self, payload: str) -> None:
        if self._conn is None:
            raise ConnectionError("not connected to PostgreSQL's notifications")
        await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
        self._count()

    def _count(self) -> None:
        """Statements on this connection count with the pool's, so the benchmark's figures include them."""
        if self.metrics is not None:
            self.metrics.db_statements.inc()

    async def aclose(self) -> None:
        return None


class RedisChannel:
    """Redis pub/sub: one subscribed connection per process; messages are published through the client's pool."""

    name = "redis"

    def __init__(self, url: str) -> None:
        self.redis: Redis = Redis.from_url(url)

    async def listen(self, heard: Callable[[str], None], ready: Callable[[], None]) -> None:
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            while (await pubsub.get_message(timeout=10.0) or {}).get("type") != "subscribe":
                pass  # the server has confirmed the subscription: nothing published from now on is missed
            ready()
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    data = message["data"]
                    heard(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def send(self, payload: str) -> None:
        await self.redis.publish(CHANNEL, payload)

    async def aclose(self) -> None:
        await self.redis.aclose()


def channel_for(settings: Settings, db: Database, metrics: Metrics | None = None) -> Channel | None:
    """Redis when there is one, else PostgreSQL's own notifications, else none (SQLite without Redis)."""
    if settings.redis_url:
        return RedisChannel(settings.redis_url)
    if not db.is_sqlite:
        dsn = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresChannel(dsn, metrics)
    return None


def payloads(origin: str, job_ids: Iterable[str]) -> list[str]:
    """Messages naming the changed jobs (`origin:id,id,...`), each under `PAYLOAD_CHARS`."""
    messages: list[str] = []
    batch: list[str] = []
    size = len(origin) + 1
    for job_id in sorted(job_ids):
        if batch and size + len(job_id) + 1 > PAYLOAD_CHARS:
            messages.append(f"{origin}:{','.join(batch)}")
            batch, size = [], len(origin) + 1
        batch.append(job_id)
        size += len(job_id) + 1
    if batch:
        messages.append(f"{origin}:{','.join(batch)}")
    return messages


class JobNotifier:
    def __init__(self, db: Database, *, channel: Channel | None = None, recheck: float = 5.0) -> None:
        self.db = db
        self.channel = channel
        self.recheck = recheck
        self.origin = secrets.token_hex(6)
        """Names this process in its messages, so that it ignores its own (it woke its watchers already)."""
        self.listening = asyncio.Event()
        """Set while the channel is subscribed."""
        self._watches: dict[str, set[Watch]] = {}
        self._ended: dict[str, tuple[float, Job]] = {}
        """Jobs this process ended in the last `ENDED_KEPT_SECONDS`, by id, oldest first (see `ended`)."""
        self._outbox: set[str] = set()
        self._outbox_ready = asyncio.Event()
        self._recheck_now = asyncio.Event()
        self._unsubscribe = db.on_commit(self._committed)

    @property
    def watching(self) -> int:
        """Clients held on a job in this process now that have read it once."""
        return sum(1 for watches in self._watches.values() for watch in watches if watch.seen is not None)

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[Watch]:
        """Be woken when `job_id` changes, for as long as the block runs. Watch first, then read the job: a change
        between the two then still wakes the client."""
        watch = Watch(job_id)
        self._watches.setdefault(job_id, set()).add(watch)
        try:
            yield watch
        finally:
            watches = self._watches.get(job_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[job_id]

    def wake(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            for watch in self._watches.get(job_id, ()):
                watch.wake()

    def ended(self, job_id: str) -> Job | None:
        """The job as its ending left it, when this process ended it a moment ago (without its `input`): what a
        client woken by the ending would read. None otherwise."""
        found = self._ended.get(job_id)
        if found is None or found[0] < time.monotonic() - ENDED_KEPT_SECONDS:
            return None
        return found[1]

    def _committed(self, changes: Changes, states: States) -> None:
        job_ids = changes.get(repository.JOBS)
        if not job_ids:
            return
        now = time.monotonic()
        for job_id in job_ids:
            state = states.get((repository.JOBS, job_id))
            if state is not None and state.status in states_.TERMINAL:
                self._ended[job_id] = (now, state)
            else:
                self._ended.pop(job_id, None)
        while self._ended and next(iter(self._ended.values()))[0] < now - ENDED_KEPT_SECONDS:
            del self._ended[next(iter(self._ended))]
        self.wake(job_ids)
        if self.channel is not None:
            self._outbox |= job_ids
            self._outbox_ready.set()

    def _heard(self, payload: str) -> None:
        origin, _, job_ids = payload.partition(":")
        if origin != self.origin and job_ids:
            changed = job_ids.split(",")
            for job_id in changed:  # changed by another process since this one ended it
                self._ended.pop(job_id, None)
            self.wake(changed)

    def _connected(self) -> None:
        self.listening.set()
        self._recheck_now.set()  # whatever changed while nobody listened was not heard: look now

    async def run(self, stop: asyncio.Event) -> None:
        """Listen, send and recheck until `stop`; then send what is still to be sent, briefly, and close."""
        tasks = [asyncio.create_task(self._rechecks(), name="grokgate-notify-recheck")]
        if self.channel is not None:
            tasks.append(asyncio.create_task(self._listens(), name="grokgate-notify-listen"))
            tasks.append(asyncio.create_task(self._sends(), name="grokgate-notify-send"))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._unsubscribe()
            if self.channel is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._flush(), 1.0)
                with contextlib.suppress(Exception):
                    await self.channel.aclose()

    async def _listens(self) -> None:
        assert self.channel is not None
        backoff = 0.5
        while True:
            try:
                await self.channel.listen(self._heard, self._connected)
                log.warning("notifications.lost", channel=self.channel.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notifications.unavailable", channel=self.channel.name, error=repr(exc)[:300])
            if self.listening.is_set():
                backoff = 0.5  # it worked until now: try again soon
            self.listening.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _sends(self) -> None:
        """Send what committed, batched: changes that commit while a message is on its way go in the next one."""
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            await self._flush()

    async def _flush(self) -> None:
        assert self.channel is not None
        job_ids, self._outbox = self._outbox, set()
        for payload in payloads(self.origin, job_ids):
            try:
                await self.channel.send(payload)
            except Exception as exc:  # the other processes find out at their next recheck
                log.warning("notifications.send_failed", channel=self.channel.name, error=repr(exc)[:300])
                return

    async def _rechecks(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.recheck):
                    await self._recheck_now.wait()
            self._recheck_now.clear()
            try:
                await self.recheck_watched()
            except Exception as exc:
                log.warning("notifications.recheck_failed", error=repr(exc)[:300])

    async def recheck_watched(self) -> int:
        """Read the state of every watched job, in batches, and wake the watchers who last saw another; returns
        how many were woken. This is what ends a wait whose notification was lost."""
        job_ids = [job_id for job_id, watches in self._watches.items() if any(w.seen is not None for w in watches)]
        if not job_ids:
            return 0
        found: dict[str, tuple[str, datetime]] = {}
        async with self.db.reader() as session:
            for start in range(0, len(job_ids), RECHECK_BATCH):
                found |= await repository.watched_states(session, job_ids[start : start + RECHECK_BATCH])
        woken = 0
        for job_id in job_ids:
            for watch in self._watches.get(job_id, ()):
                if watch.seen is not None and watch.seen != found.get(job_id):
                    watch.wake()
                    woken += 1
        return woken
