"""The retry schedule of webhook deliveries, as plain functions."""

from __future__ import annotations

import random
import re

_STEP = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DEFAULT_SCHEDULE = "5s,30s,2m,10m,1h,3h,6h,12h"


def parse_schedule(text: str) -> tuple[float, ...]:
    """`5s,30s,2m` -> (5.0, 30.0, 120.0): the waits before the first, second, ... retry."""
    steps = []
    for part in text.split(","):
        match = _STEP.match(part)
        if match is None:
            raise ValueError(f"bad step {part!r} in webhook retry schedule (use e.g. 5s, 2m, 1h)")
        steps.append(float(match[1]) * _UNIT[match[2]])
    return tuple(steps)


def next_retry_in(attempts: int, schedule: tuple[float, ...], rng: random.Random | None = None) -> float | None:
    """Seconds until the next try after `attempts` failed ones, with ±20 % jitter; None when the schedule is spent."""
    if attempts < 1 or attempts > len(schedule):
        return None
    jitter = (rng or random).uniform(0.8, 1.2)
    return schedule[attempts - 1] * jitter
