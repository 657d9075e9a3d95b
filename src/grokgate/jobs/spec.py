"""The rules that turn a validated request body into what will be generated and what it costs. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from grokgate.errors import ApiError, invalid_input
from grokgate.jobs.schemas import GenerateRequest

DEFAULT_VIDEO_SECONDS = 6
VIDEO_MODELS = ("text-to-video", "image-to-video")


@dataclass(frozen=True)
class GenerationSpec:
    kind: Literal["image", "video"]
    model: str
    prompt: str | None
    image_url: str | None
    aspect_ratio: str | None
    duration: int | None

    def echo(self) -> dict[str, Any]:
        """The validated input as the API shows it back (`input` in the 202 answer), defaults filled in."""
        fields = {
            "model": self.model,
            "prompt": self.prompt,
            "image_url": self.image_url,
            "aspect_ratio": self.aspect_ratio,
            "duration": self.duration,
        }
        return {name: value for name, value in fields.items() if value is not None}


def build_spec(body: GenerateRequest, *, max_image_url_bytes: int) -> GenerationSpec:
    model = body.model
    is_video = model in VIDEO_MODELS
    prompt = body.prompt.strip() if body.prompt is not None else None
    if model != "image-to-video" and not prompt:
        raise invalid_input(f"prompt: is required for {model} (1-5000 characters)", "prompt")
    if model == "image-to-video" and body.image_url is None:
        raise invalid_input("image_url: is required for image-to-video", "image_url")
    if model == "text-to-video" and body.image_url is not None:
        raise invalid_input("image_url: is not accepted by text-to-video; use image-to-video", "image_url")
    if body.image_url is not None and len(body.image_url) > max_image_url_bytes:
        raise ApiError(
            400,
            "INVALID_URL",
            f"image_url: is larger than {max_image_url_bytes} bytes",
            {"field": "image_url", "maxBytes": max_image_url_bytes},
        )
    if not is_video and body.duration is not None:
        raise invalid_input("duration: is only accepted by video models", "duration")
    return GenerationSpec(
        kind="video" if is_video else "image",
        model=model,
        prompt=prompt or None,
        image_url=body.image_url,
        aspect_ratio=body.aspect_ratio,
        duration=(body.duration or DEFAULT_VIDEO_SECONDS) if is_video else None,
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
