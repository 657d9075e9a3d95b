"""Local files sent inline: a source image given as a path travels as a `data:` URI, which the gateway stores
once and hands to xAI as bytes."""

from __future__ import annotations

import base64
import os
from pathlib import Path

_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def image_type(head: bytes) -> str | None:
    """The image type the first bytes say (PNG, JPEG, WebP), or None."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def data_uri(path: str | os.PathLike[str]) -> str:
    """The file as a `data:image/...;base64,` URI; ValueError when it is not a PNG, JPEG or WebP image."""
    content = Path(path).read_bytes()
    kind = image_type(content[:16])
    if kind is None:
        raise ValueError(f"{path}: not a PNG, JPEG or WebP image")
    return f"data:{kind};base64,{base64.b64encode(content).decode('ascii')}"


def image_reference(value: str | os.PathLike[str]) -> str:
    """What the API takes for an image: URLs and `data:` URIs as given, a path (a `Path`) read into a `data:` URI."""
    if isinstance(value, str):
        return value
    return data_uri(value)
