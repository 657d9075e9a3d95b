"""Between xAI's shapes and grokgate's: an xAI body becomes the native generation body, a job becomes xAI's
answer, the catalogue becomes xAI's model listings. Plain functions over plain data, no I/O.

No rules live here. Which sub-model serves a request is read from the catalogue (each sub-model names its xAI model
and operation); ranges, defaults and prices are checked by `jobs/spec.py` on the native body, and its errors are
told back in xAI's field names (`image.url`, not `image_url`) and model names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from pydantic_core import PydanticCustomError

from grokgate.catalogue.catalogue import Catalogue, SubModel, credits_for
from grokgate.compat.schemas import (
    MAX_PROMPT,
    XAI_VIDEO_SECONDS,
    EditImageRequest,
    ExtendVideoRequest,
    GenerateImageRequest,
    GenerateVideoRequest,
    ImageUrl,
    VideoUrl,
    XaiRequest,
)
from grokgate.errors import ApiError, invalid_input
from grokgate.jobs.models import Job
from grokgate.jobs.schemas import check_image_url
from grokgate.storage.links import MediaLinks

Endpoint = Literal["images/generations", "images/edits", "videos/generations", "videos/edits", "videos/extensions"]
OPERATIONS: dict[Endpoint, tuple[str, str]] = {
    "images/generations": ("image", "generate"),
    "images/edits": ("image", "generate"),  # an image sub-model edits when it is given source images
    "videos/generations": ("video", "generate"),
    "videos/edits": ("video", "edit"),
    "videos/extensions": ("video", "extend"),
}
"""Each xAI endpoint as the catalogue's (kind, operation)."""
TICKS_PER_USD = 10**10
TICKS_PER_CENT = 10**8
_NATIVE_NAMES = {"image_url": "image.url", "video_url": "video.url", "webhookUrl": "webhook_url"}


@dataclass(frozen=True)
class Native:
    """The native generation body an xAI request stands for, and the names to speak of it in."""

    body: dict[str, Any]
    sub_model: str
    xai_model: str


def model_not_found(name: str, listing: str) -> ApiError:
    return ApiError(
        404,
        "MODEL_NOT_FOUND",
        f"model: {name} is not sold here for this endpoint (GET /v1/{listing} lists them)",
        {"field": "model", "model": name},
    )


def _candidates(catalogue: Catalogue, kind: str, operation: str) -> list[tuple[str, SubModel]]:
    return [(n, e) for n, e in catalogue.sub_models.items() if e.kind == kind and e.operation == operation]


def sub_model_for(
    catalogue: Catalogue, endpoint: Endpoint, model: str | None, *, with_image: bool
) -> tuple[str, SubModel]:
    """The sub-model serving `model` at `endpoint`: the first in the catalogue with that xAI model and operation
    that takes the source image when one is sent (and does not require one when none is). No model: the first
    sub-model of that operation names the default xAI model, as xAI's own default is its first model."""
    kind, operation = OPERATIONS[endpoint]
    listing = f"{kind}-generation-models"
    found = _candidates(catalogue, kind, operation)
    if not found:
        raise model_not_found(model or "(default)", listing)
    wanted = model if model is not None else found[0][1].xai_model
    named = [(name, entry) for name, entry in found if entry.xai_model == wanted]
    if not named:
        raise model_not_found(wanted, listing)
    for name, entry in named:
        rule = entry.fields.get("image_url")
        if (with_image and rule is not None) or (not with_image and (rule is None or not rule.required)):
            return name, entry
    if with_image:
        raise invalid_input(f"image: is not accepted by {wanted}", "image")
    raise invalid_input(f"image: is required for {wanted}", "image")


def _url(image: ImageUrl | VideoUrl, field: str) -> str:
    if image.file_id is not None:
        raise invalid_input(f"{field}.file_id: xAI file ids are not supported here; send url", f"{field}.file_id")
    if image.url is None:
        raise invalid_input(f"{field}.url: is required", f"{field}.url")
    if isinstance(image, ImageUrl):
        try:
            check_image_url(image.url)  # here, so that the one of several images at fault is named
        except PydanticCustomError as exc:
            raise ApiError(400, "INVALID_URL", f"{field}.url: {exc}", {"field": f"{field}.url"}) from None
    return image.url


def _refuse_unsupported(body: XaiRequest) -> None:
    """Fields of xAI's that grokgate cannot honour: named, before anything is charged."""
    unsupported = ["output", "storage_options"]
    if isinstance(body, GenerateVideoRequest):
        unsupported += ["reference_images", "keyframes", "reference_audios"]
    for field in unsupported:
        if getattr(body, field) is not None:
            raise invalid_input(f"{field}: is not supported by grokgate (results are kept by grokgate)", field)
    if isinstance(body, GenerateImageRequest) and body.deferred:
        raise invalid_input("deferred: is not supported; images are answered at once", "deferred")


