"""The commands between the SDK's logic and its transports, and the pure rules both sides share.

Every operation of the SDK (`operations.py`) is a generator that yields commands (send this request, sleep this
long, open an event stream, read its next event, download this link) and is sent back what happened. It does no
I/O itself, so one operation serves both clients: `Client` carries the commands out with a blocking
`httpx.Client`, `AsyncClient` with an `httpx.AsyncClient` (the "sans-I/O" shape of h11 and h2). Failures of the
network come back as `TransportFailure` values, never as exceptions, so retry rules live in one place.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from grokgate.client.errors import retry_after_seconds

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One HTTP request. `url` is a path under the base URL or an absolute URL (a media link)."""

    method: str
    url: str
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    safe_to_repeat: bool = True
    """May it be sent again after a connection broke mid-way? True for reads and for POSTs with an
    Idempotency-Key (the gateway answers a repeat from its record); never for a POST without one."""


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, headers (lower-case names) and the body parsed as JSON (None if it is not)."""

    status: int
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class TransportFailure:
    """The request did not get an answer: no connection, a timeout, a connection cut before the answer ended."""

    error: Exception
    timeout: bool = False


@dataclass(frozen=True)
class Send:
    """Send `call` once; answered with a `Reply` or a `TransportFailure`."""

    call: Call


@dataclass(frozen=True)
class Sleep:
    """Wait this many seconds; answered with None."""

    seconds: float


@dataclass(frozen=True)
class Listen:
    """Open a Server-Sent Events stream; answered with a `Reply` (body None when the stream is open, the parsed
    error body otherwise) or a `TransportFailure`. Reads time out after `read_timeout` seconds of silence."""

    call: Call
    read_timeout: float


@dataclass(frozen=True)
class NextEvent:
    """Read the open stream up to its next event; answered with a `ServerSentEvent`, a `Heartbeat`, None when
    the stream ended, or a `TransportFailure`."""


@dataclass(frozen=True)
class CloseStream:
    """Close the open stream (also done when an operation ends in any way); answered with None."""


@dataclass(frozen=True)
class Download:
    """Stream `url` (a signed media link: no API key is sent) into a file; answered with the `Path` written, a
    `Reply` for an error answer, or a `TransportFailure`. The file appears whole or not at all."""

    url: str
    destination: Path
    stem: str
    """The file's name without suffix when `destination` is a directory (the suffix follows the content type)."""


Command = Send | Sleep | Listen | NextEvent | CloseStream | Download
Op = Generator[Command, Any, T]
"""An operation: yields commands, receives their outcomes, returns its result."""


@dataclass(frozen=True)
class ServerSentEvent:
    """One event of a stream: its `event` name (`message` when unnamed) and its `data`."""

    event: str
    data: str


@dataclass(frozen=True)
class Heartbeat:
    """A comment line (`: keep-alive`): the stream is alive, and a waiter may look at its clock."""


class SseDecoder:
    """Server-Sent Events, line by line, as the WHATWG specification reads them (only `event` and `data` are used)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> ServerSentEvent | Heartbeat | None:
        """Take one line (without its line ending); an event when a blank line completes one."""
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = ServerSentEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return Heartbeat()
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a request again: 429 and 503 (the gateway took nothing: nothing was charged) honouring
    `Retry-After` when it is at most `max_wait` seconds, and broken connections of requests safe to repeat; at most
    `max_retries` times, with jittered exponential back-off where the gateway gave no hint."""

    max_retries: int = 2
    max_wait: float = 20.0
    backoff: float = 0.5
    backoff_cap: float = 8.0

    def _backoff(self, attempt: int) -> float:
        delay: float = min(self.backoff_cap, self.backoff * 2.0**attempt)
        return delay * random.uniform(0.75, 1.25)

    def after_reply(self, attempt: int, reply: Reply) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give the answer to the caller."""
        if reply.status not in (429, 503) or attempt >= self.max_retries:
            return None
        hinted = retry_after_seconds(reply.headers)
        if hinted is None:
            hinted = _retry_after_in(reply.body)
        if hinted is None:
            return self._backoff(attempt)
        return hinted if hinted <= self.max_wait else None

    def after_failure(self, attempt: int, call: Call) -> float | None:
        """Seconds to wait before sending `call` again after a transport failure, or None to give up."""
        if not call.safe_to_repeat or attempt >= self.max_retries:
            return None
        return self._backoff(attempt)


def _retry_after_in(body: Any) -> float | None:
    """`details.retryAfter` of an error body: the same hint, where an answer carries it without the header (a
    refusal under an Idempotency-Key answers with the stored body only)."""
    details = body.get("details") if isinstance(body, dict) else None
    value = details.get("retryAfter") if isinstance(details, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


SUFFIXES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "image/gif": ".gif",
}


def destination_for(destination: Path, stem: str, content_type: str | None) -> Path:
    """Where a download goes: `destination` itself, or a file named `stem` with the content type's suffix when
    `destination` is a directory."""
    if not destination.is_dir():
        return destination
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return destination / f"{stem}{SUFFIXES.get(kind, '.bin')}"


def part_path(final: Path) -> Path:
    """The file a download is written to before it is renamed into place."""
    return final.with_name(f".{final.name}.part")
