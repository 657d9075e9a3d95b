"""Where a job goes next, decided from what was observed. Plain functions over plain data.

    pending ──poll: not yet──▶ processing ──poll: done──▶ completed
       │                           │
       ├──── failed / expired / moderated / unknown id / deadline / lost submit ──▶ failed (+ refund)
       └──── cancelled by the customer ──▶ cancelled (+ refund)

A job leaves `pending`/`processing` exactly once: the service applies a decision with an UPDATE conditioned on the
job still being active, in the same transaction as the refund, so a refund cannot happen twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from grokgate.storage.stored import StoredMedia
from grokgate.upstream.base import VideoPoll

ACTIVE = ("pending", "processing")
TERMINAL = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class Deliver:
    """xAI has the result at `url`: copy it into our storage, then complete."""

    url: str
    duration: float | None = None
    cost_in_usd_ticks: int | None = None


@dataclass(frozen=True)
class Complete:
    """The result is stored: these media, and for a video its duration."""

    media: tuple[StoredMedia, ...]
    duration: float | int | None = None
    cost_in_usd_ticks: int | None = None
    refund: int = 0
    """Credits given back for what was asked but not delivered (images xAI withheld), in the same transaction."""


@dataclass(frozen=True)
class Fail:
    """The job ends without a result: its charge is refunded."""

    code: str
    message: str
    cost_in_usd_ticks: int | None = None


@dataclass(frozen=True)
class Cancel:
    """The customer cancelled: the charge is refunded. xAI has no cancel call, so a started video is still paid."""

    upstream_started: bool
    cost_in_usd_ticks: int | None = None

    @property
    def code(self) -> str:
        return "CANCELLED"

    @property
    def message(self) -> str:
        if self.upstream_started:
            return "Cancelled by the customer; xAI had already started, so its cost was spent"
        return "Cancelled by the customer before xAI started"


@dataclass(frozen=True)
class Wait:
    status: str
    next_poll_at: datetime
    progress: int | None = None
    """xAI's progress percentage, when the poll carried one."""


Ending = Complete | Fail | Cancel
Decision = Deliver | Fail | Wait


def seconds(duration: float | None, requested: int | None) -> float | int | None:
    """The video's duration as xAI reported it (whole seconds as an int), else as requested."""
    value: float | int | None = duration if duration is not None else requested
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value


def stored_output(media_ids: dict[str, list[str]], duration: float | int | None) -> dict[str, Any]:
    """What a completed job keeps in `output`: ids of its stored media (links are made fresh on every read)."""
    output: dict[str, Any] = {"media": media_ids}
    if duration is not None:
        output["duration"] = duration
    return output


def after_poll(
    poll: VideoPoll,
    *,
    now: datetime,
    deadline: datetime,
    interval: float,
    requested_duration: int | None,
    not_before: datetime | None = None,
) -> Decision:
    """`not_before`: when videos like this one are seldom done yet (`render_times`); a video still rendering is
    polled again after `interval`, and not before that moment."""
    if poll.state == "done" and poll.url:
        return Deliver(poll.url, seconds(poll.duration, requested_duration), poll.cost_in_usd_ticks)
    if poll.state == "pending":
        delay = interval if not_before is None else max(interval, (not_before - now).total_seconds())
        waiting = after_silence(now=now, deadline=deadline, delay=delay, status="processing")
        if isinstance(waiting, Wait) and poll.progress is not None:
            return replace(waiting, progress=max(0, min(100, poll.progress)))
        return waiting
    code = {
        "not_found": "UPSTREAM_NOT_FOUND",
        "expired": "UPSTREAM_EXPIRED",
        "moderated": "CONTENT_MODERATED",
    }
    return Fail(
        code.get(poll.state, f"UPSTREAM_{(poll.error_code or 'failed').upper()}"),
        poll.error_message or "xAI reported the video as failed",
        poll.cost_in_usd_ticks,
    )


def after_silence(*, now: datetime, deadline: datetime, delay: float, status: str) -> Fail | Wait:
    """No answer yet (still rendering, or xAI unreachable for now): wait, unless the deadline has passed."""
    if now >= deadline:
        return Fail("DEADLINE_EXCEEDED", "xAI did not finish the video before the job's deadline")
    return Wait(status=status, next_poll_at=min(now + timedelta(seconds=delay), deadline))


def retry_delay(interval: float, failures: int) -> float:
    """Back off after consecutive failed polls: interval, 2x, 4x ... capped at 60 s (or interval if larger)."""
    return min(interval * float(1 << min(failures, 8)), max(60.0, interval))


def lost_request(kind: str) -> Fail:
    """The process that held this job died before knowing xAI's outcome: nothing can be delivered."""
    if kind == "video":
        return Fail("SUBMIT_INTERRUPTED", "The video submission was interrupted before xAI confirmed it")
    return Fail("REQUEST_INTERRUPTED", "The image request was interrupted before a result was received")
