"""How long xAI takes to render a video, learned from the videos this process saw finish, so that a video is not
polled again and again while it cannot be ready yet.

xAI has no push: the poller asks every `interval` seconds. A video that takes a minute (xAI: "tens of seconds to a
few minutes") would be asked a dozen times before anything can come of it, each ask an upstream call, a database
write and CPU that the videos that are ready need more. So once a poll has said "not yet", the next one waits until
`interval` has passed *and* the video has reached the age at which videos of its kind (model, duration, resolution)
have been seen finishing: the low `QUANTILE` of the ones observed lately. A fast one therefore waits at most one
interval longer than before, and only if it is faster than all but a tenth of its kind.

What is observed is a lower bound of each video's render time: from xAI taking it (`submitted_at`) to the last
poll that still heard "not yet" (`polled_at`). Its true time is later, never earlier, so the schedule errs towards
polling early. (The poll that saw `done` would give an upper bound, and under load it is late by the poller's
backlog: learning from it would push polls later the busier the poller is, and the backlog would feed itself.)

The first poll of a video waits the same way. One object per process, shared by whatever submits there (a request,
the submitter) and its poller; kept in memory, so after a restart videos are asked every interval until the poller
has seen `LEAST` of a kind again, and a process that submits but does not poll (`serve --no-background` beside a
`worker`) always asks first after one interval. Plain data and arithmetic; no I/O.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta
from typing import Any

KEEP = 256
"""Observations kept per kind: the latest, so the schedule follows xAI when it speeds up or slows down."""
LEAST = 20
"""Observations of a kind before its render time is trusted."""
QUANTILE = 0.1


def kind_of(model: str, job_input: dict[str, Any]) -> Hashable:
    """Videos that take alike: the model (ours and xAI's) and what sets the work, its length and resolution."""
    return (model, job_input.get("model"), job_input.get("duration"), job_input.get("resolution"))


def low_quantile(observed: Sequence[float], quantile: float = QUANTILE) -> float:
    """The nearest-rank `quantile` of `observed` (not empty)."""
    ranked = sorted(observed)
    return ranked[max(0, math.ceil(quantile * len(ranked)) - 1)]


def rendered_at_least(submitted_at: datetime | None, polled_at: datetime | None) -> float | None:
    """Seconds the video is known to have taken: from xAI taking it to the last "not yet". None if either is
    unknown (a job from before these were recorded, or one that was done at its first poll)."""
    if submitted_at is None or polled_at is None or polled_at <= submitted_at:
        return None
    return (polled_at - submitted_at).total_seconds()


class RenderTimes:
    """The latest observed render times per kind of video, and the age before which such a video is seldom done."""

    def __init__(self, *, keep: int = KEEP, least: int = LEAST, quantile: float = QUANTILE) -> None:
        self.keep, self.least, self.quantile = keep, least, quantile
        self._seen: dict[Hashable, deque[float]] = {}
        self._earliest: dict[Hashable, float | None] = {}

    def observe(self, kind: Hashable, seconds: float) -> None:
        self._seen.setdefault(kind, deque(maxlen=self.keep)).append(seconds)
        self._earliest.pop(kind, None)

    def first_poll(self, kind: Hashable, submitted_at: datetime, interval: float) -> datetime:
        """When to ask about a video xAI has just taken: after `interval`, and not before its kind is seen
        finishing."""
        return max(submitted_at + timedelta(seconds=interval), self.not_before(kind, submitted_at) or submitted_at)

    def not_before(self, kind: Hashable, submitted_at: datetime | None) -> datetime | None:
        """The moment before which a video of `kind` taken at `submitted_at` is seldom done; None if unknown."""
        earliest = self.earliest(kind)
        if earliest is None or submitted_at is None:
            return None
        return submitted_at + timedelta(seconds=earliest)

    def earliest(self, kind: Hashable) -> float | None:
        """Seconds after submission before which videos of `kind` are seldom done; None until `least` were seen."""
        if kind not in self._earliest:
            seen = self._seen.get(kind, ())
            self._earliest[kind] = low_quantile(seen, self.quantile) if len(seen) >= self.least else None
        return self._earliest[kind]
