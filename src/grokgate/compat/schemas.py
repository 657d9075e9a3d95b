"""xAI's request and answer shapes for its media endpoints, as `xai-media-openapi.json` defines them.

Code written against xAI (or against the `openai` package pointed at xAI) sends these bodies unchanged. Types are
checked here, strictly, naming the offending field in xAI's terms (`image.url`, `video.url`); what a field may hold
for a given model (ranges, values, prices) is the catalogue's business, checked by `jobs/spec.py` after
`compat/translate.py` has turned the body into a native one. Fields xAI documents but grokgate cannot honour
(`deferred`, `output`, `storage_options`, `file_id`, reference media) are accepted by the parser and refused by name
in `translate.py`, so the answer says what is unsupported instead of "unknown field".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

ImageAspectRatio = Literal[
    "1:1",
    "3:4",
    "4:3",
    "9:16",
    "16:9",
    "2:3",
    "3:2",
    "9:19.5",
    "19.5:9",
    "9:20",
    "20:9",
    "1:2",
    "2:1",
    "21:9",
    "5:2",
    "auto",
]
VideoAspectRatio = Literal["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"]
ImageResolution = Literal["1k", "1.5k", "2k"]
VideoResolution = Literal["480p", "720p", "1080p"]
ResponseFormat = Literal["url", "b64_json"]
XAI_VIDEO_SECONDS = 8
"""xAI's default `duration` of a video generation (the native API's is the seed's 6)."""
MAX_PROMPT = 5000


def _seconds(value: Any) -> Any:
    """xAI takes a duration as a number (`8`, `8.0`) or a string of digits (`"8"`); anything else (`true`,
    `"8s"`, `6.5`) goes on to the strict check and is refused."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


Seconds = Annotated[int, BeforeValidator(_seconds)]
Whole = Annotated[int, BeforeValidator(_whole)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class ImageUrl(_Body):
    """An input image: an http(s) URL or a `data:image/...;base64,` URI (`image_url` is accepted for `url`)."""

    url: str | None = Field(default=None, min_length=1, validation_alias=AliasChoices("url", "image_url"))
    file_id: str | None = Field(default=None, description="xAI Files API ids are not supported here.")


class VideoUrl(_Body):
    """An input video: an http(s) URL of an MP4, or the link of one of your own stored videos."""

    url: str | None = Field(default=None, min_length=1, max_length=4096)
    file_id: str | None = Field(default=None, description="xAI Files API ids are not supported here.")


class _Extras(_Body):
    """Fields every media request may carry."""

    user: str | None = Field(default=None, max_length=256, description="Your end-user's id; accepted, not used.")
    webhook_url: str | None = Field(
        default=None,
        max_length=2048,
        json_schema_extra={"pattern": "^https?://"},
        description="grokgate's addition: receives job.completed / job.failed / job.cancelled, as `webhookUrl` "
        "of the native API. Must resolve to a public address.",
    )
    output: dict[str, Any] | None = Field(default=None, description="Not supported: results are kept by grokgate.")
    storage_options: dict[str, Any] | None = Field(
        default=None, description="Not supported: results are kept by grokgate."
    )


class GenerateImageRequest(_Extras):
    """`POST /v1/images/generations`."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"prompt": "A cat in a tree", "model": "grok-imagine-image", "n": 2}]},
    )

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    model: str | None = Field(default=None, max_length=64, description="GET /v1/image-generation-models lists them.")
    n: Whole | None = Field(default=1, ge=1, le=10)
    response_format: ResponseFormat | None = Field(
        default="url", description="`url`: links to grokgate's stored copies; `b64_json`: the stored bytes."
    )
    aspect_ratio: ImageAspectRatio | None = Field(
        default=None, description="`auto` (the default) lets the model choose; the catalogue lists the others sold."
    )
    resolution: ImageResolution | None = None
    quality: Literal["low", "medium"] | None = Field(default=None, description="Where the model takes it.")
    deferred: bool | None = Field(default=None, description="Not supported: images are answered at once.")


