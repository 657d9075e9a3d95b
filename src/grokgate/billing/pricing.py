"""xAI's list prices, for what it spent but did not report (a cancelled video). Credits come from the catalogue."""

from __future__ import annotations

IMAGE_LIST_TICKS = 200_000_000
"""xAI's list price of one `grok-imagine-image` image: $0.02 (1 USD = 10^10 ticks)."""
VIDEO_LIST_TICKS_PER_SECOND = 500_000_000
"""xAI's list price of one second of 480p `grok-imagine-video`: $0.05."""


def upstream_list_cost(kind: str, duration: int | None) -> int:
    """What xAI charges at list price, for when it spent the money but told us no figure (a cancelled video)."""
    if kind == "video":
        return VIDEO_LIST_TICKS_PER_SECOND * (duration or 0)
    return IMAGE_LIST_TICKS
