"""What grokgate sells: the sub-models, the xAI model and operation behind each, the fields each takes with their
ranges and defaults, and each one's price rule. Plain data and plain functions; loading reads one file.

The table ships as `default.json` beside this module (versioned with the package). An operator replaces it with
`GROKGATE_CATALOGUE=/path/to/catalogue.json` (same shape, validated at start-up); `GROKGATE_PRICES` still sets the
fixed price of the seed's sub-models on top. The API (`GET /api/v1/models`), the validation of every request and
the price of every charge all read the same `Catalogue`, so nothing else keeps a list of models.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_FILE = Path(__file__).with_name("default.json")
FIELDS = ("prompt", "image_url", "image_urls", "video_url", "aspect_ratio", "duration", "resolution", "quality", "n")
"""Every request field a sub-model may take; a sub-model lists the ones it does."""
MAX_CREDITS_PER_REQUEST = 10**6
"""No rule may price one request above this: a wrong table must not drain a balance in one call."""


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FieldRule(_Shape):
    required: bool = False
    values: list[str] | None = None
    """The accepted values of a text field."""
    min: int | None = None
    max: int | None = None
    """The range of a number, or the most items of a list."""
    default: str | int | None = None


class PriceRule(_Shape):
    """credits = ceil((fixed + perSecond x seconds + perImage x n) x resolution x quality) + perInputImage x inputs.

    Multipliers not listed are 1. The seed's requests come out at the seed's prices: 8 per image, 150 per video."""

    fixed: int = Field(default=0, ge=0, le=MAX_CREDITS_PER_REQUEST)
    per_second: int = Field(default=0, ge=0, le=MAX_CREDITS_PER_REQUEST, alias="perSecond")
    per_image: int = Field(default=0, ge=0, le=MAX_CREDITS_PER_REQUEST, alias="perImage")
    per_input_image: int = Field(default=0, ge=0, le=MAX_CREDITS_PER_REQUEST, alias="perInputImage")
    resolution: dict[str, float] = Field(default_factory=dict)
    quality: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _positive(self) -> PriceRule:
        if not (self.fixed or self.per_second or self.per_image):
            raise ValueError("a price rule needs fixed, perSecond or perImage above 0")
        if any(not 0 < value <= 100 for value in (*self.resolution.values(), *self.quality.values())):
            raise ValueError("multipliers must be above 0 and at most 100")
        return self


class SubModel(_Shape):
    description: str = ""
    kind: Literal["image", "video"]
    xai_model: str = Field(alias="xaiModel")
    operation: Literal["generate", "edit", "extend"] = "generate"
    """For images, `generate` becomes an edit when source images are given (xAI's `/v1/images/edits`)."""
    fields: dict[str, FieldRule]
    price: PriceRule

    @model_validator(mode="after")
    def _known_fields(self) -> SubModel:
        unknown = set(self.fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}; a sub-model may take {', '.join(FIELDS)}")
        most = credits_for(
            self,
            seconds=self._most("duration"),
            images=self._most("n") or 1,
            resolution=max(self.price.resolution, key=self.price.resolution.__getitem__, default=None),
            quality=max(self.price.quality, key=self.price.quality.__getitem__, default=None),
            inputs=(self._most("image_urls") or 0) + ("image_url" in self.fields),
        )
        if most > MAX_CREDITS_PER_REQUEST:
            raise ValueError(
                f"the price rule can reach {most} credits for one request; at most {MAX_CREDITS_PER_REQUEST}"
            )
        return self

    def _most(self, field: str) -> int | None:
        rule = self.fields.get(field)
        return rule.max if rule is not None else None

    def default(self, field: str) -> Any:
        rule = self.fields.get(field)
        return rule.default if rule is not None else None


class Catalogue(_Shape):
    version: int = Field(ge=1)
    sub_models: dict[str, SubModel] = Field(alias="subModels", min_length=1)

    def get(self, name: str) -> SubModel | None:
        return self.sub_models.get(name)

    def with_prices(self, prices: Mapping[str, int]) -> Catalogue:
        """The table with these sub-models' prices replaced (`GROKGATE_PRICES`, the seed's knob): the price per
        image of an image sub-model priced per image, else the fixed price."""
        changed = dict(self.sub_models)
        for name, credits in prices.items():
            if name in changed:
                part = "per_image" if changed[name].price.per_image else "fixed"
                rule = changed[name].price.model_copy(update={part: credits})
                changed[name] = changed[name].model_copy(update={"price": rule})
        return self.model_copy(update={"sub_models": changed})

    def listing(self) -> list[dict[str, Any]]:
        """The catalogue as customers see it (`GET /api/v1/models`): no xAI names, which are our business."""
        return [
            {
                "id": name,
                "kind": entry.kind,
                "description": entry.description,
                "fields": {
                    field: rule.model_dump(exclude_none=True, exclude_defaults=True) | {"required": rule.required}
                    for field, rule in entry.fields.items()
                },
                "price": entry.price.model_dump(by_alias=True, exclude_defaults=True),
            }
            for name, entry in self.sub_models.items()
        ]


@functools.cache
def load(path: Path | None = None) -> Catalogue:
    """The operator's file, or the shipped table, read and checked once per process (the table is never changed
    in place: `with_prices` makes a copy). Raises ValueError naming what is wrong."""
    source = path or DEFAULT_FILE
    try:
        data = json.loads(source.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"GROKGATE_CATALOGUE: cannot read {source}: {exc}") from exc
    return Catalogue.model_validate(data)


def credits_for(
    entry: SubModel,
    *,
    seconds: int | None,
    images: int,
    resolution: str | None,
    quality: str | None,
    inputs: int,
) -> int:
    """The price of one request, in whole credits (rounded up), exact: multipliers are read as fractions."""
    rule = entry.price
    base = Fraction(rule.fixed + rule.per_second * (seconds or 0) + rule.per_image * images)
    if resolution is not None:
        base *= Fraction(str(rule.resolution.get(resolution, 1)))
    if quality is not None:
        base *= Fraction(str(rule.quality.get(quality, 1)))
    return max(1, math.ceil(base) + rule.per_input_image * inputs)
