"""The rules that turn a validated request body into what will be generated and what it costs. No I/O.

Which fields a sub-model takes, their ranges and defaults, and its price all come from the catalogue
(`catalogue/default.json` or the operator's file); the checks here read it, so a field a sub-model does not take is
a 400 that names it, and the price is known before anything is charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from grokgate.catalogue.catalogue import Catalogue, FieldRule, SubModel, credits_for
from grokgate.errors import ApiError, invalid_input
from grokgate.jobs.schemas import GenerateRequest

DEFAULT_VIDEO_SECONDS = 6


@dataclass(frozen=True)
class GenerationSpec:
    kind: Literal["image", "video"]
    model: str
    prompt: str | None
    image_url: str | None
    aspect_ratio: str | None
    duration: int | None
    xai_model: str = ""
    operation: Literal["generate", "edit", "extend"] = "generate"
    image_urls: tuple[str, ...] = ()
    video_url: str | None = None
    resolution: str | None = None
    quality: str | None = None
    n: int = 1
    price: int = 0
    prices: tuple[int, ...] = ()
    """For an image request, the price had 1, 2 .. n images been asked (the last is `price`)."""
    given: frozenset[str] = frozenset()
    """The fields the customer sent: only these (and the seed's duration default) are echoed back."""

    def asked(self, field: str) -> Any:
        """A field's value if the customer sent it, else None: what is passed to xAI, whose defaults are the same
        as the catalogue's (the price is computed with the defaults filled in)."""
        return getattr(self, field) if field in self.given else None

    def undelivered(self, delivered: int) -> int:
        """Credits to give back when xAI delivered fewer images than asked (it withheld some by moderation): the
        customer pays what asking for the delivered ones alone would have cost. Nothing delivered is a failure,
        refunded whole elsewhere."""
        if self.kind != "image" or not 0 < delivered < self.n or len(self.prices) != self.n:
            return 0
        return self.price - self.prices[delivered - 1]

    @property
    def images(self) -> tuple[str, ...]:
        """Every source image, the seed's `image_url` first."""
        return ((self.image_url,) if self.image_url else ()) + self.image_urls

    def echo(self) -> dict[str, Any]:
        """The validated input as the API shows it back (`input` in the 202 answer), defaults filled in."""
        fields: dict[str, Any] = {
            "model": self.model,
            "prompt": self.prompt,
            "image_url": self.image_url,
            "aspect_ratio": self.aspect_ratio,
            "duration": self.duration,
        }
        extra = {
            "image_urls": list(self.image_urls) or None,
            "video_url": self.video_url,
            "resolution": self.resolution,
            "quality": self.quality,
            "n": self.n,
        }
        fields |= {name: value for name, value in extra.items() if name in self.given}
        return {name: value for name, value in fields.items() if value is not None}


def _check_choice(field: str, value: str | None, rule: FieldRule | None, model: str) -> str | None:
    if value is None:
        return rule.default if rule is not None and isinstance(rule.default, str) else None
    if rule is not None and rule.values is not None and value not in rule.values:
        raise invalid_input(f"{field}: must be one of {', '.join(rule.values)} for {model}", field)
    return value


def _check_number(field: str, value: int | None, rule: FieldRule, model: str) -> int | None:
    if value is None:
        return rule.default if isinstance(rule.default, int) else None
    low, high = rule.min, rule.max
    if (low is not None and value < low) or (high is not None and value > high):
        raise invalid_input(f"{field}: must be {low}-{high} for {model}", field)
    return value


def _not_taken(body: GenerateRequest, entry: SubModel, model: str) -> None:
    """A field the sub-model does not take is refused by name (the seed's wording where the seed had one)."""
    for field in ("image_url", "image_urls", "video_url", "aspect_ratio", "duration", "resolution", "quality", "n"):
        if getattr(body, field) is None or field in entry.fields:
            continue
        if field == "duration" and entry.kind == "image":
            raise invalid_input("duration: is only accepted by video models", field)
        if field == "image_url" and model == "text-to-video":
            raise invalid_input("image_url: is not accepted by text-to-video; use image-to-video", field)
        raise invalid_input(f"{field}: is not accepted by {model}", field)


def build_spec(body: GenerateRequest, *, max_image_url_bytes: int, catalogue: Catalogue) -> GenerationSpec:
    model = body.model
    entry = catalogue.get(model)
    if entry is None:
        names = ", ".join(catalogue.sub_models)
        raise invalid_input(f"model: must be one of {names} (GET /api/v1/models lists them)", "model")
    _not_taken(body, entry, model)
    prompt = body.prompt.strip() if body.prompt is not None else None
    rules = entry.fields
    if "prompt" in rules and rules["prompt"].required and not prompt:
        raise invalid_input(f"prompt: is required for {model} (1-5000 characters)", "prompt")
    for field in ("image_url", "video_url"):
        if field in rules and rules[field].required and getattr(body, field) is None:
            raise invalid_input(f"{field}: is required for {model}", field)
    if body.image_url is not None and body.image_urls is not None:
        raise invalid_input("image_urls: send either image_url or image_urls, not both", "image_urls")
    if body.image_urls is not None and "image_urls" in rules:
        most = rules["image_urls"].max or 3
        if len(body.image_urls) > most:
            raise invalid_input(f"image_urls: at most {most} images for {model}", "image_urls")
    for url in (body.image_url, *(body.image_urls or ())):
        if url is not None and len(url) > max_image_url_bytes:
            field = "image_url" if url == body.image_url else "image_urls"
            raise ApiError(
                400,
                "INVALID_URL",
                f"{field}: is larger than {max_image_url_bytes} bytes",
                {"field": field, "maxBytes": max_image_url_bytes},
            )
    # Not sent, it stays unset (xAI's default: the input's, for edits), whatever the catalogue lists as default.
    aspect_ratio = body.aspect_ratio and _check_choice(
        "aspect_ratio", body.aspect_ratio, rules.get("aspect_ratio"), model
    )
    resolution = _check_choice("resolution", body.resolution, rules.get("resolution"), model)
    quality = _check_choice("quality", body.quality, rules.get("quality"), model)
    duration = _check_number("duration", body.duration, rules["duration"], model) if "duration" in rules else None
    if entry.kind == "video" and entry.operation == "generate" and duration is None:
        duration = DEFAULT_VIDEO_SECONDS
    n = (_check_number("n", body.n, rules["n"], model) if "n" in rules else None) or 1
    image_urls = tuple(body.image_urls or ())
    inputs = len(image_urls) + (body.image_url is not None)
    prices = tuple(
        credits_for(
            entry,
            seconds=duration if entry.kind == "video" else None,
            images=count,
            resolution=resolution,
            quality=quality,
            inputs=inputs,
        )
        for count in (range(1, n + 1) if entry.kind == "image" else (1,))
    )
    given = frozenset(
        name for name in ("image_urls", "video_url", "resolution", "quality", "n") if getattr(body, name) is not None
    )
    return GenerationSpec(
        kind=entry.kind,
        model=model,
        prompt=prompt or None,
        image_url=body.image_url,
        aspect_ratio=aspect_ratio,
        duration=duration,
        xai_model=entry.xai_model,
        operation=entry.operation,
        image_urls=image_urls,
        video_url=body.video_url,
        resolution=resolution,
        quality=quality,
        n=n,
        price=prices[-1],
        prices=prices if entry.kind == "image" else (),
        given=given,
    )


def preferred_wait(prefer: str | None, *, most: float) -> float | None:
    """Seconds asked for with `Prefer: wait=N` (RFC 7240), capped at `most`; None when not asked or malformed."""
    if not prefer:
        return None
    for preference in prefer.replace(";", ",").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                seconds = float(value.strip().strip('"'))
            except ValueError:
                return None
            return min(seconds, most) if seconds > 0 else None
    return None
