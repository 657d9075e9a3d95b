"""What a stored result is, as plain data: the object's key, its type, size, hash and measurements.

Kept apart from `ingest.py` (which does the I/O) so that the pure rules of `jobs/states.py` can speak of stored media
without importing HTTP or storage code.
"""

from __future__ import annotations

from dataclasses import dataclass


class MediaUnavailable(Exception):
    """The result could not be fetched now (timeout, 5xx, a cut connection): worth trying again until the job's
    deadline."""


class MediaGone(MediaUnavailable):
    """The result's URL answered 404 or 410: it will not come back by waiting. A video's poll may give a fresh URL,
    a few times; then the job fails."""


class MediaRejected(Exception):
    """The result will never be usable (not the media it claims, or too large): the job fails."""


class StorageFailed(Exception):
    """Our own store could not keep the result (disk full, bucket unreachable): our fault, not xAI's."""


@dataclass(frozen=True)
class StoredMedia:
    role: str
    key: str
    content_type: str
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
