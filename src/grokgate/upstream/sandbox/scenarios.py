"""Prompt markers that steer the sandbox, parsed into a plain `Scenario`.

Write `[sandbox:NAME]` or `[sandbox:NAME=VALUE]` anywhere in a prompt:

| marker            | effect                                                                              |
|-------------------|-------------------------------------------------------------------------------------|
| `reject`          | submit answers 400 `invalid_argument` (a content-policy refusal)                    |
| `error500`        | submit answers 500                                                                  |
| `ratelimit=N`     | the first N submits of this prompt answer 429 with `Retry-After`                    |
| `unavailable=N`   | the first N submits of this prompt answer 503                                       |
| `hang=S`          | submit waits S seconds before answering                                             |
| `delay=S`         | the video is `done` S seconds after submission                                      |
| `never`           | the video never finishes                                                            |
| `fail`            | the video ends `failed`                                                             |
| `expire`          | the video ends `expired`                                                            |
| `moderate`        | the video ends `done` with `respect_moderation: false` and no URL                   |
| `gone`            | polls answer 404, as for an unknown request id                                      |
| `pollerror=N`     | the first N polls of the video answer 500                                           |
| `empty202`        | pending polls answer 202 with an empty body                                         |
| `deadurl`         | the result's URL answers 404 (xAI's temporary URL already gone)                     |
| `notmedia`        | the result's URL serves HTML instead of the image or video                          |
| `slowmedia=S`     | the result's URL waits S seconds before sending the bytes                           |
| `notjson`         | an image or video submit answers 200 with an HTML page, not JSON                    |
| `emptydata`       | an image submit answers 200 `{"data": [], "usage": ...}`                            |
| `nourl`           | an image submit answers 200 with items that have neither `url` nor `b64_json`       |
| `withheld=N`      | the last N image items (all, without N) have `respect_moderation: false`, no URL    |
| `nostatus`        | a finished video's poll answers 200 with `video` and `model` but no `status`        |
| `moderatedcost=N` | submit answers 400, a moderation refusal that carries `usage.cost_in_usd_ticks` (*) |
| `polljunk`        | every poll of the video answers 200 with an HTML page, not JSON                     |

(*) xAI bills moderated requests. Its error bodies come in two shapes: `moderatedcost` (N=1) answers
`{"code", "error", "usage"}`, `moderatedcost=2` answers `{"error": {"code", "message"}, "usage"}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALL = 1_000_000
"""`withheld` without a count: every item."""
_MARKER = re.compile(r"\[sandbox:([a-z0-9]+)(?:=([0-9.]+))?\]")


@dataclass(frozen=True)
class Scenario:
    reject: bool = False
    error500: bool = False
    ratelimit: int = 0
    unavailable: int = 0
    hang: float = 0.0
    delay: float | None = None
    never: bool = False
    fail: bool = False
    expire: bool = False
    moderate: bool = False
    gone: bool = False
    pollerror: int = 0
    empty202: bool = False
    deadurl: bool = False
    notmedia: bool = False
    slowmedia: float = 0.0
    notjson: bool = False
    emptydata: bool = False
    nourl: bool = False
    withheld: int = 0
    """How many of an image answer's items are withheld, counted from the last."""
    nostatus: bool = False
    moderatedcost: int = 0
    polljunk: bool = False


def parse(prompt: str | None) -> Scenario:
    values: dict[str, object] = {}
    for name, raw in _MARKER.findall(prompt or ""):
        if name == "withheld":
            values[name] = int(float(raw)) if raw else ALL
        elif name in ("ratelimit", "unavailable", "pollerror", "moderatedcost"):
            values[name] = int(float(raw or 1))
        elif name in ("hang", "delay", "slowmedia"):
            values[name] = float(raw or 0)
        elif name in Scenario.__dataclass_fields__:
            values[name] = True
    return Scenario(**values)  # type: ignore[arg-type]
