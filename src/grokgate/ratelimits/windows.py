"""The rule of a plan's rate windows: sliding-window counters, checked and counted for all windows at once.

Each window (a minute, an hour, a day) keeps two counts: requests in its current span and in the span before. The
requests "in the last window" are estimated as the current count plus the part of the previous count that the
window still overlaps (the previous span's requests taken as spread evenly), the scheme Cloudflare and `limits` use:
two numbers per window however busy it is, and never more than a few per cent off a log of every request.

A request is let in only if every window has room, and is then counted in every window; a request refused by one
window is counted in none. The store (in memory, or a Lua script in Redis) must do the check and the count as one
step, or a burst of requests that all look before any counts gets past the limit. Both stores run this module's
arithmetic (the Lua copy in `limiter.py` is written to match it operation for operation, in the same floating point)
and the tests run the same scenarios on both.

Time is whole milliseconds of the calling host's clock: windows last a minute or more, so the milliseconds that
NTP keeps hosts apart are of no account, and a clock that steps back never rolls a window back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from grokgate.ratelimits.plans import Plan


@dataclass(frozen=True)
class Window:
    name: str
    span_ms: int
    limit: int


def windows_of(plan: Plan) -> tuple[Window, ...]:
    """The plan's windows in the order a refusal names them: the first full one is the one reported."""
    return (
        Window("minute", 60_000, plan.rpm),
        Window("hour", 3_600_000, plan.rph),
        Window("day", 86_400_000, plan.rpd),
    )


@dataclass(frozen=True)
class Counts:
    """One window's stored state: which span `current` counts (its index, `now // span_ms`) and the span before."""

    index: int = -1
    current: int = 0
    previous: int = 0


def rolled(counts: Counts, index: int) -> Counts:
    """`counts` as seen from span `index`: unchanged in the same span (or a later one, if a clock stepped back),
    shifted by one span, or empty after two or more spans without a request."""
    if counts.index >= index:
        return counts
    if counts.index == index - 1:
        return Counts(index, 0, counts.current)
    return Counts(index, 0, 0)


def used(window: Window, counts: Counts, now_ms: int) -> int:
    """Requests estimated in the `span_ms` up to `now_ms`, from counts already rolled to `now_ms`'s span."""
    into = now_ms - (now_ms // window.span_ms) * window.span_ms
    return math.floor(float(counts.previous) * float(window.span_ms - into) / float(window.span_ms)) + counts.current


def admits(window: Window, counts: Counts, now_ms: int) -> bool:
    return used(window, counts, now_ms) + 1 <= window.limit


def retry_after_ms(window: Window, counts: Counts, now_ms: int) -> int:
    """Milliseconds until `window` has room for one request (no other request counted meanwhile).

    Room comes while the previous span's weight fades within this span; if the current count alone fills the
    window, only once the next span has begun and the current count, then the previous one, fades in its turn."""
    span = window.span_ms
    start = (now_ms // span) * span
    room = window.limit - 1
    if counts.current <= room:
        if counts.previous == 0:
            return 0
        # floor(previous * (span - into) / span) <= room - current, that is previous * (span - into) / span is
        # below room - current + 1: `into` past span * (1 - fraction).
        fraction = (room - counts.current + 1) / counts.previous
        return max(0, math.ceil(start + span * (1 - fraction) - now_ms) + 1)
    fraction = (room + 1) / counts.current
    return math.ceil(start + span + span * (1 - fraction) - now_ms) + 1


@dataclass(frozen=True)
class Decision:
    """What one request met: let in or not, the window that refused it, and each window's use after it."""

    admitted: bool
    refused_by: Window | None
    used: dict[str, int]
    retry_after_ms: int
    minute_reset_ms: int


def use_now(windows: tuple[Window, ...], stored: list[Counts], now_ms: int) -> Decision:
    """The windows' use at `now_ms`, counting nothing."""
    return describe(windows, _rolled_all(windows, stored, now_ms), now_ms, admitted=True, refused_by=None)


def _rolled_all(windows: tuple[Window, ...], stored: list[Counts], now_ms: int) -> list[Counts]:
    return [rolled(counts, now_ms // window.span_ms) for window, counts in zip(windows, stored, strict=True)]


def decide(windows: tuple[Window, ...], stored: list[Counts], now_ms: int) -> tuple[Decision, list[Counts]]:
    """Check every window, count the request in all of them if all admit it. Returns the decision and the counts to
    store (unchanged when refused)."""
    current = _rolled_all(windows, stored, now_ms)
    refused = next((w for w, c in zip(windows, current, strict=True) if not admits(w, c, now_ms)), None)
    if refused is None:
        current = [Counts(c.index, c.current + 1, c.previous) for c in current]
    return describe(windows, current, now_ms, admitted=refused is None, refused_by=refused), current


def describe(
    windows: tuple[Window, ...], current: list[Counts], now_ms: int, *, admitted: bool, refused_by: Window | None
) -> Decision:
    minute = windows[0]
    wait = 0
    if refused_by is not None:
        counts = current[windows.index(refused_by)]
        wait = retry_after_ms(refused_by, counts, now_ms)
    return Decision(
        admitted=admitted,
        refused_by=refused_by,
        used={w.name: used(w, c, now_ms) for w, c in zip(windows, current, strict=True)},
        retry_after_ms=wait,
        minute_reset_ms=minute.span_ms - (now_ms - (now_ms // minute.span_ms) * minute.span_ms),
    )
