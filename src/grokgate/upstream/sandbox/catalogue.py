"""The models the sandbox serves and what they cost: one table, read both by the cost in every answer's `usage` and by
`GET /v1/image-generation-models` / `GET /v1/video-generation-models`, so the two can never disagree.

Prices are xAI's list prices (`xai-media-api.md`, "List prices") where they are documented, in USD ticks
(1 USD = 10^10 ticks, 1 cent = 10^8). Where xAI publishes none (`grok-imagine-image-quality`,
`grok-imagine-image-2.0`) the values are plausible stand-ins, marked below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CENT = 100_000_000
"""USD ticks in one US cent."""
INPUT_IMAGE_EDIT_TICKS = CENT // 5  # $0.002 per source image of an image edit
INPUT_VIDEO_TICKS_PER_SECOND = CENT  # $0.01 per second of an input video (edits and extensions)
IMAGE_RESOLUTIONS = ("1k", "1.5k", "2k")
VIDEO_RESOLUTIONS = ("480p", "720p", "1080p")
DEFAULT_IMAGE_RESOLUTION = "1k"
DEFAULT_VIDEO_RESOLUTION = "480p"
DEFAULT_QUALITY = "medium"


@dataclass(frozen=True)
class ImageModel:
    id: str
    aliases: tuple[str, ...]
    prices: dict[tuple[str, str], int]
    """Ticks per output image by (quality, resolution). A model without `quality` has only "medium" rows."""
    qualities: tuple[str, ...] = ()
    """The `quality` values a request may send; empty: the field is refused."""
    fingerprint: str = "fp_sandbox0001"
    created: int = 1738961600

    def price(self, quality: str | None, resolution: str | None) -> int:
        return self.prices[(quality or DEFAULT_QUALITY, resolution or DEFAULT_IMAGE_RESOLUTION)]


@dataclass(frozen=True)
class VideoModel:
    id: str
    aliases: tuple[str, ...]
    per_second: dict[str, int]
    """Ticks per output second by resolution; the resolutions the model serves are exactly these keys."""
    input_image: int = 0
    """Ticks per conditioning image (`image`, `reference_images`)."""
    fingerprint: str = "fp_sandbox0002"
    created: int = 1743724800
    input_modalities: tuple[str, ...] = ("text", "image", "video")


def _flat(ticks: int) -> dict[tuple[str, str], int]:
    return {("medium", resolution): ticks for resolution in IMAGE_RESOLUTIONS}


IMAGE_MODELS: tuple[ImageModel, ...] = (
    ImageModel("grok-imagine-image", (), _flat(2 * CENT)),  # $0.02, documented
    ImageModel("grok-imagine-image-quality", ("grok-imagine-image-pro",), _flat(7 * CENT)),  # $0.07, not documented
    ImageModel(  # not documented: low $0.01-0.02, medium $0.04-0.08 by resolution
        "grok-imagine-image-2.0",
        (),
        {
            ("low", "1k"): 1 * CENT,
            ("low", "1.5k"): 3 * CENT // 2,
            ("low", "2k"): 2 * CENT,
            ("medium", "1k"): 4 * CENT,
            ("medium", "1.5k"): 6 * CENT,
            ("medium", "2k"): 8 * CENT,
        },
        qualities=("low", "medium"),
        created=1767225600,
    ),
)
VIDEO_MODELS: tuple[VideoModel, ...] = (
    VideoModel("grok-imagine-video", (), {"480p": 5 * CENT, "720p": 7 * CENT}),  # documented
    VideoModel(  # documented
        "grok-imagine-video-1.5",
        ("grok-imagine-video-1.5-preview",),
        {"480p": 8 * CENT, "720p": 14 * CENT, "1080p": 25 * CENT},
        input_image=CENT,
        created=1767225600,
        input_modalities=("text", "image", "video", "audio"),
    ),
)
DEFAULT_IMAGE_MODEL = IMAGE_MODELS[0]
DEFAULT_VIDEO_MODEL = VIDEO_MODELS[0]


_IMAGES = {name: model for model in IMAGE_MODELS for name in (model.id, *model.aliases)}
_VIDEOS = {name: model for model in VIDEO_MODELS for name in (model.id, *model.aliases)}


def image_model(name: str | None) -> ImageModel | None:
    """The model a request names (an id or an alias); no name is the default model; an unknown one is None."""
    return DEFAULT_IMAGE_MODEL if name is None else _IMAGES.get(name)


def video_model(name: str | None) -> VideoModel | None:
    return DEFAULT_VIDEO_MODEL if name is None else _VIDEOS.get(name)


def image_listing(model: ImageModel) -> dict[str, Any]:
    """`ImageGenerationModel` of the openapi document. `image_price` is in cents (the default tier, medium at 1k);
    `pricing` (in ticks) only where quality changes the price, as xAI does; `input_image_price` (ticks per source
    image of an edit) is the sandbox's addition, so that a client can price an edit from the listing alone."""
    listed: dict[str, Any] = {
        "id": model.id,
        "fingerprint": model.fingerprint,
        "max_prompt_length": 1024,
        "created": model.created,
        "object": "model",
        "owned_by": "xai",
        "version": "1.0.0",
        "input_modalities": ["text", "image"],
        "output_modalities": ["image"],
        "image_price": model.price(None, None) // CENT,
        "aliases": list(model.aliases),
        "input_image_price": INPUT_IMAGE_EDIT_TICKS,
    }
    if model.qualities:
        listed["pricing"] = [
            {"quality": quality, "resolution": resolution, "price_per_image": ticks}
            for (quality, resolution), ticks in model.prices.items()
        ]
    return listed


def video_listing(model: VideoModel) -> dict[str, Any]:
    """`VideoGenerationModel` of the openapi document, which has no price fields: the sandbox adds `resolutions`,
    `pricing` (ticks per output second by resolution), `input_image_price` and `input_video_price_per_second`."""
    return {
        "id": model.id,
        "fingerprint": model.fingerprint,
        "created": model.created,
        "object": "model",
        "owned_by": "xai",
        "version": "1.0.0",
        "input_modalities": list(model.input_modalities),
        "output_modalities": ["video"],
        "aliases": list(model.aliases),
        "resolutions": list(model.per_second),
        "pricing": [
            {"resolution": resolution, "price_per_second": ticks} for resolution, ticks in model.per_second.items()
        ],
        "input_image_price": model.input_image,
        "input_video_price_per_second": INPUT_VIDEO_TICKS_PER_SECOND,
    }
