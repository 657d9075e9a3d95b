"""What each sub-model costs in credits. Plain functions over the configured table, no I/O."""

from __future__ import annotations

from collections.abc import Mapping


def price_of(model: str, prices: Mapping[str, int]) -> int:
    """Credits for one request of `model` (image edits are priced as text-to-image, as the seed does)."""
    return prices[model]
