"""The wire shapes of the generation API: the request body as the seed documents it, and every answer.

Pydantic checks types and ranges here, strictly (a JSON `true` or `"6"` is not a duration: a wrong type must never be
read as a chargeable value), and names the offending field; the rules that relate fields to each other
(a prompt is required for text models, an image for image-to-video, ...) live in `jobs/spec.py` as plain code.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from grokgate.catalogue.catalogue import load as load_catalogue

SHIPPED = load_catalogue()
"""The shipped catalogue: what the OpenAPI document lists (an operator's own file is checked at run time)."""
SubModel = Literal["text-to-video", "text-to-image", "image-to-video"]
"""The seed's sub-models (the workflow form maps onto these); the model endpoint takes any of the catalogue's."""
AspectRatio = Literal["16:9", "9:16", "4:3", "3:4", "1:1", "3:2", "2:3"]
JobStatus = Literal["pending", "processing", "completed", "failed", "cancelled"]

_DATA_URI = re.compile(r"^data:image/(png|jpeg|jpg|webp);base64,(?P<payload>[A-Za-z0-9+/=\s]+)$", re.DOTALL)


def check_image_url(value: str) -> str:
    """An http(s) URL with a host, or a base64 `data:image/...` URI that really decodes."""
    if value.startswith("data:"):
        match = _DATA_URI.match(value)
        if match is None:
            raise PydanticCustomError(
                "invalid_url", "must be an http(s) URL or a data:image/(png|jpeg|webp);base64 URI"
            )
        try:
            base64.b64decode(match["payload"], validate=False)
        except (binascii.Error, ValueError):
            raise PydanticCustomError("invalid_url", "data URI payload is not valid base64") from None
        return value
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # an unbalanced "[" or "]" in the host part
        host = None
    if host is None or parts.scheme not in ("http", "https"):
        raise PydanticCustomError("invalid_url", "must be an http(s) URL or a data:image/...;base64 URI")
    return value


IMAGE_URL_PATTERN = r"^(https?://|data:image/)"
WEBHOOK_URL_PATTERN = r"^https?://"
"""What the document says of a URL. Only documented: the validators (and the SSRF guard) check it, with messages
that name the field and the documented codes (INVALID_URL), which a bare pattern mismatch would not give."""


def _by_sub_model(schema: dict[str, Any]) -> None:
    """Document the body as one shape per sub-model of the shipped catalogue (`oneOf`): the fields each takes,
    with their values and ranges, so a client generated from the document (or schemathesis) sends what is
    accepted. The validation itself reads the catalogue in use (`jobs/spec.py`)."""
    base: dict[str, Any] = schema["properties"]
    variants = []
    for name, entry in SHIPPED.sub_models.items():
        properties: dict[str, Any] = {"model": {"type": "string", "enum": [name]}, "webhookUrl": base["webhookUrl"]}
        required = [] if name == "text-to-video" else ["model"]
        for field, rule in entry.fields.items():
            shown: dict[str, Any] = {"description": base[field].get("description", "")}
            if field in ("prompt", "image_url", "video_url"):
                shown |= {"type": "string", "minLength": 1}
                shown |= {"maxLength": 5000} if field == "prompt" else {"pattern": IMAGE_URL_PATTERN}
            elif field == "image_urls":
                item = {"type": "string", "pattern": IMAGE_URL_PATTERN}
                shown |= {"type": "array", "items": item, "minItems": 1, "maxItems": rule.max or 3}
            elif rule.values is not None:
                shown |= {"type": "string", "enum": rule.values}
            else:
                shown |= {"type": "integer", "minimum": rule.min, "maximum": rule.max}
            if rule.default is not None:
                shown["default"] = rule.default
            properties[field] = shown
            if rule.required:
                required.append(field)
        variant = {"title": name, "type": "object", "properties": properties, "additionalProperties": False}
        variants.append(variant | ({"required": required} if required else {}))
    schema.clear()
    schema |= {
        "title": "GenerateRequest",
        "oneOf": variants,
        "examples": [{"prompt": "A lighthouse at dawn, 35mm film", "model": "text-to-image"}],
    }


def _whole(value: Any) -> Any:
    """A JSON number that is whole (`6.0`) is the integer JSON Schema says it is; anything else goes on to the
    strict check (so `true`, `"6"` and `6.5` are refused)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Whole = Annotated[int, BeforeValidator(_whole)]


class GenerateRequest(BaseModel):
    """Body of `POST /api/v1/models/grok-imagine`: any sub-model of the catalogue and the fields it takes."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra=lambda schema, _cls: _by_sub_model(schema),
        title="GenerateRequest",
    )

    prompt: str | None = Field(
        default=None,
        max_length=5000,
        description="Text description. Required for text-to-video and text-to-image (max 5000 chars).",
    )
    model: str = Field(
        default="text-to-video",
        max_length=64,
        json_schema_extra={"enum": list(SHIPPED.sub_models)},
        description="Sub-model; default text-to-video. `GET /api/v1/models` lists them with their fields and prices.",
    )
    image_url: str | None = Field(
        default=None,
        json_schema_extra={"pattern": IMAGE_URL_PATTERN},
        description="Image URL (http(s) or data:image/...;base64). Required for image-to-video; optional for "
        "text-to-image, where it asks for an edit of that image.",
    )
    aspect_ratio: AspectRatio | None = Field(default=None, description="Output aspect ratio.")
    duration: Whole | None = Field(
        default=None,
        ge=1,
        le=15,
        description="Video duration in seconds (1-15, default 6). Video models only.",
    )
    webhookUrl: str | None = Field(
        default=None,
        max_length=2048,
        json_schema_extra={"pattern": WEBHOOK_URL_PATTERN},
        description="Receives job.completed / job.failed / job.cancelled. Must resolve to a public address.",
    )
    resolution: str | None = Field(
        default=None,
        max_length=16,
        description="Images `1k`/`2k`; videos `480p` (default), `720p`, `1080p` where the model has it.",
    )
    n: Whole | None = Field(default=None, ge=1, le=10, description="Images per request (1-10), each charged.")
    image_urls: list[str] | None = Field(
        default=None, min_length=1, max_length=3, description="Up to 3 source images for a multi-image edit."
    )
    video_url: str | None = Field(
        default=None,
        max_length=4096,
        description="The source video of video-edit / video-extend: an http(s) URL, or a link to one of your results.",
    )
    quality: str | None = Field(
        default=None,
        max_length=16,
        json_schema_extra={"enum": ["low", "medium"]},
        description="Where the model takes it: `low`, `medium`.",
    )

    @field_validator("image_url")
    @classmethod
    def _image_url(cls, value: str | None) -> str | None:
        return None if value is None else check_image_url(value)

    @field_validator("image_urls")
    @classmethod
    def _image_urls(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [check_image_url(url) for url in value]

    @field_validator("video_url")
    @classmethod
    def _video_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith("data:"):
            raise PydanticCustomError("invalid_url", "must be an http(s) URL")
        return check_image_url(value)


class GenericInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str | None = Field(default=None, max_length=5000)
    model: Literal["grok-imagine"] = "grok-imagine"
    aspect_ratio: AspectRatio | None = None
    image_url: str | None = Field(default=None, json_schema_extra={"pattern": IMAGE_URL_PATTERN})
    duration: Whole | None = Field(default=None, ge=1, le=15)
    resolution: str | None = Field(
        default=None, max_length=16, json_schema_extra={"enum": ["1k", "2k", "480p", "720p"]}
    )
    n: Whole | None = Field(default=None, ge=1, le=10, description="generate_image only")
    image_urls: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=3,
        json_schema_extra={"items": {"type": "string", "pattern": IMAGE_URL_PATTERN}},
    )

    @field_validator("image_url")
    @classmethod
    def _image_url(cls, value: str | None) -> str | None:
        return None if value is None else check_image_url(value)

    @field_validator("image_urls")
    @classmethod
    def _image_urls(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [check_image_url(url) for url in value]


class GenericJobRequest(BaseModel):
    """Body of `POST /api/v1/jobs`: the workflow form of the same generation."""

    model_config = ConfigDict(extra="forbid", strict=True)

    workflow: Literal["generate_image", "generate_video"]
    input: GenericInput
    webhookUrl: str | None = Field(default=None, max_length=2048, json_schema_extra={"pattern": WEBHOOK_URL_PATTERN})

    def as_generate_request(self) -> GenerateRequest:
        data = self.input
        if self.workflow == "generate_image":
            model: SubModel = "text-to-image"
        else:
            model = "image-to-video" if data.image_url is not None else "text-to-video"
        return GenerateRequest(
            prompt=data.prompt,
            model=model,
            image_url=data.image_url,
            aspect_ratio=data.aspect_ratio,
            duration=data.duration,
            webhookUrl=self.webhookUrl,
            resolution=data.resolution,
            n=data.n,
            image_urls=data.image_urls,
        )


class ImageCompleted(BaseModel):
    jobId: str
    status: Literal["completed"]
    message: str
    creditsCharged: int
    imageUrl: str
    resultUrls: list[str]
    creditsRefunded: int | None = None
    """Present when xAI withheld some of the `n` images asked for: their share of `creditsCharged`, given back."""


class JobError(BaseModel):
    code: str
    message: str


class VideoAccepted(BaseModel):
    jobId: str
    status: JobStatus
    message: str
    creditsCharged: int
    externalJobId: str
    input: dict[str, Any]


class VideoWaited(VideoAccepted):
    """The answer after `Prefer: wait`: the status reached, with the result, or the error and the refund."""

    output: dict[str, Any] | None
    error: JobError | None = None
    creditsRefunded: int | None = None


class JobCreated(BaseModel):
    """`POST /api/v1/jobs` answers with links to the job, as job queues do."""

    id: str
    status: JobStatus
    workflow: str
    creditsCharged: int
    createdAt: datetime
    output: dict[str, Any] | None
    links: dict[str, str] = Field(alias="_links")
    error: JobError | None = None
    creditsRefunded: int | None = None


class JobView(BaseModel):
    """`GET /api/v1/jobs/{jobId}`. `error` appears on failed jobs; `creditsRefunded` on failed and cancelled ones,
    and on completed image jobs whose withheld images were refunded."""

    id: str
    status: JobStatus
    output: dict[str, Any] | None
    creditsCharged: int
    workflowSlug: Literal["grok-imagine-generate"] = "grok-imagine-generate"
    createdAt: datetime
    updatedAt: datetime
    error: JobError | None = None
    creditsRefunded: int | None = None
    progress: int | None = None
    """xAI's progress percentage (0-100) of a video it is rendering, as last polled; absent until xAI reports one."""


class JobList(BaseModel):
    jobs: list[JobView]
    total: int
    limit: int
    offset: int
