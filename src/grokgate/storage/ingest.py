"""Copying a result from xAI's temporary URL into our store, checked and measured, before anyone is told of it.

The download streams to a temporary file (never the whole video in memory), hashing as it goes; the object key is
the SHA-256, so a retry after a crash writes the same object again instead of a second copy. Before relying on an
object (written now or found already there) the ingest claims it, so that the retention sweeper cannot delete it
before the job's media row is committed (`grokgate.storage.retention`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import pybase64
from obstore.exceptions import BaseError as ObstoreError

from grokgate.storage import probe
from grokgate.storage.decoders import MediaDecoders
from grokgate.storage.probe import NotMedia
from grokgate.storage.retention import ObjectClaims
from grokgate.storage.store import MediaStore
from grokgate.storage.stored import MediaGone, MediaRejected, MediaUnavailable, StorageFailed, StoredMedia
from grokgate.upstream.http import LazySession


@dataclass(frozen=True)
class Limits:
    image_bytes: int
    video_bytes: int


_FLUSH_BYTES = 4 * 1024 * 1024


def _absorb(chunks: list[bytes], digest: Any, handle: BinaryIO) -> None:
    for chunk in chunks:
        digest.update(chunk)
        handle.write(chunk)


def b64decode(text: str) -> bytes:
    """Base64 as `base64.b64decode` reads it (characters outside the alphabet skipped), through pybase64's SIMD
    decoder: clean base64, what xAI sends, is decoded at memory speed; anything else by the standard library, so
    what is accepted and refused does not change. An inline image is decoded on every request that gets one: for a
    300 KB image binascii takes 888 us, pybase64 23 us (19 KB: 63 and 2 us)."""
    try:
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return base64.b64decode(text)


def _decoded(url: str, most: int) -> bytes:
    """An inline result's bytes, refused when they are not base64 or more than `most`."""
    try:
        data = b64decode(url.partition(",")[2])
    except (binascii.Error, ValueError) as exc:
        raise MediaRejected(f"the inline result is not valid base64: {exc}") from exc
    if len(data) > most:
        raise MediaRejected(f"the result is larger than {most} bytes")
    return data


def _write_data_uri(url: str, target: Path, most: int) -> tuple[str, int]:
    data = _decoded(url, most)
    target.write_bytes(data)
    return hashlib.sha256(data).hexdigest(), len(data)


def _decode_and_probe(url: str, most: int) -> tuple[bytes, str, probe.Probe]:
    """An inline image result decoded, hashed and measured in one trip to a worker thread, with no file."""
    data = _decoded(url, most)
    return data, hashlib.sha256(data).hexdigest(), probe.probe(data, "image")


@dataclass(frozen=True)
class InlineImage:
    """A customer's `data:` image, decoded once: what to store, and where."""

    media: StoredMedia
    data: bytes = field(repr=False)


def inline_image(url: str) -> InlineImage | None:
    """Decode, hash and identify a `data:image/...;base64,` input (CPU work: run it in a thread). None when the
    bytes are not a PNG, JPEG or WebP image, whatever the URI claims."""
    try:
        data = b64decode(url.partition(",")[2])
    except (binascii.Error, ValueError):
        return None
    found = probe.sniff(data[:16])
    if found is None or not found[0].startswith("image/"):
        return None
    content_type, extension = found
    sha = hashlib.sha256(data).hexdigest()
    media = StoredMedia(
        role="input", key=f"{sha[:2]}/{sha}.{extension}", content_type=content_type, size=len(data), sha256=sha
    )
    return InlineImage(media=media, data=data)


