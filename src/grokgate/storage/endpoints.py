"""Serving stored media: `GET /media/{id}` with a signed link (no API key needed), byte ranges, caching headers;
and `GET /api/v1/jobs/{id}/media`, fresh links for a job's owner."""

from __future__ import annotations

import time
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from grokgate.api.responses import AUTHENTICATED, errors
from grokgate.api.state import services_of
from grokgate.db.base import iso
from grokgate.errors import ApiError
from grokgate.orgs.auth import JobsRead
from grokgate.storage import signing
from grokgate.storage.models import Media
from grokgate.storage.service import find_media, job_media

router = APIRouter(tags=["media"])
log = structlog.get_logger(__name__)

WHOLE_UP_TO = 4 * 1024 * 1024
"""A download of at most this many bytes (an image, a poster) is read whole and answered as one body: a streamed
answer costs a task group and a trip through the store's runtime per chunk (a 19 KB image at 16 connections: about
a fifth of the request's CPU). Larger ones (videos) stream, never whole in memory."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single range `bytes=a-b` / `a-` / `-n` asks for, as (start, end exclusive); None for the whole file.

    Raises 416 when the range cannot be satisfied. Several ranges in one request are answered with the whole file,
    which RFC 9110 allows."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            length = int(last)
            if length <= 0:
                raise ValueError
            return max(0, size - length), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size or end <= start:
        raise ApiError(
            416,
            "RANGE_NOT_SATISFIABLE",
            f"Range {header} is outside 0-{size - 1}",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, min(end, size)


@router.get(
    "/media/{mediaId}",
    summary="A stored result (signed link from a job's output)",
    responses={
        200: {"content": {"image/png": {}, "video/mp4": {}}},
        206: {"description": "Partial content (a Range was asked for)"},
        302: {"description": "Redirect to a presigned object-store URL (S3 storage with presigning on)"},
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
        **errors(
            403,
            404,
            410,
            416,
            503,
            says={
                403: "INVALID_SIGNATURE",
                404: "NOT_FOUND (no such media) or MEDIA_MISSING (its stored bytes cannot be found)",
            },
        ),
    },
)
async def media(
    mediaId: str,
    request: Request,
    exp: Annotated[str | None, Query()] = None,
    sig: Annotated[str | None, Query()] = None,
) -> Response:
    services = services_of(request)
    links = services.jobs.finishing.links
    expires = signing.parse_expiry(exp)
    if expires is None or not signing.verify(links.secret, mediaId, exp, sig):
        raise ApiError(403, "INVALID_SIGNATURE", "This media link is invalid or has expired")
    row = await services.db.quick_read(lambda tx: find_media(tx, mediaId))
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"Media {mediaId} not found")
    if row.deleted_at is not None:
        raise ApiError(410, "MEDIA_EXPIRED", f"Media {mediaId} passed its retention period and was deleted")
    store = services.media_store
    if services.settings.storage_presign and store.is_s3:
        if not await store.exists(row.key):
            raise _missing(row)
        presigned = await store.presign(row.key, max(60.0, expires - time.time()))
        if presigned:
            return RedirectResponse(presigned, status_code=302)
    etag = f'"{row.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": f"private, max-age={max(0, expires - int(time.time()))}",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    span = byte_range(request.headers.get("range"), row.size)
    if request.headers.get("if-range") not in (None, etag):
        span = None
    start, end = span or (0, row.size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{row.size}"
    if end == start:
        return Response(status_code=status, headers=headers, media_type=row.content_type)
    try:
        if end - start <= WHOLE_UP_TO:
            whole = await store.read(row.key, start, end)
            return Response(whole, status_code=status, headers=headers, media_type=row.content_type)
        body = await store.open(row.key, start, end)
    except FileNotFoundError:
        raise _missing(row) from None
    return StreamingResponse(body, status_code=status, headers=headers, media_type=row.content_type)


def _missing(row: Media) -> ApiError:
    """A live media row whose object is gone: never expected, so it is logged as the loss it is."""
    log.error("media.object_missing", media_id=row.id, key=row.key, job_id=row.job_id)
    return ApiError(404, "MEDIA_MISSING", f"The stored bytes of media {row.id} cannot be found", {"mediaId": row.id})


@router.get(
    "/api/v1/jobs/{jobId}/media",
    summary="Fresh signed links to a job's stored results",
    tags=["jobs"],
    responses={**AUTHENTICATED, **errors(404)},
)
async def job_media_links(jobId: str, request: Request, caller: JobsRead) -> JSONResponse:
    services = services_of(request)
    await services.jobs.get(caller, jobId)
    links = services.jobs.finishing.links
    rows = await job_media(services.db, jobId)

    def describe(row: Media) -> dict[str, Any]:
        return {
            "id": row.id,
            "role": row.role,
            "url": links.url(row.id),
            "contentType": row.content_type,
            "size": row.size,
            "sha256": row.sha256,
            "width": row.width,
            "height": row.height,
            "duration": row.duration,
            "expiresAt": iso(row.expires_at),
            "expired": row.deleted_at is not None,
        }

    return JSONResponse({"jobId": jobId, "media": [describe(row) for row in rows]})
