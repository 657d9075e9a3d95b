"""Plans: named sets of limits, configurable with `GROKGATE_PLANS`. Every organisation starts on `default`."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

DEFAULT_PLAN = "default"
MAX_LIMIT = 10**15
"""Most any limit may be: counts are compared in Redis' Lua, whose numbers are exact only up to 2^53."""


class Plan(BaseModel):
    rpm: int = Field(ge=1, le=MAX_LIMIT, description="Requests per minute")
    rph: int = Field(ge=1, le=MAX_LIMIT, description="Requests per hour")
    rpd: int = Field(ge=1, le=MAX_LIMIT, description="Requests per day")
    concurrent: int = Field(ge=1, le=MAX_LIMIT, description="Jobs pending or processing at once")
    waiters: int = Field(
        default=20, ge=1, le=MAX_LIMIT, description="Open event streams and `Prefer: wait` requests at once"
    )


DEFAULT_PLANS: dict[str, Plan] = {DEFAULT_PLAN: Plan(rpm=600, rph=10_000, rpd=100_000, concurrent=100)}


def parse_plans(value: Any) -> dict[str, Plan]:
    """`GROKGATE_PLANS` as JSON (`{"pro": {"rpm": 3000, ...}}`), merged over the built-in `default` plan."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    plans = dict(DEFAULT_PLANS)
    for name, limits in (value or {}).items():
        plans[name] = limits if isinstance(limits, Plan) else Plan.model_validate(limits)
    return plans