def to_native(endpoint: Endpoint, body: XaiRequest, catalogue: Catalogue) -> Native:
    """The native body (`jobs.schemas.GenerateRequest` fields) of an xAI request, with the sub-model chosen."""
    _refuse_unsupported(body)
    native: dict[str, Any] = {"prompt": body.prompt, "webhookUrl": body.webhook_url}
    with_image = False
    if isinstance(body, GenerateImageRequest):
        if isinstance(body, EditImageRequest):
            if body.image is not None and body.images is not None:
                raise invalid_input("images: send either image or images, not both", "images")
            if body.image is None and body.images is None:
                raise invalid_input("image: is required for an edit (or images, up to 3)", "image")
            if body.image is not None:
                native["image_url"] = _url(body.image, "image")
            if body.images is not None:
                native["image_urls"] = [_url(image, f"images.{i}") for i, image in enumerate(body.images)]
            with_image = True
        native |= {
            "n": body.n,
            "aspect_ratio": None if body.aspect_ratio == "auto" else body.aspect_ratio,
            "resolution": body.resolution,
            "quality": body.quality,
        }
    elif isinstance(body, GenerateVideoRequest):
        if body.image is not None:
            native["image_url"] = _url(body.image, "image")
            with_image = True
        duration = body.duration if body.duration is not None else XAI_VIDEO_SECONDS
        native |= {"duration": duration, "aspect_ratio": body.aspect_ratio, "resolution": body.resolution}
    else:
        native["video_url"] = _url(body.video, "video")
        if isinstance(body, ExtendVideoRequest):
            native["duration"] = body.duration
    name, entry = sub_model_for(catalogue, endpoint, body.model, with_image=with_image)
    native["model"] = name
    return Native({k: v for k, v in native.items() if v is not None}, name, entry.xai_model)


def xai_field(field: str) -> str:
    """A native field name as xAI calls it: `image_url` is `image.url`, `image_urls.1` is `images.1.url`."""
    head, _, rest = field.partition(".")
    if head == "image_urls":
        return f"images.{rest}.url" if rest else "images"
    return _NATIVE_NAMES.get(head, head) + (f".{rest}" if rest else "")


@contextlib.contextmanager
def xai_names(native: Native) -> Iterator[None]:
    """Errors raised inside speak of xAI's fields and model, not the native ones."""
    try:
        yield
    except ApiError as exc:
        field = exc.details.get("field")
        if isinstance(field, str):
            renamed = xai_field(field)
            exc.details["field"] = renamed
            if exc.message.startswith(f"{field}:"):
                exc.message = renamed + exc.message[len(field) :]
        exc.message = re.sub(rf"(?<![\w.-]){re.escape(native.sub_model)}(?![\w.-])", native.xai_model, exc.message)
        raise


def usage(job: Job, credit_usd: float) -> dict[str, int]:
    """xAI's `usage`: what the job cost the customer, net of refunds, in USD ticks at the credit's price."""
    credits = job.credits_charged - job.credits_refunded
    ticks = Fraction(str(credit_usd)) * TICKS_PER_USD * credits
    return {"cost_in_usd_ticks": math.ceil(ticks), "credits": credits}


def image_items(media: list[tuple[str, str]], links: MediaLinks, *, data: list[str] | None) -> list[dict[str, Any]]:
    """`GeneratedImage` items of (media id, content type) pairs: links to our stored copies, or (`b64_json`)
    the stored bytes, already base64-encoded, in the same order."""
    if data is not None:
        return [
            {"b64_json": b64, "mime_type": mime, "revised_prompt": ""}
            for (_, mime), b64 in zip(media, data, strict=True)
        ]
    return [{"url": links.url(media_id), "mime_type": mime, "revised_prompt": ""} for media_id, mime in media]


_ERROR_CODES = {
    "UPSTREAM_INVALID_ARGUMENT": "invalid_argument",
    "UPSTREAM_REJECTED": "invalid_argument",
    "CONTENT_MODERATED": "invalid_argument",
    "UPSTREAM_PERMISSION_DENIED": "permission_denied",
    "UPSTREAM_FAILED_PRECONDITION": "failed_precondition",
    "CANCELLED": "failed_precondition",
    "UPSTREAM_SERVICE_UNAVAILABLE": "service_unavailable",
    "DEADLINE_EXCEEDED": "service_unavailable",
    "STORAGE_UNAVAILABLE": "service_unavailable",
    "SERVICE_UNAVAILABLE": "service_unavailable",
}
"""A failed job's code as one of xAI's `VideoErrorCode`s; every other code is `internal_error`."""