class Ingestor:
    def __init__(
        self,
        store: MediaStore,
        limits: Limits,
        scratch: Path,
        *,
        timeout: float = 120.0,
        claims: ObjectClaims | None = None,
        decoders: MediaDecoders | None = None,
    ) -> None:
        """`claims` is what keeps the retention sweeper off the objects this ingest relies on; only a store that no
        sweeper ever runs on may do without. `decoders`: where downloaded results are decoded (by default a thread
        of this process)."""
        self.store = store
        self.decoders = decoders or MediaDecoders(0)
        self.claims = claims
        self.limits = limits
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        self._client = LazySession(timeout=timeout, max_connections=100)

    async def aclose(self) -> None:
        await self._client.aclose()
        await self.decoders.aclose()

    async def _download(self, url: str, target: Path, most: int) -> tuple[str, int]:
        """Fetch `url` into `target`; returns (sha256, size). Decoding, hashing and writing run in a worker thread,
        a few MiB at a time, so a 1 GiB video never holds the event loop."""
        if url.startswith("data:"):
            return await asyncio.to_thread(_write_data_uri, url, target, most)
        digest = hashlib.sha256()
        size = 0
        try:
            async with self._client().get(url) as response:  # redirects followed
                if response.status in (404, 410):
                    raise MediaGone(f"downloading the result answered {response.status}")
                if response.status != 200:
                    raise MediaUnavailable(f"downloading the result answered {response.status}")
                if (response.content_length or 0) > most:
                    raise MediaRejected(f"the result is larger than {most} bytes")
                with target.open("wb") as handle:
                    pending: list[bytes] = []
                    buffered = 0
                    async for chunk in response.content.iter_chunked(256 * 1024):
                        size += len(chunk)
                        if size > most:
                            raise MediaRejected(f"the result is larger than {most} bytes")
                        pending.append(chunk)
                        buffered += len(chunk)
                        if buffered >= _FLUSH_BYTES:
                            await asyncio.to_thread(_absorb, pending, digest, handle)
                            pending, buffered = [], 0
                    if pending:
                        await asyncio.to_thread(_absorb, pending, digest, handle)
        except (aiohttp.ClientError, TimeoutError) as exc:  # a Content-Length that is no number included
            raise MediaUnavailable(f"downloading the result failed: {exc!r}") from exc
        return digest.hexdigest(), size

    async def _keep(self, *objects: tuple[str, Callable[[], Awaitable[None]]]) -> None:
        """Claim the keys (one transaction), then write each unless it is already there: in that order, or the
        sweeper may delete an object found present before the job that now shares it is committed."""
        if self.claims is not None:
            await self.claims.claim(*(key for key, _ in objects))
        for key, put in objects:
            if not await self.store.exists(key):
                await put()

    async def keep(self, image: InlineImage) -> None:
        """Store a customer's input image (once: the key is its hash)."""
        try:
            await self._keep((image.media.key, lambda: self.store.put_bytes(image.media.key, image.data)))
        except (OSError, ObstoreError) as exc:
            raise StorageFailed(f"storing the input image failed: {exc!r}") from exc

    async def ingest(self, url: str, kind: str) -> list[StoredMedia]:
        """Store the result at `url` (an `image` or a `video`); a video also gets its poster frame.

        Raises `MediaUnavailable` / `MediaGone` (fetching failed), `MediaRejected` (not usable) or `StorageFailed`
        (our disk or bucket failed), so the caller can end the job with the right code and refund it."""
        try:
            return await self._ingest(url, kind)
        except (OSError, ObstoreError) as exc:
            raise StorageFailed(f"storing the result failed: {exc!r}") from exc

    async def _ingest(self, url: str, kind: str) -> list[StoredMedia]:
        most = self.limits.image_bytes if kind == "image" else self.limits.video_bytes
        if kind == "image" and url.startswith("data:"):
            return await self._ingest_inline_image(url, most)
        with tempfile.NamedTemporaryFile(dir=self.scratch, prefix="download-") as scratch:
            path = Path(scratch.name)
            sha, size = await self._download(url, path, most)
            try:
                measured = await self.decoders.probe(path, kind, poster=kind == "video")
            except NotMedia as exc:
                raise MediaRejected(str(exc)) from exc
            key = f"{sha[:2]}/{sha}.{measured.extension}"
            objects: list[tuple[str, Callable[[], Awaitable[None]]]] = [(key, lambda: self.store.put_file(key, path))]
            stored = [
                StoredMedia(
                    role=kind,
                    key=key,
                    content_type=measured.content_type,
                    size=size,
                    sha256=sha,
                    width=measured.width,
                    height=measured.height,
                    duration=measured.duration,
                )
            ]
            if measured.poster is not None:
                poster = measured.poster
                poster_sha = hashlib.sha256(poster).hexdigest()
                poster_key = f"{poster_sha[:2]}/{poster_sha}.jpg"
                objects.append((poster_key, lambda: self.store.put_bytes(poster_key, poster)))
                stored.append(
                    StoredMedia(
                        role="poster",
                        key=poster_key,
                        content_type="image/jpeg",
                        size=len(poster),
                        sha256=poster_sha,
                        width=measured.width,
                        height=measured.height,
                    )
                )
            await self._keep(*objects)
            return stored

    async def _ingest_inline_image(self, url: str, most: int) -> list[StoredMedia]:
        """An image xAI sent inline (`b64_json`): stored from memory, no temporary file (an image is small)."""
        try:
            data, sha, measured = await asyncio.to_thread(_decode_and_probe, url, most)
        except NotMedia as exc:
            raise MediaRejected(str(exc)) from exc
        key = f"{sha[:2]}/{sha}.{measured.extension}"
        await self._keep((key, lambda: self.store.put_bytes(key, data)))
        return [
            StoredMedia(
                role="image",
                key=key,
                content_type=measured.content_type,
                size=len(data),
                sha256=sha,
                width=measured.width,
                height=measured.height,
            )
        ]
