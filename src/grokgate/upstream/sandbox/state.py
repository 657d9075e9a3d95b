"""What the sandbox remembers between requests, every part bounded by count, bytes or age.

The sandbox faces whatever reaches it (on first run, the customer port): a store that grows with each request is a
way to run the process out of memory. So the journal keeps the last few entries with large fields reduced to a
digest, videos are forgotten a while after they finish, served files are capped by count and bytes and expire with
their links, and the per-prompt submit counters keep only recent prompts, keyed by digest.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from grokgate.upstream.sandbox.scenarios import Scenario


@dataclass(frozen=True)
class Limits:
    journal_entries: int = 1000
    """Journal entries kept (the oldest go first)."""
    journal_field_bytes: int = 4096
    """A journalled string longer than this is kept as its size and SHA-256 only."""
    videos: int = 20_000
    """Video tasks kept (the benchmark's largest run submits 10 000)."""
    video_ttl: float = 3600.0
    """Seconds a video stays pollable after it is ready (xAI forgets deferred results too)."""
    files: int = 512
    files_bytes: int = 256 * 1024 * 1024
    file_ttl: float = 3600.0
    """Seconds a file link is valid; the file is dropped once no valid link to it remains."""
    prompts_counted: int = 10_000
    """Distinct prompts whose submits are counted (for `ratelimit=N` and `unavailable=N`)."""
    prompt_chars: int = 1000
    """Characters of a video's prompt kept to render it (the caption shows far fewer)."""


@dataclass
class VideoTask:
    prompt: str
    duration: int
    aspect_ratio: str | None
    scenario: Scenario
    ready_at: float
    """On the monotonic clock."""
    ready_wall: float
    """The same moment on the wall clock, which the benchmark compares with the gateway's finish times."""
    owner: str = ""
    """The key id (`key_id`) that submitted it: xAI answers a request id only to the team that made it."""
    model: str = "grok-imagine-video"
    resolution: str = "480p"
    cost_ticks: int = 0
    polls: int = 0
    media_name: str | None = None


@dataclass
class StoredFile:
    data: bytes
    content_type: str
    scenario: Scenario
    expires: float
    """Wall-clock time after which no link to it is valid any more."""


def key_id(api_key: str) -> str:
    """How the journal and the video tasks name a key: a short SHA-256, never the key itself."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


def digest(value: str | bytes) -> str:
    """How the journal shows a large field: its size and SHA-256, so tests can still compare it."""
    raw = value.encode() if isinstance(value, str) else value
    return f"<{len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()}>"


def summarise(value: Any, limit: int) -> Any:
    """A JSON value with every string longer than `limit` replaced by its digest."""
    if isinstance(value, str):
        return digest(value) if len(value) > limit else value
    if isinstance(value, dict):
        return {key: summarise(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [summarise(item, limit) for item in value]
    return value


@dataclass
class SandboxState:
    api_keys: tuple[str, ...] | None
    """The keys accepted; None: any key (a standalone sandbox started without `--api-key`)."""
    video_seconds: float
    limits: Limits = field(default_factory=Limits)
    inspect: bool = False
    videos: OrderedDict[str, VideoTask] = field(default_factory=OrderedDict)
    files: OrderedDict[str, StoredFile] = field(default_factory=OrderedDict)
    files_bytes: int = 0
    pinned: set[str] = field(default_factory=set)
    submits: OrderedDict[str, int] = field(default_factory=OrderedDict)
    journal: deque[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.journal = deque(maxlen=self.limits.journal_entries)

    def record(
        self, method: str, path: str, body: Any, *, key: str | None = None, model: str | None = None
    ) -> dict[str, Any]:
        """Journal a call, for tests to read at `/_sandbox/requests`: with the calling key's `key_id`, the model
        the body names (as sent) and when it arrived (Unix time), so a test can tell which key and model a call
        used and at what pace. A call refused by the rate limit is marked `"status": 429`. Nothing is kept when
        nobody may read it."""
        entry = {
            "method": method,
            "path": path,
            "body": summarise(body, self.limits.journal_field_bytes),
            "key": key,
            "model": model,
            "at": time.time(),
        }
        if self.inspect:
            self.journal.append(entry)
        return entry

    def count_submit(self, prompt: str | None) -> int:
        """This submit's number among those of the same prompt (1 for the first)."""
        key = hashlib.sha256((prompt or "").encode()).hexdigest()
        count = self.submits.pop(key, 0) + 1
        self.submits[key] = count
        while len(self.submits) > self.limits.prompts_counted:
            self.submits.popitem(last=False)
        return count

    def add_video(self, request_id: str, task: VideoTask) -> None:
        self.videos[request_id] = task
        now = time.monotonic()
        while self.videos:
            oldest = next(iter(self.videos.values()))
            if len(self.videos) <= self.limits.videos and oldest.ready_at + self.limits.video_ttl > now:
                break
            self.videos.popitem(last=False)

    def video(self, request_id: str) -> VideoTask | None:
        task = self.videos.get(request_id)
        if task is not None and task.ready_at + self.limits.video_ttl < time.monotonic():
            del self.videos[request_id]
            return None
        return task

    def keep(self, name: str, data: bytes, content_type: str, scenario: Scenario, *, pinned: bool = False) -> None:
        """Store a file to serve; the oldest go when there are too many or too many bytes. Pinned ones (the
        benchmark's pre-rendered media) never go."""
        self._drop(name)
        self.files[name] = StoredFile(data, content_type, scenario, expires=time.time() + self.limits.file_ttl)
        self.files_bytes += len(data)
        if pinned:
            self.pinned.add(name)
        self.prune(keep=name)

    def prune(self, keep: str | None = None) -> None:
        """Drop files from the oldest-linked end while there are too many, too many bytes, or expired ones."""
        now = time.time()
        for old in list(self.files):
            over = len(self.files) > self.limits.files or self.files_bytes > self.limits.files_bytes
            stale = self.files[old].expires < now and old not in self.pinned
            if not over and not stale:
                break
            if old not in self.pinned and old != keep:
                self._drop(old)

    def linked(self, name: str, expires: float) -> None:
        """A link valid until `expires` was handed out: keep the file at least that long."""
        found = self.files.get(name)
        if found is not None:
            found.expires = max(found.expires, expires)
            self.files.move_to_end(name)

    def file(self, name: str) -> StoredFile | None:
        found = self.files.get(name)
        if found is not None and found.expires < time.time() and name not in self.pinned:
            self._drop(name)
            return None
        return found

    def _drop(self, name: str) -> None:
        found = self.files.pop(name, None)
        if found is not None:
            self.files_bytes -= len(found.data)
