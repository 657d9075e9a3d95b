"""xAI's per-team request rate limits (image models 5 requests/s, video models 1 request/s), per API key.

A sliding-window log: a key's accepted submits of one kind in the last second are kept, and one more is refused
while there are already `rate` of them. So no window of one second ever holds more than `rate` accepted
requests, which is what a gateway pacing itself against xAI has to get right. Refused requests are not logged
(they did not use the budget), and polls are not counted: xAI limits model calls, not reads of a result.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["image", "video"]
WINDOW = 1.0
MAX_KEYS = 10_000
"""Keys whose windows are kept; beyond it the idlest go (a key idle for a second has an empty window anyway)."""


@dataclass
class Pacer:
    image_rps: int | None = None
    video_rps: int | None = None
    windows: dict[tuple[str, Kind], deque[float]] = field(default_factory=dict)

    def admit(self, key_id: str, kind: Kind) -> float | None:
        """None if the request may go; otherwise the seconds until it would (for `Retry-After`)."""
        rate = self.image_rps if kind == "image" else self.video_rps
        if rate is None:
            return None
        now = time.monotonic()
        window = self.windows.pop((key_id, kind), None) or deque()
        while window and window[0] <= now - WINDOW:
            window.popleft()
        self.windows[(key_id, kind)] = window  # re-inserted last: the dict's order is least recently used first
        while len(self.windows) > MAX_KEYS:
            del self.windows[next(iter(self.windows))]
        if len(window) >= rate:
            return max(0.0, window[len(window) - rate] + WINDOW - now)
        window.append(now)
        return None


def retry_after(wait: float) -> str:
    """`Retry-After` takes whole seconds; never 0, which a client would read as "at once"."""
    return str(max(1, math.ceil(wait)))
