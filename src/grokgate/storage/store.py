"""The object store behind media: a local directory or any S3-compatible bucket, both through obstore.

Writes are all-or-nothing: obstore's local store writes a staging file and renames it into place, and S3 makes an
object visible only when its (multipart) upload completes, so no reader ever sees half a file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import obstore
from obstore.store import LocalStore, S3Store


def open_store(storage_url: str | None, data_dir: Path) -> LocalStore | S3Store:
    """`s3://bucket/prefix` (endpoint and credentials from the usual AWS_* variables), else `data_dir/media`."""
    if not storage_url:
        root = data_dir / "media"
        root.mkdir(parents=True, exist_ok=True)
        return LocalStore(str(root.resolve()))
    parts = urlsplit(storage_url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError("GROKGATE_STORAGE_URL must look like s3://bucket/prefix")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    options: dict[str, object] = {}
    if endpoint and endpoint.startswith("http://"):
        options["allow_http"] = True
    return S3Store(
        parts.netloc,
        prefix=parts.path.strip("/") or None,
        endpoint=endpoint,
        region=region,
        access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        client_options=options,  # type: ignore[arg-type]
    )


def _linked(source: Path, target: Path) -> bool:
    """`target` made another name of the complete file `source`, which appears whole or not at all as obstore's
    own writes do; False where the filesystem cannot (another device, no hard links), so the caller copies."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        source.chmod(0o644)  # as a copy would be; the download's temporary file is private
        os.link(source, target)
    except FileExistsError:
        return True  # a key is its content's hash: these bytes are there already
    except OSError:
        return False
    return True


class MediaStore:
    def __init__(self, store: LocalStore | S3Store) -> None:
        self.store = store
        self.is_s3 = isinstance(store, S3Store)
        self._root: Path | None = None if isinstance(store, S3Store) else store.prefix
        """A local store's directory: asking it directly whether a file is there (one stat, microseconds) costs a
        twentieth of a trip through obstore's runtime thread, and every stored result asks."""

    async def put_file(self, key: str, path: Path) -> None:
        """Store the finished file at `path` under `key`. In a local store on the same filesystem the object is a
        second name of the file (a hard link: no copy of a video that may be a gigabyte); elsewhere it is copied."""
        if self._root is not None and _linked(path, self._root / key):
            return
        await obstore.put_async(self.store, key, path)

    async def put_bytes(self, key: str, data: bytes) -> None:
        await obstore.put_async(self.store, key, data)

    async def exists(self, key: str) -> bool:
        if self._root is not None:
            return (self._root / key).is_file()
        try:
            await obstore.head_async(self.store, key)
        except FileNotFoundError:
            return False
        return True

    async def open(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes `start` to `end` (exclusive), in chunks, never the whole object in memory.

        The object is opened here, before the caller sends any header: a missing object raises
        FileNotFoundError while a clean error can still be answered, not halfway through a 200."""
        result = await obstore.get_async(self.store, key, options={"range": (start, end)})

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=256 * 1024):
                yield bytes(chunk)

        return chunks()

    async def read(self, key: str, start: int, end: int) -> bytes:
        """Bytes `start` to `end` (exclusive) in one piece, for an object small enough to hold (an image): one trip
        through obstore's runtime, where `open`'s chunks each take one and its answer streams. FileNotFoundError
        if the object is gone."""
        result = await obstore.get_async(self.store, key, options={"range": (start, end)})
        return bytes(await result.bytes_async())

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await obstore.delete_async(self.store, key)

    async def presign(self, key: str, ttl: float) -> str | None:
        if not isinstance(self.store, S3Store):
            return None
        return await obstore.sign_async(self.store, "GET", key, timedelta(seconds=ttl))