def video_response(job: Job, links: MediaLinks, catalogue: Catalogue, credit_usd: float) -> tuple[int, dict[str, Any]]:
    """`GET /v1/videos/{request_id}` of a video job: 202 while it runs, else 200 with `done`, `failed` or
    `expired` (xAI's expiry, or our copy deleted after its retention period)."""
    entry = catalogue.get(job.model)
    model = entry.xai_model if entry is not None else job.model
    if job.status in ("pending", "processing"):
        return 202, {"status": "pending", "model": model}
    spent = usage(job, credit_usd)
    shown = links.render(job.output) or {}
    if job.status == "completed" and not shown.get("expired"):
        video = {"url": shown["videoUrl"], "duration": shown.get("duration"), "respect_moderation": True}
        return 200, {"status": "done", "model": model, "video": video, "progress": 100, "usage": spent}
    if job.status == "completed" or job.error_code == "UPSTREAM_EXPIRED":
        return 200, {"status": "expired", "model": model, "usage": spent}
    if job.status == "cancelled":
        error = {"code": "failed_precondition", "message": job.error_message or "Cancelled by the customer"}
    else:
        error = {
            "code": _ERROR_CODES.get(job.error_code or "", "internal_error"),
            "message": job.error_message or "The video failed",
        }
    return 200, {"status": "failed", "error": error, "usage": spent}


def _fingerprint(entries: list[SubModel]) -> str:
    canonical = json.dumps([entry.model_dump(mode="json") for entry in entries], sort_keys=True)
    return "fp_" + hashlib.sha256(canonical.encode()).hexdigest()[:10]


def _by_xai_model(catalogue: Catalogue, kind: str) -> dict[str, list[SubModel]]:
    grouped: dict[str, list[SubModel]] = {}
    for entry in catalogue.sub_models.values():
        if entry.kind == kind:
            grouped.setdefault(entry.xai_model, []).append(entry)
    return grouped


def _values(entries: list[SubModel], field: str) -> list[str]:
    found: list[str] = []
    for entry in entries:
        rule = entry.fields.get(field)
        for value in (rule.values or []) if rule is not None else []:
            if value not in found:
                found.append(value)
    return found


def _ticks(credits: int, credit_usd: float) -> int:
    return math.ceil(Fraction(str(credit_usd)) * TICKS_PER_USD * credits)


def image_models(catalogue: Catalogue, credit_usd: float) -> list[dict[str, Any]]:
    """`GET /v1/image-generation-models`: each xAI image model the catalogue sells, priced from the catalogue
    (the image sub-model that generates, at each resolution and quality it takes) at the credit's price."""
    listed = []
    for xai_model, entries in _by_xai_model(catalogue, "image").items():
        entry = next((e for e in entries if e.operation == "generate"), entries[0])
        qualities: list[str | None] = [*_values([entry], "quality")] or [None]
        resolutions: list[str | None] = [*_values([entry], "resolution")] or [None]
        tiers = []
        for quality in qualities:
            for resolution in resolutions:
                credits = credits_for(entry, seconds=None, images=1, resolution=resolution, quality=quality, inputs=0)
                tiers.append(
                    {
                        "quality": quality or "medium",
                        "resolution": resolution or "1k",
                        "price_per_image": _ticks(credits, credit_usd),
                        "credits_per_image": credits,
                    }
                )
        default = credits_for(
            entry,
            seconds=None,
            images=1,
            resolution=entry.default("resolution"),
            quality=entry.default("quality"),
            inputs=0,
        )
        takes_images = any("image_url" in e.fields or "image_urls" in e.fields for e in entries)
        listed.append(
            {
                "id": xai_model,
                "fingerprint": _fingerprint(entries),
                "max_prompt_length": MAX_PROMPT,
                "created": 0,
                "object": "model",
                "owned_by": "xai",
                "version": str(catalogue.version),
                "input_modalities": ["text", "image"] if takes_images else ["text"],
                "output_modalities": ["image"],
                "image_price": math.ceil(_ticks(default, credit_usd) / TICKS_PER_CENT),
                "pricing": tiers,
                "aliases": [],
            }
        )
    return listed


def video_models(catalogue: Catalogue) -> list[dict[str, Any]]:
    """`GET /v1/video-generation-models`: each xAI video model the catalogue sells, with what it takes."""
    listed = []
    for xai_model, entries in _by_xai_model(catalogue, "video").items():
        inputs = ["text"]
        if any("image_url" in e.fields for e in entries):
            inputs.append("image")
        if any("video_url" in e.fields for e in entries):
            inputs.append("video")
        listed.append(
            {
                "id": xai_model,
                "fingerprint": _fingerprint(entries),
                "created": 0,
                "object": "model",
                "owned_by": "xai",
                "version": str(catalogue.version),
                "input_modalities": inputs,
                "output_modalities": ["video"],
                "resolutions": _values(entries, "resolution"),
                "aliases": [],
            }
        )
    return listed