class EditImageRequest(GenerateImageRequest):
    """`POST /v1/images/edits`: a generation's fields and the source image (`image`) or images (`images`, <= 3)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prompt": "Add a hat to this cat.",
                    "image": {"url": "https://example.com/cat.png"},
                    "model": "grok-imagine-image",
                }
            ]
        },
    )

    image: ImageUrl | None = None
    images: list[ImageUrl] | None = Field(default=None, min_length=1, max_length=3)


class GenerateVideoRequest(_Extras):
    """`POST /v1/videos/generations`: a video from a prompt, or from a still image (`image`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"prompt": "A cat playing with a ball", "model": "grok-imagine-video", "duration": 6}]
        },
    )

    prompt: str | None = Field(default=None, max_length=MAX_PROMPT)
    model: str | None = Field(default=None, max_length=64, description="GET /v1/video-generation-models lists them.")
    duration: Seconds | None = Field(
        default=None,
        ge=1,
        le=15,
        validation_alias=AliasChoices("duration", "seconds"),
        description=f"Seconds, 1-15; default {XAI_VIDEO_SECONDS} (xAI's). `seconds` is accepted for it.",
    )
    aspect_ratio: VideoAspectRatio | None = None
    resolution: VideoResolution | None = None
    image: ImageUrl | None = Field(
        default=None,
        validation_alias=AliasChoices("image", "input_reference"),
        description="The first frame (image-to-video). `input_reference` is accepted for it.",
    )
    reference_images: list[ImageUrl] | None = Field(default=None, description="Not supported.")
    keyframes: list[Any] | None = Field(default=None, description="Not supported.")
    reference_audios: list[Any] | None = Field(default=None, description="Not supported.")


class EditVideoRequest(_Extras):
    """`POST /v1/videos/edits`: duration, aspect ratio and resolution are taken from the input video."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"prompt": "Add snow to the scene", "video": {"url": "https://example.com/video.mp4"}}]
        },
    )

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    model: str | None = Field(default=None, max_length=64)
    video: VideoUrl


class ExtendVideoRequest(EditVideoRequest):
    """`POST /v1/videos/extensions`: the input video continued by `duration` seconds (2-10, default 6)."""

    duration: Seconds | None = Field(default=None, ge=2, le=10)


XaiRequest = GenerateImageRequest | GenerateVideoRequest | EditVideoRequest


class MediaUsage(BaseModel):
    """What the request cost you, in xAI's unit (1 USD = 10^10 ticks) at the credit's price, and in credits."""

    cost_in_usd_ticks: int
    credits: int = Field(description="grokgate's addition: credits charged, net of any refund.")


class GeneratedImage(BaseModel):
    url: str | None = None
    b64_json: str | None = None
    mime_type: str
    revised_prompt: str = ""


class GeneratedImageResponse(BaseModel):
    data: list[GeneratedImage]
    usage: MediaUsage


class StartDeferredResponse(BaseModel):
    request_id: str = Field(description="Poll `GET /v1/videos/{request_id}`; it is also the grokgate job id.")


class GeneratedVideo(BaseModel):
    url: str
    duration: float | int
    respect_moderation: bool = True


class VideoError(BaseModel):
    code: Literal[
        "invalid_argument", "permission_denied", "failed_precondition", "service_unavailable", "internal_error"
    ]
    message: str


class VideoResponse(BaseModel):
    """`GET /v1/videos/{request_id}`: 202 `pending` while it runs; 200 `done`, `failed` or `expired`."""

    status: Literal["pending", "done", "failed", "expired"]
    model: str | None = None
    video: GeneratedVideo | None = None
    progress: int | None = None
    error: VideoError | None = None
    usage: MediaUsage | None = None


class ImagePricingTier(BaseModel):
    quality: str
    resolution: str
    price_per_image: int = Field(description="USD ticks (1 cent = 10^8).")
    credits_per_image: int = Field(description="grokgate's addition: credits per image at this tier.")


class ImageGenerationModel(BaseModel):
    id: str
    fingerprint: str
    max_prompt_length: int
    created: int
    object: Literal["model"] = "model"
    owned_by: str
    version: str
    input_modalities: list[str]
    output_modalities: list[str]
    image_price: int = Field(description="USD cents per image at the default tier.")
    pricing: list[ImagePricingTier]
    aliases: list[str]


class VideoGenerationModel(BaseModel):
    id: str
    fingerprint: str
    created: int
    object: Literal["model"] = "model"
    owned_by: str
    version: str
    input_modalities: list[str]
    output_modalities: list[str]
    resolutions: list[str] = Field(description="grokgate's addition: the output resolutions sold.")
    aliases: list[str]


class ListImageGenerationModelsResponse(BaseModel):
    models: list[ImageGenerationModel]


class ListVideoGenerationModelsResponse(BaseModel):
    models: list[VideoGenerationModel]
