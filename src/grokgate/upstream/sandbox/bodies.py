"""The request bodies of xAI's media endpoints, as `xai-media-openapi.json` defines them. A body that does not
fit (wrong type, unknown enum value, missing field, out of range) is xAI's 422; extra fields are let through, as
xAI ignores fields it does not use."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ImageAspect = Literal[
    "1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9", "1:2", "2:1", "21:9",
    "5:2", "auto",
]  # fmt: skip
VideoAspect = Literal["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"]


class ImageUrl(BaseModel):
    url: str | None = None
    file_id: str | None = None


class VideoUrl(BaseModel):
    url: str | None = None
    file_id: str | None = None


class ImageBody(BaseModel):
    """`GenerateImageRequest` and `EditImageRequest` (the latter adds `image` / `images`)."""

    model_config = ConfigDict(extra="allow")
    prompt: str
    model: str | None = None
    n: int | None = Field(default=1, ge=1, le=10)
    response_format: Literal["url", "b64_json"] | None = "url"
    aspect_ratio: ImageAspect | None = None
    resolution: Literal["1k", "1.5k", "2k"] | None = None
    quality: Literal["low", "medium"] | None = None
    image: ImageUrl | None = None
    images: list[ImageUrl] | None = None


class NoBody(BaseModel):
    """A GET carries no body."""


class VideoBody(BaseModel):
    """`GenerateVideoRequest`."""

    model_config = ConfigDict(extra="allow")
    prompt: str | None = None
    model: str | None = None
    duration: int | None = Field(default=8, ge=1, le=15)
    aspect_ratio: VideoAspect | None = None
    resolution: Literal["480p", "720p", "1080p"] | None = None
    image: ImageUrl | None = None
    reference_images: list[ImageUrl] | None = None


class EditVideoBody(BaseModel):
    """`EditVideoRequest`: duration, aspect ratio and resolution come from the input video."""

    model_config = ConfigDict(extra="allow")
    prompt: str
    model: str | None = None
    video: VideoUrl


class ExtendVideoBody(EditVideoBody):
    """`ExtendVideoRequest`: an edit's fields and `duration`, the length of the added part only."""

    duration: int | None = Field(default=6, ge=2, le=10)
